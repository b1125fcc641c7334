"""The challenges' own handler: the job that closes one at its deadline, scheduled on ``workflow``.
Who hears about challenges is in :mod:`challenges.notifications.about_challenges`."""

from __future__ import annotations

import logging
from datetime import datetime

from redis.exceptions import RedisError

from challenges.calls import events, jobs
from challenges.core.bus import WORKFLOW_QUEUE, EventBus
from challenges.core.jobs import enqueue
from challenges.core.models import Event

log = logging.getLogger(__name__)


def schedule_close(e: events.ChallengePublished | events.DeadlineExtended, record: Event) -> None:
    """Ask RQ's scheduler to close the challenge at its deadline, to the second.

    This is the fast path only: the periodic sweep closes every due row from the
    database, so nothing is lost if Redis forgets this job.
    """
    deadline = datetime.fromisoformat(
        e.new_deadline if isinstance(e, events.DeadlineExtended) else e.deadline
    )
    try:
        enqueue(
            jobs.close_if_due,
            e.challenge_id,
            at=deadline,
            job_id=f"close-{e.challenge_id}-{int(deadline.timestamp())}",
        )
    except RedisError as exc:  # the sweep closes it from the database
        log.warning(
            "challenge %s: closing job not scheduled (%s); the periodic sweep will close it",
            e.challenge_id,
            exc,
        )


def register(bus: EventBus) -> None:
    """Subscribe the challenge handlers (those that tell people are in notifications)."""
    bus.declare(*events.ALL)
    bus.subscribe(
        events.ChallengePublished, schedule_close, name="calls_schedule_close", queue=WORKFLOW_QUEUE
    )
    bus.subscribe(events.DeadlineExtended, schedule_close, name="calls_schedule_close", queue=WORKFLOW_QUEUE)
