"""The challenges' jobs: each challenge closed at its deadline, and the reminders before it."""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa

from challenges.calls import events
from challenges.calls.models import Challenge, ChallengeStatus, ClosingReminder
from challenges.calls.services import close_challenge
from challenges.core.bus import PERIODIC_QUEUE, WORKFLOW_QUEUE
from challenges.core.events import record_once
from challenges.core.jobs import job
from challenges.core.models import utcnow
from challenges.core.transaction import commit
from challenges.extensions import db

OLD = "challenges.calls.services."  # where these jobs were first stored from


@job(PERIODIC_QUEUE, every="DEADLINE_SWEEP_SECONDS", aliases=(OLD + "close_due_challenges",))
def close_due_challenges(now: datetime | None = None, limit: int = 200) -> int:
    """Close every published challenge whose deadline has passed, each in a transaction of its own; the
    due rows are in the database, so a Redis restart cannot lose a deadline. Returns how many closed."""
    now = now or utcnow()
    due = list(
        db.session.scalars(
            sa.select(Challenge.id)
            .where(Challenge.status == ChallengeStatus.published, Challenge.deadline <= now)
            .order_by(Challenge.deadline)
            .limit(limit)
        )
    )
    db.session.rollback()
    closed = 0
    for challenge_id in due:
        challenge = db.session.get(Challenge, challenge_id, with_for_update=True, populate_existing=True)
        if challenge is not None and close_challenge(challenge, now=now):
            closed += 1
        commit()
    return closed


CLOSING_REMINDER_DAYS = (3, 1)


@job(PERIODIC_QUEUE, every="REMINDER_SWEEP_SECONDS", aliases=(OLD + "send_closing_reminders",))
def send_closing_reminders(now: datetime | None = None) -> int:
    """Record each closing-soon reminder that is due, once per challenge, lead time and
    deadline; the event tells the teams of unsubmitted proposals. A challenge that opens with less
    than three days left gets only the reminders still ahead of it. Returns how many were recorded."""
    now = now or utcnow()
    horizon = now + timedelta(days=max(CLOSING_REMINDER_DAYS))
    open_challenges = list(
        db.session.execute(
            sa.select(Challenge.id, Challenge.deadline).where(
                Challenge.status == ChallengeStatus.published,
                Challenge.deadline > now,
                Challenge.deadline <= horizon,
            )
        ).all()
    )
    recorded = 0
    for challenge_id, deadline in open_challenges:
        # the shortest lead time that has been reached: one reminder per round, never a late "three days"
        days = min(d for d in CLOSING_REMINDER_DAYS if deadline - timedelta(days=d) <= now)
        exists = db.session.scalar(
            sa.select(ClosingReminder.id).where(
                ClosingReminder.challenge_id == challenge_id,
                ClosingReminder.days == days,
                ClosingReminder.deadline == deadline,
            )
        )
        if exists:
            continue
        recorded += record_once(
            ClosingReminder(challenge_id=challenge_id, days=days, deadline=deadline),
            events.ChallengeClosingSoon(challenge_id=challenge_id, days=days, deadline=deadline.isoformat()),
        )
    return recorded


@job(WORKFLOW_QUEUE, timeout=120, aliases=(OLD + "close_if_due",))
def close_if_due(challenge_id: int) -> bool:
    """Scheduled at a deadline: close that one challenge if it is still due."""
    challenge = db.session.get(Challenge, challenge_id, with_for_update=True, populate_existing=True)
    return challenge is not None and close_challenge(challenge)
