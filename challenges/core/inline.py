"""Handlers run in the calling process instead of on the workers: for the demo's history and the
drivers that replay time under ``clock_at()``, where the ledger and the projects must act at the
history's instant."""

from __future__ import annotations

import sqlalchemy as sa

from challenges.core import events
from challenges.core.models import EventHandling, HandlingState
from challenges.core.transaction import commit
from challenges.extensions import db


def handle_pending() -> int:
    """Run every pending handler here and now through ``events.run_handler``, oldest first, until none
    is left (handlers record new events); return how many ran.

    For the demo's history and drivers that replay time under ``clock_at()``, where the ledger and
    the projects must act at the history's instant: the workers remain the normal path. It commits
    (first what the caller has done, then each handler), and puts no job on the queues meanwhile,
    so that no worker runs one of these handlers at the real time. A handler that fails raises.
    """
    token = events.handling_in_process.set(True)
    ran = 0
    try:
        commit()
        while pending := db.session.execute(
            sa.select(EventHandling.event_id, EventHandling.handler)
            .where(EventHandling.state == HandlingState.pending)
            .order_by(EventHandling.created_at, EventHandling.event_id, EventHandling.handler)
        ).all():
            for event_id, handler in pending:
                events.run_handler(event_id, handler)
                ran += 1
    finally:
        events.handling_in_process.reset(token)
    return ran
