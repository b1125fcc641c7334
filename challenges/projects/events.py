"""Facts about funded projects and their reports."""

from __future__ import annotations

from dataclasses import dataclass

from challenges.core.bus import DomainEvent


@dataclass(frozen=True)
class ProjectStarted(DomainEvent, type_name="ProjectStarted"):
    """A booked award became a project with its reports due (``start_project``)."""

    project_id: int
    award_id: int


@dataclass(frozen=True)
class ReportSubmitted(DomainEvent, type_name="ReportSubmitted"):
    """The SME filed a report (``submit_report``)."""

    report_id: int


@dataclass(frozen=True)
class ReportChangesRequested(DomainEvent, type_name="ReportChangesRequested"):
    """The programme manager sent a report back with a comment (``request_changes``)."""

    report_id: int


@dataclass(frozen=True)
class ReportApproved(DomainEvent, type_name="ReportApproved"):
    """The programme manager approved a report (``approve_report``); a final one releases the last
    instalment."""

    report_id: int
    final: bool


@dataclass(frozen=True)
class ReportDue(DomainEvent, type_name="ReportDue"):
    """A report is due in *days* days (7) or today (0) (``send_report_reminders``)."""

    report_id: int
    days: int
    due_on: str


ALL: tuple[type[DomainEvent], ...] = (
    ProjectStarted,
    ReportSubmitted,
    ReportChangesRequested,
    ReportApproved,
    ReportDue,
)
