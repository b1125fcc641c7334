"""Every periodic job, in one list: (function, queue, interval in seconds), all on the periodic
queue, which the workers take right after the ledger's.

Time-based work is driven from due rows in the database; these jobs only look for them,
so a Redis restart that loses every queued job loses no deadline.
"""

from __future__ import annotations

from collections.abc import Callable

from flask import Flask

from challenges.calls.services import close_due_challenges, send_closing_reminders
from challenges.core.bus import PERIODIC_QUEUE
from challenges.core.events import sweep_events
from challenges.notifications.services import compile_digests, sweep_mail
from challenges.projects.services import send_report_reminders
from challenges.reviews.services import send_due_reminders


def periodic_jobs(app: Flask) -> list[tuple[Callable, str, int]]:
    return [
        (sweep_events, PERIODIC_QUEUE, app.config["SWEEP_INTERVAL_SECONDS"]),
        (close_due_challenges, PERIODIC_QUEUE, app.config["DEADLINE_SWEEP_SECONDS"]),
        (send_due_reminders, PERIODIC_QUEUE, app.config["REMINDER_SWEEP_SECONDS"]),
        (send_closing_reminders, PERIODIC_QUEUE, app.config["REMINDER_SWEEP_SECONDS"]),
        (send_report_reminders, PERIODIC_QUEUE, app.config["REMINDER_SWEEP_SECONDS"]),
        (sweep_mail, PERIODIC_QUEUE, app.config["SWEEP_INTERVAL_SECONDS"]),
        (compile_digests, PERIODIC_QUEUE, app.config["DIGEST_SWEEP_SECONDS"]),
    ]
