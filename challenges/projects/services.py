"""Funded projects and their reports: started when the ledger books an award, reported on by the SME,
approved by the programme; the approved final report releases the last instalment."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import sqlalchemy as sa
from flask_babel import gettext as _
from sqlalchemy.orm import joinedload, selectinload

from challenges.accounts.models import User
from challenges.accounts.permissions import require_manager
from challenges.core.errors import InvalidInput, PermissionDenied, ServiceError
from challenges.core.events import record
from challenges.core.formatting import local_day
from challenges.core.models import utcnow
from challenges.extensions import db
from challenges.funding import services as funding
from challenges.funding.models import Award, AwardStatus, InstalmentCondition
from challenges.projects import events
from challenges.projects.models import (
    TRL_RANGE,
    Project,
    ProjectReport,
    ReportKind,
    ReportStatus,
)
from challenges.proposals.models import Proposal

DEFAULT_LENGTH = timedelta(days=365)  # a work plan without dated milestones
REMINDER_DAYS = (7, 0)  # a week before the due date, and on the day
MAX_TEXT = 20000
MAX_COUNT = 1_000_000
MAX_ORE = 10**13 * 100


def _today(now: datetime | None = None) -> date:
    return local_day(now or utcnow())


def start_project(award: Award) -> Project | None:
    """The project of a booked award, with its milestones and reports due; once per award."""
    existing = db.session.scalar(sa.select(Project).where(Project.award_id == award.id))
    if existing is not None or award.status is not AwardStatus.booked:
        return existing
    latest = award.proposal.latest_version
    milestones = sorted(
        (dict(m) for m in (latest.content.get("milestones", []) if latest else [])), key=lambda m: m["due"]
    )
    started = _today()
    last = date.fromisoformat(milestones[-1]["due"]) if milestones else started + DEFAULT_LENGTH
    ends = max(last, started + timedelta(days=30))
    project = Project(award_id=award.id, started_on=started, ends_on=ends, milestones=milestones)
    project.reports = [
        ProjectReport(kind=ReportKind.progress, due_on=started + (ends - started) / 2),
        ProjectReport(kind=ReportKind.final, due_on=ends),
    ]
    db.session.add(project)
    db.session.flush()
    record(events.ProjectStarted(project_id=project.id, award_id=award.id))
    return project


# --- who may see and do what -----------------------------------------------------------------------


def is_applicant(project: Project, user: User) -> bool:
    """An active, approved member of the SME that runs the project."""
    return project.award.proposal.is_team_side(user)


def can_view(project: Project, user: User) -> bool:
    return user.is_programme_manager or is_applicant(project, user)


def projects_for(user: User) -> list[Project]:
    """A manager's every project, or those of the person's company; loaded for the list in one go."""
    query = (
        sa.select(Project)
        .join(Award)
        .join(Proposal, Proposal.id == Award.proposal_id)
        .options(
            joinedload(Project.award)
            .joinedload(Award.proposal)
            .options(joinedload(Proposal.organisation), selectinload(Proposal.versions)),
            selectinload(Project.reports),
        )
        .order_by(Project.started_on.desc(), Project.id.desc())
    )
    if not user.is_programme_manager:
        org = user.organisation
        if org is None:
            return []
        query = query.where(Proposal.organisation_id == org.id)
    return list(db.session.scalars(query))


# --- reports -----------------------------------------------------------------------------------------


@dataclass
class ReportContent:
    text: str = ""
    milestones_reached: list[int] = field(default_factory=list)
    trl: int | None = None
    pilot_with_owner: bool | None = None
    follow_on_with_owner: bool | None = None
    other_customers: int | None = None
    private_cofunding_ore: int | None = None
    jobs_created: int | None = None


def _lock(report: ProjectReport) -> None:
    db.session.get(ProjectReport, report.id, with_for_update=True, populate_existing=True)


def check_report(project: Project, content: ReportContent) -> dict[str, str]:
    errors: dict[str, str] = {}
    if not content.text.strip():
        errors["text"] = _("Describe what was done.")
    elif len(content.text) > MAX_TEXT:
        errors["text"] = _("Use at most %(n)s characters.", n=MAX_TEXT)
    if any(not 0 <= i < len(project.milestones) for i in content.milestones_reached):
        errors["milestones_reached"] = _("Choose milestones of this project's work plan.")
    if content.trl is None or content.trl not in TRL_RANGE:
        errors["trl"] = _("Choose the technology readiness level reached, 1 to 9.")
    for name in ("pilot_with_owner", "follow_on_with_owner"):
        if getattr(content, name) is None:
            errors[name] = _("Answer yes or no.")
    for name in ("other_customers", "jobs_created"):
        value = getattr(content, name)
        if value is None or not 0 <= value <= MAX_COUNT:
            errors[name] = _("Enter a whole number of 0 or more.")
    if content.private_cofunding_ore is None or not 0 <= content.private_cofunding_ore <= MAX_ORE:
        errors["private_cofunding"] = _("Enter an amount of 0 or more.")
    return errors


def submit_report(report: ProjectReport, content: ReportContent, *, by: User) -> None:
    """The SME files a report (again, after the programme asked for changes)."""
    project = report.project
    if not is_applicant(project, by):
        raise PermissionDenied(_("Only members of the company that runs the project can report on it."))
    _lock(report)
    if report.status not in (ReportStatus.due, ReportStatus.changes_requested):
        raise ServiceError(_("This report has been submitted already."))
    if errors := check_report(project, content):
        raise InvalidInput(errors)
    report.text = content.text.strip()
    report.milestones_reached = sorted(set(content.milestones_reached))
    for name in (
        "trl",
        "pilot_with_owner",
        "follow_on_with_owner",
        "other_customers",
        "private_cofunding_ore",
        "jobs_created",
    ):
        setattr(report, name, getattr(content, name))
    report.status = ReportStatus.submitted
    report.submitted_at, report.submitted_by_id = utcnow(), by.id
    db.session.flush()
    record(events.ReportSubmitted(report_id=report.id), by=by)


def _require_submitted(report: ProjectReport, by: User) -> None:
    require_manager(by)
    _lock(report)
    if report.status is ReportStatus.approved:
        raise ServiceError(_("This report has been approved already."))
    if report.status is not ReportStatus.submitted:
        raise ServiceError(_("This report has not been submitted yet."))


def request_changes(report: ProjectReport, comment: str, *, by: User) -> None:
    _require_submitted(report, by)
    if not comment.strip():
        raise ServiceError(_("Say what should be changed: the company reads it."), "comment")
    report.status = ReportStatus.changes_requested
    report.comment = comment.strip()
    report.decided_at, report.decided_by_id = utcnow(), by.id
    db.session.flush()
    record(events.ReportChangesRequested(report_id=report.id), by=by)


def approve_report(report: ProjectReport, *, by: User) -> None:
    """Approve a submitted report; the final one releases the award's last instalment, once."""
    _require_submitted(report, by)
    report.status = ReportStatus.approved
    report.decided_at, report.decided_by_id = utcnow(), by.id
    final = report.kind is ReportKind.final
    award = report.project.award
    if final and award.status is AwardStatus.booked:  # a cancelled award pays nothing more
        waiting = [
            i
            for i in award.instalments
            if i.condition is InstalmentCondition.final_report and i.approved_at is None
        ]
        for instalment in waiting:
            funding.approve_payment(instalment, by=by)
    db.session.flush()
    record(events.ReportApproved(report_id=report.id, final=final), by=by)


def final_report_approved(award: Award) -> bool:
    """Whether the project of *award* has its final report approved: the condition of its last instalment."""
    return bool(
        db.session.scalar(
            sa.select(sa.func.count())
            .select_from(ProjectReport)
            .join(Project)
            .where(
                Project.award_id == award.id,
                ProjectReport.kind == ReportKind.final,
                ProjectReport.status == ReportStatus.approved,
            )
        )
    )


funding.answer_final_report_approved(final_report_approved)
