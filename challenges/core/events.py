"""Domain events, the transactional outbox, and the RQ jobs that run their handlers.

A service calls :func:`record` in the same transaction as its state change. The event
row and one :class:`EventHandling` row per subscribed handler are written with it. Only
after the commit does the relay enqueue one RQ job per (event, handler), with a
deterministic job id; a rollback drops them. The sweeper re-enqueues anything still
pending after a lease, so Redis may lose every job and nothing is lost: the database is
the system of record and Redis only carries work.
"""

from __future__ import annotations

import hashlib
import logging
import time
import traceback
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from contextvars import ContextVar
from typing import Any

import sqlalchemy as sa
from flask import current_app
from redis.exceptions import RedisError
from rq import Queue, Retry
from sqlalchemy import event as sa_event
from sqlalchemy.orm import Session, selectinload

from challenges.core.bus import DomainEvent, get_bus
from challenges.core.jobs import enqueue, job, lost_jobs
from challenges.core.models import Event, EventHandling, HandlingState, job_id_for, utcnow
from challenges.core.transaction import RUNNING_HANDLING, HandledElsewhere, commit, commit_first
from challenges.extensions import db, get_redis

log = logging.getLogger(__name__)

OUTBOX_KEY = "challenges_outbox"


def record(domain_event: DomainEvent, *, by: Any = None, flush: bool = True) -> Event:
    """Add *domain_event* to the event log in the current transaction; flush (unless told not to: a
    batch flushes once for all its events), never commit."""
    bus = get_bus()
    type_name = domain_event.type_name
    if bus.event_types.get(type_name) is not type(domain_event):
        raise LookupError(f"event type {type_name} is not declared on the bus")
    row = Event(
        id=str(uuid.uuid4()),
        type=type_name,
        version=domain_event.version,
        payload=domain_event.payload(),
        actor_id=getattr(by, "id", None),
        occurred_at=utcnow(),
    )
    for handler in bus.handlers[type_name]:
        row.handlings.append(EventHandling(handler=handler.name, queue=handler.queue))
    db.session.add(row)
    if flush:
        db.session.flush()
    outbox = db.session.info.setdefault(OUTBOX_KEY, [])
    outbox.extend((row.id, h.handler, h.queue) for h in row.handlings)
    return row


def record_once(marker: Any, event: DomainEvent) -> bool:
    """A reminder's step in a periodic job: record *event* with *marker*, the row (unique per reminder)
    that says it was recorded, in a transaction of its own. False, and nothing recorded, when a racing
    job recorded it first."""
    db.session.add(marker)
    record(event)
    return commit_first()


def _job_options(event_id: str, handler: str, intervals: list[int]) -> dict[str, Any]:
    """RQ's options for the job of one (event, handler): its id, retries with backoff, timeout."""
    return dict(
        job_id=job_id_for(event_id, handler),
        retry=Retry(max=len(intervals), interval=intervals) if intervals else None,
        result_ttl=3600,
        failure_ttl=30 * 24 * 3600,
        description=f"{handler} for event {event_id}",
    )


def _job_data(event_id: str, handler: str):
    """RQ's description of the job for one (event, handler), with retries and backoff."""
    intervals = list(current_app.config["EVENT_RETRY_INTERVALS"])
    return Queue.prepare_data(  # put on the queues together, in one pipeline (enqueue_handlings)
        run_handler.job.path,
        (event_id, handler),
        timeout=run_handler.job.timeout,
        **_job_options(event_id, handler, intervals),
    )


def enqueue_handlings(pending: list[tuple[str, str, str]]) -> None:
    """Put the jobs for (event, handler, queue) triples on their queues, in one round trip to Redis."""
    redis = get_redis()
    by_queue: dict[str, list] = {}
    for event_id, handler, queue in pending:
        by_queue.setdefault(queue, []).append(_job_data(event_id, handler))
    with redis.pipeline() as pipe:
        for queue, jobs in by_queue.items():
            Queue(queue, connection=redis).enqueue_many(jobs, pipeline=pipe)
        pipe.execute()


# The ``session.info`` keys whose contents a commit hands on (see :func:`relay_after_commit`).
RELAYED: set[str] = set()


def relay_after_commit(key: str, send: Callable[[list], None], what: str) -> None:
    """After each commit, hand what the transaction collected in ``session.info[key]`` to *send*
    (which puts it on Redis); after a rollback, drop it. If Redis is down the commit has happened
    anyway, and a sweeper finds the rows after the lease."""
    RELAYED.add(key)

    @sa_event.listens_for(Session, "after_commit")
    def _relay(session: Session) -> None:
        pending = session.info.pop(key, None)
        if not pending:
            return
        try:
            send(pending)
        except RedisError:
            log.warning("Redis unavailable: %d %s left to the sweeper", len(pending), what)

    @sa_event.listens_for(Session, "after_rollback")
    def _drop(session: Session) -> None:
        session.info.pop(key, None)


