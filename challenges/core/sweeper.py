"""The sweeper: what the outbox recorded but Redis lost, or a killed worker left "started", is put back
on the queues (a periodic job); and a programme manager's re-run of a handler that gave up."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from flask import current_app

from challenges.core.bus import PERIODIC_QUEUE, get_bus
from challenges.core.events import OUTBOX_KEY, enqueue_handlings, wake
from challenges.core.jobs import job, lost_jobs
from challenges.core.models import EventHandling, HandlingState, job_id_for, utcnow
from challenges.extensions import db

log = logging.getLogger(__name__)


@job(PERIODIC_QUEUE, every="SWEEP_INTERVAL_SECONDS", aliases=("challenges.core.events.sweep_events",))
def sweep_events(limit: int = 500) -> int:
    """Re-enqueue pending handler jobs older than the lease that Redis no longer holds, and wake
    the drain of a batch handler whose events wait that long with no live drain.

    Returns the number of jobs enqueued.
    """
    before = utcnow() - timedelta(seconds=current_app.config["EVENT_LEASE_SECONDS"])
    bus = get_bus()
    waiting = sa.and_(EventHandling.state == HandlingState.pending, EventHandling.created_at <= before)
    # A batch handler's events wait for a drain, until one fails and goes on as its own job.
    batch_handlers = sorted({h.name for handlers in bus.handlers.values() for h in handlers if h.batch})
    for_drain = sa.and_(EventHandling.handler.in_(batch_handlers), EventHandling.attempts == 0)
    drains = [
        name
        for name in batch_handlers
        if db.session.scalar(
            sa.select(sa.exists().where(waiting, EventHandling.handler == name, EventHandling.attempts == 0))
        )
    ]
    rows = db.session.execute(
        sa.select(EventHandling.event_id, EventHandling.handler, EventHandling.queue)
        .where(waiting, sa.not_(for_drain))
        .order_by(EventHandling.created_at)
        .limit(limit)
    ).all()
    db.session.rollback()
    woken = sum(wake(handler, unless_live=True) for handler in drains)
    by_job = {job_id_for(event_id, handler): (event_id, handler, queue) for event_id, handler, queue in rows}
    gone = lost_jobs(list(by_job))
    lost = [row for job_id, row in by_job.items() if job_id in gone]
    if lost:
        enqueue_handlings(lost)
    if lost or woken:
        log.info("sweeper re-enqueued %d handler job(s) and %d drain(s)", len(lost), woken)
    return len(lost) + woken


def retry_dead_handling(handling: EventHandling, *, by: Any) -> None:
    """Give a dead handler another round of attempts (a programme manager's *re-run*)."""
    if handling.state is not HandlingState.dead:
        raise ValueError("only failed handlers can be re-run")
    handling.state = HandlingState.pending
    handling.attempts = 0
    db.session.flush()
    db.session.info.setdefault(OUTBOX_KEY, []).append((handling.event_id, handling.handler, handling.queue))
    log.info(
        "user %s re-ran handler %s for event %s", getattr(by, "id", None), handling.handler, handling.event_id
    )
