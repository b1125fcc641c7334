"""The projects' job: the reminders before a report is due."""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa

from challenges.core.bus import PERIODIC_QUEUE
from challenges.core.events import record_once
from challenges.core.jobs import job
from challenges.extensions import db
from challenges.projects import events
from challenges.projects.models import ProjectReport, ReportReminder, ReportStatus
from challenges.projects.services import REMINDER_DAYS, _today


@job(
    PERIODIC_QUEUE,
    every="REMINDER_SWEEP_SECONDS",
    aliases=("challenges.projects.services.send_report_reminders",),
)
def send_report_reminders(now: datetime | None = None) -> int:
    """Record each report-due reminder that is due (a week before, and on the day), once per
    report, lead time and due date. Returns how many were recorded."""
    today = _today(now)
    due = list(
        db.session.execute(
            sa.select(ProjectReport.id, ProjectReport.due_on).where(
                ProjectReport.status.in_([ReportStatus.due, ReportStatus.changes_requested]),
                ProjectReport.due_on >= today,
                ProjectReport.due_on <= today + timedelta(days=max(REMINDER_DAYS)),
            )
        ).all()
    )
    recorded = 0
    for report_id, due_on in due:
        days = min(d for d in REMINDER_DAYS if due_on - timedelta(days=d) <= today)
        if db.session.scalar(
            sa.select(ReportReminder.id).where(
                ReportReminder.report_id == report_id,
                ReportReminder.days == days,
                ReportReminder.due_on == due_on,
            )
        ):
            continue
        recorded += record_once(
            ReportReminder(report_id=report_id, days=days, due_on=due_on),
            events.ReportDue(report_id=report_id, days=days, due_on=due_on.isoformat()),
        )
    return recorded
