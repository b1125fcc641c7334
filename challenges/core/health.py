"""How the platform is, for its operator: whether it is ready (the database, Redis, the migrations),
and how its background work goes (queues, workers, the scheduler, event handlers).

``python -m worker health`` prints :func:`report` and exits non-zero when it names a problem; the
programme manager's ``/admin/health`` page shows the same; ``/readyz`` answers :func:`readiness`.
Everything here reads: a look at the platform changes nothing it runs on (RQ's own listing of workers
drops the names of workers whose keys Redis has already expired, and that is all).
"""

from __future__ import annotations

import dataclasses
import os
import socket
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cache
from typing import Any

import sqlalchemy as sa
from alembic.script import ScriptDirectory
from flask import current_app
from redis.exceptions import RedisError
from rq import Queue, Worker
from rq.cron import CronScheduler
from rq.job import Job
from rq.registry import StartedJobRegistry
from rq.worker import BaseWorker

from challenges.config import PROJECT_ROOT
from challenges.core.bus import WORKER_QUEUES
from challenges.core.jobs import stalled
from challenges.core.models import EventHandling, HandlingState, utcnow
from challenges.core.translation import lazy_gettext as _l
from challenges.extensions import db, get_redis

# An idle worker beats each time its wait for a job ends (every 45 s with the platform's 60 s time to
# live) and a busy one every quarter of EVENT_STALL_SECONDS; the scheduler beats at least each minute.
SILENT_SECONDS = 90
SCHEDULER_NAME = "challenges-periodic"

# What a report can find, in words for the operator (the command line reads them in English).
FINDINGS = {
    "database": _l("The database does not answer (%(error)s)."),
    "migrations": _l(
        "The database's migrations are at %(found)s, not at the newest: run flask --app wsgi db upgrade."
    ),
    "redis": _l("Redis does not answer (%(error)s)."),
    "no_worker": _l("No worker takes jobs from the %(queue)s queue."),
    "stalled": _l("Job %(job)s on the %(queue)s queue has stalled: its worker stopped beating."),
    "no_scheduler": _l("The scheduler is not running: no deadline, reminder or sweep is started."),
    "worker_gone": _l("Worker %(worker)s (%(host)s, process %(pid)s) is gone."),
    "worker_silent": _l("Worker %(worker)s (%(host)s, process %(pid)s) has stopped beating."),
    "failed_handlers": _l(
        "Event handlers that failed every retry, waiting for a programme manager: %(count)d."
    ),
}


@dataclass(frozen=True)
class Finding:
    """One thing a report found: a key of FINDINGS and its values."""

    key: str
    values: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        return str(FINDINGS[self.key]) % self.values


@dataclass(frozen=True)
class QueueState:
    name: str
    depth: int  # jobs waiting
    oldest_seconds: float | None  # how long the first of them has waited
    started: int  # jobs being run
    listeners: int  # live workers that take from it


@dataclass(frozen=True)
class WorkerState:
    name: str
    hostname: str
    pid: int | None
    state: str
    queues: tuple[str, ...]
    current_job: str | None
    beat_seconds: float | None  # since the last heartbeat
    alive: bool  # beating, and (on this machine) its process is there


@dataclass(frozen=True)
class SchedulerState:
    name: str
    hostname: str
    pid: int | None
    beat_seconds: float | None
    alive: bool


@dataclass(frozen=True)
class HandlerCounts:
    failed: int  # gave up after every retry: the dead letters
    retrying: int  # failed at least once, waiting for the next try
    pending: int  # all not yet done, the retrying among them
    oldest_pending_seconds: float | None


@dataclass
class Report:
    checked_at: datetime
    database: str = "ok"
    redis: str = "ok"
    migrations: str = "ok"
    queues: list[QueueState] = field(default_factory=list)
    workers: list[WorkerState] = field(default_factory=list)
    schedulers: list[SchedulerState] = field(default_factory=list)
    handlers: HandlerCounts | None = None
    stalled_jobs: list[str] = field(default_factory=list)
    problems: list[Finding] = field(default_factory=list)  # each makes the platform unhealthy
    notes: list[Finding] = field(default_factory=list)  # worth a look, but nothing is stopped

    @property
    def healthy(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, Any]:
        def plain(value):
            return value.isoformat() if isinstance(value, datetime) else value

        out = dataclasses.asdict(self, dict_factory=lambda items: {k: plain(v) for k, v in items})
        for kind in ("problems", "notes"):
            out[kind] = [
                {**found, "text": str(finding)}
                for found, finding in zip(out[kind], getattr(self, kind), strict=True)
            ]
        return {"healthy": self.healthy, **out}


def _seconds(since: datetime | None, now: datetime) -> float | None:
    if since is None:
        return None
    if since.tzinfo is None:  # RQ keeps naive UTC times
        since = since.replace(tzinfo=now.tzinfo)
    return max((now - since).total_seconds(), 0.0)


def process_alive(hostname: str, pid: int | None) -> bool | None:
    """Whether the process *pid* runs, when it runs on this machine; None when that cannot be told."""
    if hostname != socket.gethostname() or not pid:
        return None
    try:  # on Linux, a process that died but was not yet waited for is a zombie: gone all the same
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
            return stat.read().rsplit(")", 1)[-1].split()[0] not in ("Z", "X")
    except FileNotFoundError:
        return False
    except OSError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@cache
def migration_heads() -> tuple[str, ...]:
    """The newest revisions in ``migrations/`` (read once per process)."""
    return tuple(sorted(ScriptDirectory(str(PROJECT_ROOT / "migrations")).get_heads()))


