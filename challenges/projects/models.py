"""Funded projects: the work plan of a booked award, and the reports its SME files on the results."""

from __future__ import annotations

import enum
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from challenges.core.models import UTCDateTime, enum_column, utcnow
from challenges.core.translation import lazy_gettext as _l
from challenges.extensions import Model

if TYPE_CHECKING:
    from challenges.funding.models import Award


class ReportKind(enum.Enum):
    progress = "progress"  # half-way
    final = "final"  # at the end; its approval releases the last instalment


class ReportStatus(enum.Enum):
    due = "due"
    submitted = "submitted"
    changes_requested = "changes_requested"
    approved = "approved"


KIND_LABELS = {ReportKind.progress: _l("Progress report"), ReportKind.final: _l("Final report")}
STATUS_LABELS = {
    ReportStatus.due: _l("Due"),
    ReportStatus.submitted: _l("Submitted, waiting for the programme"),
    ReportStatus.changes_requested: _l("Changes requested"),
    ReportStatus.approved: _l("Approved"),
}
TRL_RANGE = range(1, 10)  # technology readiness levels 1–9


class Project(Model):
    """A booked award's project: the milestones of its work plan and the reports due on it."""

    __tablename__ = "project"

    id: Mapped[int] = mapped_column(primary_key=True)
    award_id: Mapped[int] = mapped_column(sa.ForeignKey("award.id"), unique=True)
    started_on: Mapped[date] = mapped_column(sa.Date)
    ends_on: Mapped[date] = mapped_column(sa.Date)
    # copied from the submitted version when the award was booked: [{"due", "title", "deliverable"}]
    milestones: Mapped[list[dict[str, Any]]] = mapped_column(sa.JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    award: Mapped[Award] = relationship()
    reports: Mapped[list[ProjectReport]] = relationship(
        back_populates="project", order_by="ProjectReport.due_on"
    )

    @property
    def title(self) -> str:
        latest = self.award.proposal.latest_version
        return latest.content["title"] if latest is not None else self.award.proposal.title


class ProjectReport(Model):
    """One report of a project: what was done, the milestones reached and the indicators."""

    __tablename__ = "project_report"
    __table_args__ = (
        sa.UniqueConstraint("project_id", "kind", name="one_report_per_kind"),
        sa.CheckConstraint("trl IS NULL OR trl BETWEEN 1 AND 9", name="trl_in_range"),
        sa.CheckConstraint("other_customers IS NULL OR other_customers >= 0", name="customers_not_negative"),
        sa.CheckConstraint(
            "private_cofunding_ore IS NULL OR private_cofunding_ore >= 0", name="cofunding_not_negative"
        ),
        sa.CheckConstraint("jobs_created IS NULL OR jobs_created >= 0", name="jobs_not_negative"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(sa.ForeignKey("project.id", ondelete="CASCADE"), index=True)
    kind: Mapped[ReportKind] = mapped_column(enum_column(ReportKind, "report_kind"))
    due_on: Mapped[date] = mapped_column(sa.Date)
    status: Mapped[ReportStatus] = mapped_column(
        enum_column(ReportStatus, "report_status"), default=ReportStatus.due
    )
    text: Mapped[str] = mapped_column(sa.Text, default="")
    milestones_reached: Mapped[list[int]] = mapped_column(
        sa.JSON, default=list
    )  # positions in project.milestones
    trl: Mapped[int | None] = mapped_column(sa.Integer)
    pilot_with_owner: Mapped[bool | None] = mapped_column(sa.Boolean)
    follow_on_with_owner: Mapped[bool | None] = mapped_column(sa.Boolean)
    other_customers: Mapped[int | None] = mapped_column(sa.Integer)
    private_cofunding_ore: Mapped[int | None] = mapped_column(sa.BigInteger)
    jobs_created: Mapped[int | None] = mapped_column(sa.Integer)
    submitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    submitted_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user_account.id", ondelete="SET NULL"))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    decided_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user_account.id", ondelete="SET NULL"))
    comment: Mapped[str | None] = mapped_column(sa.Text)  # the programme's, when it asks for changes

    project: Mapped[Project] = relationship(back_populates="reports")

    @property
    def label(self) -> str:
        return str(KIND_LABELS[self.kind])


class ReportReminder(Model):
    """A report-due reminder that has gone out: once per report, lead time and due date."""

    __tablename__ = "report_reminder"
    __table_args__ = (sa.UniqueConstraint("report_id", "days", "due_on", name="report_reminder_once"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    report_id: Mapped[int] = mapped_column(sa.ForeignKey("project_report.id", ondelete="CASCADE"))
    days: Mapped[int] = mapped_column(sa.Integer)
    due_on: Mapped[date] = mapped_column(sa.Date)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