# Set while handle_pending() runs the handlers itself: their jobs are not put on the queues.
handling_in_process: ContextVar[bool] = ContextVar("handling_in_process", default=False)


def relay_handlings(pending: list[tuple[str, str, str]]) -> None:
    """Start what a commit recorded: one job per (event, handler), but one wake-up per batch handler."""
    bus = get_bus()
    batched = {handler for _event, handler, _queue in pending if bus.handler(handler).batch is not None}
    for name in sorted(batched):
        wake(name)
    enqueue_handlings([triple for triple in pending if triple[1] not in batched])


def _relay(pending: list[tuple[str, str, str]]) -> None:
    if not handling_in_process.get():
        relay_handlings(pending)


relay_after_commit(OUTBOX_KEY, _relay, "handler job(s)")


# --- batch handlers: one drain job takes every waiting event -----------------------------------------

BATCH_EVENTS = 200  # events per transaction
DRAIN_SECONDS = 60  # a drain that runs this long hands the rest to a new job


def _wake_key(handler: str) -> str:
    return f"challenges:wake:{handler}"


def wake(handler_name: str, *, unless_live: bool = False) -> bool:
    """Make sure a drain job for *handler_name* is waiting on its queue; True if one was enqueued.

    The key ``challenges:wake:<handler>`` names the waiting job; a drain deletes it when it starts,
    before it reads the database, so an event committed before that is seen by that drain and one
    committed after it wakes a new one. The key expires after the lease, in case the enqueue after it
    failed; *unless_live* (the sweeper) also replaces a job that Redis lost or a killed worker left.
    """
    redis = get_redis()
    key, job_id = _wake_key(handler_name), f"drain-{handler_name}-{uuid.uuid4().hex}"
    lease = max(current_app.config["EVENT_LEASE_SECONDS"], 1)
    if not redis.set(key, job_id, nx=True, ex=lease):
        waiting = redis.get(key)
        if isinstance(waiting, bytes):
            waiting = waiting.decode()
        if not unless_live or (waiting is not None and not lost_jobs([waiting])):
            return False
        redis.set(key, job_id, ex=lease)
    enqueue_drain(handler_name, job_id)
    return True


def enqueue_drain(handler_name: str, job_id: str | None = None) -> None:
    """Put a drain job for batch handler *handler_name* on its queue (a second one is harmless: the two
    share the waiting events)."""
    enqueue(
        run_batches,
        handler_name,
        queue=get_bus().handler(handler_name).queue,
        job_id=job_id or f"drain-{handler_name}-{uuid.uuid4().hex}",
        result_ttl=600,
        failure_ttl=30 * 24 * 3600,
        description=f"{handler_name}: every waiting event",
    )


@job(None)
def run_batches(handler_name: str) -> str:
    """Run batch handler *handler_name* for every pending event, ``BATCH_EVENTS`` at a time, each
    batch in one transaction with its handling rows marked done.

    One drain runs at a time for each handler (on PostgreSQL an advisory lock on a connection of its
    own), so the events are handled in the order they were committed, the one-at-a-time fallback
    included. A drain that finds another running does not wait for it (its worker is wanted for other
    queues): it asks the running one to look again once it is done, and ends. A batch that fails is
    rolled back and its events run one at a time through :func:`run_handler`: the good ones are done,
    a failing one has its try recorded and goes on as its own job, with the retries of every handler
    job.
    """
    get_redis().delete(_wake_key(handler_name))  # before reading: what commits from now on wakes a new drain
    handler = get_bus().handler(handler_name)
    assert handler.batch is not None, f"{handler_name} is not a batch handler"
    with _one_drain(handler_name) as running:
        if not running:
            return "another drain is running: it drains again when it is done"
        started, done = time.monotonic(), 0
        while batch := _next_batch(handler_name):
            keys = [(h.event_id, h.handler, h.queue) for h in batch]  # read before a rollback expires them
            try:
                handler.batch([(get_bus().load(h.event), h.event) for h in batch])
                completed = utcnow()
                for handling in batch:
                    handling.attempts += 1
                    handling.state = HandlingState.done
                    handling.completed_at = completed
                commit()
                done += len(batch)
            except Exception:
                log.exception(
                    "a batch of %d %s event(s) failed: running them one at a time", len(batch), handler_name
                )
                db.session.rollback()
                done += _one_at_a_time(keys)
            if time.monotonic() - started > DRAIN_SECONDS:
                wake(handler_name)
                break
        db.session.rollback()
    return f"{done} handled"


def drain_lock_key(handler_name: str) -> int:
    """The PostgreSQL advisory lock that a drain of *handler_name* holds."""
    return int.from_bytes(hashlib.sha256(f"drain:{handler_name}".encode()).digest()[:8], "big", signed=True)


def _again_key(handler: str) -> str:
    return f"challenges:drain-again:{handler}"