def _check_database(report: Report) -> None:
    try:  # what alembic's MigrationContext reads, without its log lines; on the request's own connection
        current = tuple(sorted(db.session.scalars(sa.text("SELECT version_num FROM alembic_version"))))
    except Exception as exc:  # noqa: BLE001 - any failure is the answer
        db.session.rollback()
        report.database = f"error: {type(exc).__name__}"
        report.migrations = "unknown"
        report.problems.append(Finding("database", {"error": type(exc).__name__}))
        return
    if current != migration_heads():
        found = ", ".join(current) or "none"
        report.migrations = f"at {found}, not at {', '.join(migration_heads())}"
        report.problems.append(Finding("migrations", {"found": found}))


def readiness() -> Report:
    """Whether this web process can serve: the database answers at the newest migration, Redis answers."""
    report = Report(checked_at=utcnow())
    _check_database(report)
    try:
        get_redis().ping()
    except RedisError as exc:
        report.redis = f"error: {type(exc).__name__}"
        report.problems.append(Finding("redis", {"error": type(exc).__name__}))
    return report


def _alive(hostname: str, pid: int | None, beat: float | None) -> bool:
    """Beating lately, and (on this machine) its process is there."""
    return process_alive(hostname, pid) is not False and beat is not None and beat < SILENT_SECONDS


def _worker_state(worker: BaseWorker, now: datetime) -> WorkerState:
    beat = _seconds(worker.last_heartbeat, now)
    state = worker.get_state()
    return WorkerState(
        name=worker.name,
        hostname=worker.hostname or "",
        pid=worker.pid,
        state=getattr(state, "value", str(state)),
        queues=tuple(worker.queue_names()),
        current_job=worker.get_current_job_id(),
        beat_seconds=beat,
        alive=_alive(worker.hostname or "", worker.pid, beat),
    )


def _queue_state(queue: Queue, listeners: int, now: datetime) -> QueueState:
    first = queue.get_job_ids(0, 0)
    job = Job.fetch(first[0], connection=queue.connection) if first else None
    return QueueState(
        name=queue.name,
        depth=queue.count,
        oldest_seconds=_seconds(job.enqueued_at if job else None, now),
        started=StartedJobRegistry(queue=queue).get_job_count(cleanup=False),
        listeners=listeners,
    )


def _check_background(report: Report, now: datetime) -> None:
    redis = get_redis()
    report.workers = sorted(
        (_worker_state(w, now) for w in Worker.all(connection=redis)), key=lambda w: w.name
    )
    for worker in report.workers:
        if not worker.alive:
            gone = process_alive(worker.hostname, worker.pid) is False
            report.notes.append(
                Finding(
                    "worker_gone" if gone else "worker_silent",
                    {"worker": worker.name, "host": worker.hostname, "pid": worker.pid},
                )
            )
    stall_before = now - timedelta(seconds=current_app.config["EVENT_STALL_SECONDS"])
    for name in WORKER_QUEUES:
        queue = Queue(name, connection=redis)
        listeners = sum(1 for w in report.workers if w.alive and name in w.queues)
        report.queues.append(_queue_state(queue, listeners, now))
        if not listeners:
            report.problems.append(Finding("no_worker", {"queue": name}))
        for job_id in StartedJobRegistry(queue=queue).get_job_ids(cleanup=False):
            job = Job.fetch(job_id, connection=redis) if redis.exists(Job.key_for(job_id)) else None
            if job is not None and stalled(job, job.get_status(refresh=False), stall_before):
                report.stalled_jobs.append(job_id)
                report.problems.append(Finding("stalled", {"job": job_id, "queue": name}))
    for scheduler in CronScheduler.all(connection=redis, cleanup=False):
        beat = _seconds(scheduler.last_heartbeat, now)
        report.schedulers.append(
            SchedulerState(
                name=scheduler.name,
                hostname=scheduler.hostname,
                pid=scheduler.pid,
                beat_seconds=beat,
                alive=_alive(scheduler.hostname, scheduler.pid, beat),
            )
        )
    if not any(s.alive for s in report.schedulers):
        report.problems.append(Finding("no_scheduler"))


def _count_handlers(report: Report, now: datetime) -> None:
    retried = (EventHandling.attempts > sa.literal_column("0")).label(
        "retried"
    )  # one expression, no parameter
    rows = db.session.execute(
        sa.select(EventHandling.state, retried, sa.func.count(), sa.func.min(EventHandling.created_at))
        .where(EventHandling.state.in_([HandlingState.pending, HandlingState.dead]))
        .group_by(EventHandling.state, retried)
    ).all()
    db.session.rollback()
    pending = [(retried, n, oldest) for state, retried, n, oldest in rows if state is HandlingState.pending]
    report.handlers = HandlerCounts(
        failed=sum(n for state, _r, n, _o in rows if state is HandlingState.dead),
        retrying=sum(n for retried, n, _o in pending if retried),
        pending=sum(n for _r, n, _o in pending),
        oldest_pending_seconds=_seconds(min((o for _r, _n, o in pending), default=None), now),
    )
    if report.handlers.failed:
        report.notes.append(Finding("failed_handlers", {"count": report.handlers.failed}))


def report() -> Report:
    """Everything :func:`readiness` checks, and the queues, workers, scheduler and event handlers."""
    now = utcnow()
    found = readiness()
    found.checked_at = now
    if found.database == "ok":
        _count_handlers(found, now)
    if found.redis == "ok":
        try:
            _check_background(found, now)
        except RedisError as exc:
            found.redis = f"error: {type(exc).__name__}"
            found.problems.append(Finding("redis", {"error": type(exc).__name__}))
    return found
