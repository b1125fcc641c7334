"""The notifications' jobs: sending a batch of messages, the sweep that puts back on the queue what
Redis lost or a killed worker held, and the daily digests."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

import sqlalchemy as sa
from flask import current_app
from redis.exceptions import RedisError

from challenges.accounts.models import User
from challenges.core.bus import NOTIFICATIONS_QUEUE, PERIODIC_QUEUE
from challenges.core.events import record, relay_after_commit
from challenges.core.formatting import to_local
from challenges.core.jobs import enqueue, job
from challenges.core.models import utcnow
from challenges.core.transaction import commit, commit_first
from challenges.extensions import db
from challenges.notifications import sending
from challenges.notifications.events import DigestCompiled
from challenges.notifications.models import SENDABLE, MailDigest, MailMessage, MessageState
from challenges.notifications.services import BATCH, CLAIM_LEASE, JOB_TIMEOUT, MAIL_KEY

log = logging.getLogger(__name__)
OLD = "challenges.notifications.services."  # where these jobs were first stored from


@job(NOTIFICATIONS_QUEUE, timeout=JOB_TIMEOUT, aliases=(OLD + "send_mail",))
def send_mail(message_ids: list[int]) -> str:
    """Send the due messages among *message_ids* over one SMTP connection (:func:`sending.send`), and
    put those to be tried again back on the queue for their time."""
    retries: dict[float, list[int]] = {}
    try:
        return sending.send(message_ids, retries)
    finally:
        for delay, ids in retries.items():
            try:
                enqueue_send(ids, delay)
            except RedisError:
                log.warning("Redis unavailable: %d retry(ies) left to the sweeper", len(ids))


def enqueue_send(message_ids: list[int], delay: float = 0) -> None:
    """Put *message_ids* on the notifications queue, in batches; at once, or after *delay* seconds."""
    for i in range(0, len(message_ids), BATCH):
        batch = message_ids[i : i + BATCH]
        enqueue(
            send_mail,
            batch,
            delay=delay,
            result_ttl=600,
            failure_ttl=7 * 24 * 3600,
            description=f"send {len(batch)} message(s)",
        )


relay_after_commit(MAIL_KEY, lambda ids: enqueue_send(sorted(set(ids))), "message(s)")


@job(PERIODIC_QUEUE, every="SWEEP_INTERVAL_SECONDS", aliases=(OLD + "sweep_mail",))
def sweep_mail(limit: int = 1000) -> int:
    """Put back on the queue what is due but was not enqueued within the lease, and what a
    dead worker claimed. Returns how many messages were enqueued."""
    now = utcnow()
    released = sending.release_abandoned(now)
    lease = timedelta(seconds=current_app.config["EVENT_LEASE_SECONDS"])
    ids = list(
        db.session.scalars(
            sa.select(MailMessage.id)
            .where(
                sa.or_(MailMessage.id.in_(released), MailMessage.enqueued_at <= now - lease),
                sa.or_(
                    sa.and_(MailMessage.state.in_(SENDABLE), MailMessage.next_attempt_at <= now),
                    sa.and_(
                        MailMessage.state == MessageState.sending, MailMessage.claimed_at < now - CLAIM_LEASE
                    ),
                ),
            )
            .order_by(MailMessage.id)
            .limit(limit)
        )
    )
    if not ids:
        db.session.rollback()
        return 0
    db.session.execute(
        sa.update(MailMessage)
        .where(MailMessage.id.in_(ids))
        .values(enqueued_at=now)
        .execution_options(synchronize_session=False)
    )
    commit()
    enqueue_send(ids)
    log.info("mail sweeper enqueued %d message(s)", len(ids))
    return len(ids)


@job(PERIODIC_QUEUE, every="DIGEST_SWEEP_SECONDS", aliases=(OLD + "compile_digests",))
def compile_digests(now: datetime | None = None) -> int:
    """Once a day, from ``DIGEST_HOUR`` (Stockholm time), gather each person's held messages
    into one digest event. Nobody with nothing held gets one. Returns how many were compiled."""
    now = now or utcnow()
    local = to_local(now)
    if local.hour < current_app.config["DIGEST_HOUR"]:
        return 0
    day = local.date()
    user_ids = list(
        db.session.scalars(
            sa.select(MailMessage.user_id)
            .join(User, User.id == MailMessage.user_id)
            .where(
                User.active.is_(True),
                MailMessage.state == MessageState.held,
                MailMessage.user_id.is_not(None),
                MailMessage.created_at <= now,
            )
            .distinct()
        )
    )
    db.session.rollback()
    compiled = 0
    for user_id in user_ids:
        if db.session.get(MailDigest, (user_id, day)) is not None:
            db.session.rollback()
            continue
        held = list(
            db.session.scalars(
                sa.select(MailMessage)
                .where(
                    MailMessage.user_id == user_id,
                    MailMessage.state == MessageState.held,
                    MailMessage.created_at <= now,
                )
                .order_by(MailMessage.created_at, MailMessage.id)
                .with_for_update()
            )
        )
        if not held:
            db.session.rollback()
            continue
        assert user_id is not None
        event = record(DigestCompiled(user_id=user_id, day=day.isoformat(), message_ids=[m.id for m in held]))
        db.session.add(MailDigest(user_id=user_id, day=day, event_id=event.id))
        for message in held:
            message.state = MessageState.digested
        if commit_first():
            compiled += 1
    return compiled
