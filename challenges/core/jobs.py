"""Every RQ job is a function in a ``<package>/jobs.py`` (the event runner's in ``core/events.py``),
declared with :func:`job`: its queue, its time limit, its retries and, for a periodic job, the setting
that holds its interval. :func:`enqueue` is the one way to put a job on its queue; the worker lists the
periodic ones (:func:`periodic`) for its scheduler.

RQ stores the dotted path of a job's function in Redis. A job moved or renamed keeps its old path in
*aliases*, so that the jobs already waiting under it (a challenge's closing, scheduled weeks ahead)
still run: the worker's job class looks the path up here first (:func:`resolve`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol, cast

from flask import Flask, current_app
from rq import Queue, Retry
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus
from rq.utils import import_attribute

from challenges.core.models import utcnow
from challenges.core.transaction import commit
from challenges.extensions import get_redis


@dataclass(frozen=True)
class JobKind:
    path: str  # the dotted path RQ stores and imports
    queue: str | None  # None: each enqueue names it (an event handler's job runs on the handler's queue)
    timeout: int  # seconds before RQ stops the job
    retries: tuple[int, ...] = ()  # seconds before each retry of a job that failed
    every: str | None = None  # the setting holding a periodic job's interval, in seconds
    aliases: tuple[str, ...] = ()  # paths it was stored under before


class Declared(Protocol):
    job: JobKind

    def __call__(self, *args: Any, **kwargs: Any) -> Any: ...


_KINDS: dict[str, JobKind] = {}
_FUNCS: dict[str, Callable[..., Any]] = {}
_ALIASES: dict[str, str] = {}


def job(
    queue: str | None,
    *,
    timeout: int = 300,
    retries: tuple[int, ...] = (),
    every: str | None = None,
    aliases: tuple[str, ...] = (),
) -> Callable[[Callable[..., Any]], Declared]:
    """Declare the decorated function an RQ job on *queue*."""

    def declare(func: Callable[..., Any]) -> Declared:
        path = f"{func.__module__}.{func.__qualname__}"
        kind = JobKind(path, queue, timeout, tuple(retries), every, tuple(aliases))
        for name in (path, *aliases):
            if _ALIASES.get(name, path) != path:
                raise ValueError(f"job path {name!r} is already {_ALIASES[name]!r}")
            _ALIASES[name] = path
        _KINDS[path], _FUNCS[path] = kind, func
        declared = cast(Declared, func)
        declared.job = kind
        return declared

    return declare


def kinds() -> list[JobKind]:
    return sorted(_KINDS.values(), key=lambda kind: kind.path)


def resolve(path: str) -> Callable[..., Any]:
    """The function a stored path names, through the aliases of moved jobs."""
    return import_attribute(_ALIASES.get(path, path))


def _options(func: Declared, **overrides: Any) -> dict[str, Any]:
    """RQ's options for one job of *func*: its time limit and retries, then *overrides*."""
    kind = func.job
    found: dict[str, Any] = {"job_timeout": kind.timeout}
    if kind.retries:
        found["retry"] = Retry(max=len(kind.retries), interval=list(kind.retries))
    return {**found, **overrides}


def enqueue(
    func: Declared,
    *args: Any,
    at: datetime | None = None,
    delay: float = 0,
    queue: str | None = None,
    **overrides: Any,
) -> Job:
    """Put one job of *func* on its queue (or *queue*): now, after *delay* seconds, or *at* an instant.
    *overrides* are RQ's options (``job_id``, ``description``, ``result_ttl``…)."""
    name = queue or func.job.queue
    if name is None:
        raise ValueError(f"{func.job.path} runs on the queue each enqueue names")
    target = Queue(name, connection=get_redis())
    settings = _options(func, **overrides)
    if at is not None:
        return target.enqueue_at(at, func.job.path, *args, **settings)
    if delay > 0:
        return target.enqueue_in(timedelta(seconds=delay), func.job.path, *args, **settings)
    return target.enqueue(func.job.path, *args, **settings)


@dataclass(frozen=True)
class Periodic:
    func: Callable[..., Any]
    queue: str
    interval: int  # seconds
    timeout: int


def periodic(app: Flask) -> list[Periodic]:
    """Every periodic job, with the interval its setting gives it."""
    return [
        Periodic(_FUNCS[k.path], k.queue, int(app.config[k.every]), k.timeout)
        for k in kinds()
        if k.every is not None and k.queue is not None
    ]


class AppJob(Job):
    """RQ's job, which finds a moved job's function under the path it was stored with, and keeps what
    the job did when it returns: the job runner's transaction boundary (a job that must keep each
    step as it goes commits those steps itself; one that raises keeps nothing it had not)."""

    def _execute(self) -> Any:
        result = super()._execute()
        commit()
        return result

    @property
    def func(self) -> Any:
        if self.instance is not None or self.func_name is None:
            return super().func
        return resolve(self.func_name)


_LIVE_STATUSES = {JobStatus.QUEUED, JobStatus.STARTED, JobStatus.SCHEDULED, JobStatus.DEFERRED}


def stalled(job: Job, status: JobStatus | None, before: datetime) -> bool:
    """A started job whose heartbeat stopped (the workers beat while a job runs): its worker was
    killed mid-job, and RQ itself would notice only when the worker's key expires, minutes later.
    Running it again is safe: run_handler does nothing for a handling that is done, and waits on its
    row lock otherwise."""
    started = job.last_heartbeat or job.started_at
    return status is JobStatus.STARTED and started is not None and started < before


def _fetch(job_ids: list[str]) -> list[Job | None]:
    """The jobs, None for each that Redis does not hold whole (a heartbeat written after Redis lost
    the job leaves a hash that RQ cannot read)."""
    try:
        return Job.fetch_many(job_ids, connection=get_redis())
    except NoSuchJobError:
        redis = get_redis()
        jobs: list[Job | None] = []
        for job_id in job_ids:
            try:
                jobs.append(Job.fetch(job_id, connection=redis))
            except NoSuchJobError:
                jobs.append(None)
        return jobs


def lost_jobs(job_ids: list[str]) -> set[str]:
    """The jobs among *job_ids* that no worker will run or finish: gone from Redis, ended, or started
    by a worker that stopped beating."""
    stalled_before = utcnow() - timedelta(seconds=current_app.config["EVENT_STALL_SECONDS"])
    lost = set()
    # (_fetch answers one per id; the status was read with the job: neither argument changes an answer)
    for job_id, found in zip(job_ids, _fetch(job_ids), strict=True):  # pragma: no mutate
        status = found.get_status(refresh=False) if found is not None else None  # pragma: no mutate
        if found is None or status not in _LIVE_STATUSES or stalled(found, status, stalled_before):
            lost.add(job_id)
    return lost
