"""A booked award becomes a project (``workflow``); reports are told on ``notifications``: filed →
programme managers, sent back or approved → the company, due → the company."""

from __future__ import annotations

from challenges.accounts.models import Role
from challenges.accounts.people import people_with_role
from challenges.core.bus import NOTIFICATIONS_QUEUE, WORKFLOW_QUEUE, EventBus
from challenges.core.models import Event, must_get
from challenges.funding import events as funding_events
from challenges.funding.models import Award
from challenges.notifications.services import notify, recipients_for
from challenges.projects import events, services
from challenges.projects.models import ProjectReport, ReportStatus
from challenges.proposals.rules import applicant_team


def start_project(e: funding_events.AwardBooked, record: Event) -> None:
    services.start_project(must_get(Award, e.award_id))


def _company(report: ProjectReport) -> list:
    return recipients_for(applicant_team(report.project.award.proposal))


def send_submitted(e: events.ReportSubmitted, record: Event) -> None:
    report = must_get(ProjectReport, e.report_id)
    notify(
        record,
        "report_submitted",
        recipients_for(people_with_role(Role.programme_manager)),
        report=report,
        project=report.project,
    )


def send_decided(e: events.ReportChangesRequested | events.ReportApproved, record: Event) -> None:
    report = must_get(ProjectReport, e.report_id)
    key = "report_approved" if isinstance(e, events.ReportApproved) else "report_changes_requested"
    notify(record, key, _company(report), report=report, project=report.project)


def send_due(e: events.ReportDue, record: Event) -> None:
    report = must_get(ProjectReport, e.report_id)
    if report.due_on.isoformat() != e.due_on or report.status not in (
        ReportStatus.due,
        ReportStatus.changes_requested,
    ):
        return  # filed meanwhile, or moved
    notify(
        record,
        "report_due_in_a_week" if e.days else "report_due_today",
        _company(report),
        report=report,
        project=report.project,
    )


def register(bus: EventBus) -> None:
    bus.declare(*events.ALL)
    bus.subscribe(
        funding_events.AwardBooked, start_project, name="projects_start_project", queue=WORKFLOW_QUEUE
    )
    bus.subscribe(
        events.ReportSubmitted, send_submitted, name="projects_send_submitted", queue=NOTIFICATIONS_QUEUE
    )
    bus.subscribe(
        events.ReportChangesRequested, send_decided, name="projects_send_decided", queue=NOTIFICATIONS_QUEUE
    )
    bus.subscribe(
        events.ReportApproved, send_decided, name="projects_send_decided", queue=NOTIFICATIONS_QUEUE
    )
    bus.subscribe(events.ReportDue, send_due, name="projects_send_due", queue=NOTIFICATIONS_QUEUE)
