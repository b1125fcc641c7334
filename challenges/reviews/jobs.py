"""The reviews' job: the reminders to evaluators before a review's deadline."""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa

from challenges.core.bus import PERIODIC_QUEUE
from challenges.core.events import record_once
from challenges.core.formatting import STOCKHOLM
from challenges.core.jobs import job
from challenges.core.models import utcnow
from challenges.extensions import db
from challenges.reviews import events
from challenges.reviews.models import ChallengeReview, ReminderSent

REMINDER_DAYS = {"three_days": 3, "on_the_day": 0}


@job(
    PERIODIC_QUEUE,
    every="REMINDER_SWEEP_SECONDS",
    aliases=("challenges.reviews.services.send_due_reminders",),
)
def send_due_reminders(now: datetime | None = None) -> int:
    """Record each reminder round that is due today (Stockholm) once; the event
    mails every evaluator with unfinished reviews. Driven from the database, so a Redis
    restart loses nothing. Returns how many rounds were recorded."""
    now = now or utcnow()
    today = now.astimezone(STOCKHOLM).date()
    open_reviews = db.session.scalars(
        sa.select(ChallengeReview).where(ChallengeReview.published_at.is_(None))
    ).all()
    recorded = 0
    for review in open_reviews:
        deadline_day = review.review_deadline.astimezone(STOCKHOLM).date()
        for kind, days in REMINDER_DAYS.items():
            if today != deadline_day - timedelta(days=days) or now > review.review_deadline:
                continue
            key = f"{kind}:{deadline_day.isoformat()}"  # a moved deadline gets its own reminders
            if db.session.scalar(
                sa.select(ReminderSent).where(ReminderSent.review_id == review.id, ReminderSent.kind == key)
            ):
                continue
            recorded += record_once(  # one round at a time: a racing sweep loses nothing else
                ReminderSent(review_id=review.id, kind=key),
                events.ReviewRemindersDue(review_id=review.id, kind=kind),
            )
    return recorded