@contextmanager
def _one_drain(handler_name: str) -> Iterator[bool]:
    """Hold the handler's drain lock while the block runs, or yield False at once if another drain
    holds it (PostgreSQL; SQLite runs one writing transaction at a time, and a batch is one). The lock
    is a session lock on a connection of its own, so the drain's commits do not release it, and a
    killed worker's closed connection does.

    A drain that finds the lock taken leaves a note before it tries (``challenges:drain-again:...``);
    the holder, once it has let go, wakes a new drain if it finds one. So an event committed while
    the holder had read its last batch is never left waiting: the note was left after the commit and
    before the holder let go, and the holder looks for it after."""
    if db.engine.dialect.name != "postgresql":
        yield True
        return
    key, again = drain_lock_key(handler_name), _again_key(handler_name)
    redis = get_redis()
    redis.set(again, 1, ex=3600)  # outlives any drain; a stale note costs one drain that finds nothing
    with db.engine.connect() as connection:
        held = connection.scalar(sa.select(sa.func.pg_try_advisory_lock(key)))
        connection.commit()  # the lock is the session's: no transaction is left open while it is held
        if not held:
            yield False
            return
        try:
            with suppress(RedisError):  # a note left in place costs one drain that finds nothing
                redis.delete(again)  # notes left before now are for events this drain will read
            yield True
        finally:
            try:
                connection.execute(sa.select(sa.func.pg_advisory_unlock(key)))
                connection.commit()
            except sa.exc.DBAPIError:  # the server went away, and the lock with it
                connection.invalidate()
            try:
                if redis.delete(again):
                    wake(handler_name)
            except RedisError as exc:  # the sweeper wakes a drain for what waits
                log.warning("could not look for drains that found %s busy: %s", handler_name, exc)


def _next_batch(handler_name: str) -> list[EventHandling]:
    """The oldest pending events of the handler that no drain holds, locked, with their event rows."""
    return list(
        db.session.scalars(
            sa.select(EventHandling)
            .where(
                EventHandling.state == HandlingState.pending,
                EventHandling.handler == handler_name,
                EventHandling.attempts == 0,
            )
            .order_by(EventHandling.created_at, EventHandling.event_id)
            .limit(BATCH_EVENTS)
            .with_for_update(skip_locked=True)
            .options(selectinload(EventHandling.event).lazyload(Event.handlings))
            .execution_options(populate_existing=True)
        )
    )


def _one_at_a_time(handlings: list[tuple[str, str, str]]) -> int:
    """Run each handling in its own transaction; one that fails goes on as its own job after the first
    retry interval. Returns how many were done."""
    done = 0
    for event_id, handler, queue in handlings:
        try:
            if run_handler(event_id, handler) == "handled":
                done += 1
        except Exception:  # noqa: BLE001 - recorded by run_handler; retried as its own job
            intervals = list(current_app.config["EVENT_RETRY_INTERVALS"])
            if intervals:
                try:
                    enqueue(
                        run_handler,
                        event_id,
                        handler,
                        queue=queue,
                        delay=intervals[0],
                        **_job_options(event_id, handler, intervals[1:]),
                    )
                except RedisError:
                    log.warning(
                        "Redis unavailable: the retry of %s for event %s is left to the sweeper",
                        handler,
                        event_id,
                    )
    return done


@job(None)
def run_handler(event_id: str, handler_name: str) -> str:
    """Run one handler for one event, at most once in effect.

    The handling row is locked (``FOR UPDATE`` on PostgreSQL; every SQLite transaction
    begins IMMEDIATE), its state checked, the handler run and the row marked done in the
    same transaction as the handler's effect. A re-delivery finds it done and returns.
    """
    handling = db.session.get(
        EventHandling, (event_id, handler_name), with_for_update=True, populate_existing=True
    )
    if handling is None or handling.state is not HandlingState.pending:
        db.session.rollback()
        return "already handled"
    bus = get_bus()
    db.session.info[RUNNING_HANDLING] = (event_id, handler_name)
    try:
        bus.handler(handler_name).func(bus.load(handling.event), handling.event)
        handling = db.session.get(EventHandling, (event_id, handler_name), with_for_update=True)
        assert handling is not None
        handling.attempts += 1
        handling.state = HandlingState.done
        handling.completed_at = utcnow()
        handling.last_error = None
        commit()
    except HandledElsewhere:
        db.session.rollback()
        return "already handled"
    except Exception as exc:
        db.session.rollback()
        _record_failure(event_id, handler_name, exc)
        raise
    finally:
        db.session.info.pop(RUNNING_HANDLING, None)
    return "handled"


def _record_failure(event_id: str, handler_name: str, exc: BaseException) -> None:
    handling = db.session.get(EventHandling, (event_id, handler_name), with_for_update=True)
    if handling is None or handling.state is not HandlingState.pending:
        db.session.rollback()
        return
    handling.attempts += 1
    handling.last_error = "".join(traceback.format_exception_only(exc)).strip()[:4000]
    if handling.attempts >= current_app.config["EVENT_MAX_ATTEMPTS"]:
        handling.state = HandlingState.dead
        log.error("handler %s gave up on event %s: %s", handler_name, event_id, exc)
    commit()
