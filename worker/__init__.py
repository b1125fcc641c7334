"""RQ workers for the platform: one entry point (``python -m worker``), built by the app factory.

Workers are non-forking (:class:`AppWorker`): a forking worker pays about 12 ms per job,
and a forked child must never share the parent's database connections. Each job runs in
an application (and request) context and the database session is removed after it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time

from flask import Flask
from redis.client import Pipeline
from redis.exceptions import RedisError
from rq import Queue, SimpleWorker, worker_registration
from rq.job import Job
from rq.utils import now

from challenges.core import formatting
from challenges.core.bus import PERIODIC_QUEUE, WORKER_QUEUES
from challenges.core.jobs import AppJob
from challenges.extensions import db, get_redis

log = logging.getLogger("worker")


class PromptStop(SimpleWorker):
    """RQ's non-forking worker, whose command-listening thread looks up every second.

    RQ listens for its commands (stop a job, shut down) with a thread that waits up to a minute for a
    message. Since redis-py 8.2, stopping that thread waits for it; when the thread has already read
    its own unsubscription it then waits out its minute, so a burst or a shut-down took a minute
    longer. Waiting a second at a time bounds that to a second.
    """

    LISTEN_SECONDS = 1.0

    def subscribe(self) -> None:  # RQ 2.12's, but for the thread's wait
        self.log.debug("Worker %s: subscribing to channel %s", self.name, self.pubsub_channel_name)
        self.pubsub = self.connection.pubsub()
        self.pubsub.subscribe(**{self.pubsub_channel_name: self.handle_payload})
        self.pubsub_thread = self.pubsub.run_in_thread(  # type: ignore[assignment]  # RQ types it None
            sleep_time=self.LISTEN_SECONDS, daemon=True, exception_handler=self._pubsub_exception_handler
        )


class AppWorker(PromptStop):
    """A non-forking RQ worker that runs every job inside the Flask application context.

    RQ writes four lines a job; this worker writes one, at INFO for the work events bring and at
    DEBUG for the periodic jobs (a periodic job that did something says so at INFO)."""

    def __init__(self, *args, app: Flask, **kwargs) -> None:
        self.app = app
        super().__init__(*args, **kwargs)

    def heartbeat(self, timeout: int | None = None, pipeline: Pipeline | None = None) -> None:
        """RQ's heartbeat, and a worker that Redis has forgotten (restarted empty) lists itself again.

        RQ lists a worker only when it starts: one that outlived a Redis restart went on working
        unlisted, and ``python -m worker health`` said that nobody listened. Outside a job's own
        pipeline the beat and the look go in one round trip (RQ's beat alone takes two)."""
        if pipeline is not None:
            super().heartbeat(timeout, pipeline)
            return
        with self.connection.pipeline() as pipe:
            super().heartbeat(timeout, pipe)
            pipe.sismember(self.redis_workers_keys, self.key)
            listed = pipe.execute()[-1]
        if not listed:
            self.log.warning("Worker %s: Redis had forgotten this worker; listing it again", self.name)
            with self.connection.pipeline() as pipe:
                pipe.hset(self.key, mapping=self.serialize())
                worker_registration.register(self, pipe)
                pipe.expire(self.key, timeout or self.worker_ttl + 60)
                pipe.execute()

    def register_birth(self) -> None:
        super().register_birth()
        log.info("worker %s (pid %d) takes %s", self.name, os.getpid(), ", ".join(self.queue_names()))

    def perform_job(self, job: Job, queue: Queue) -> bool:
        # A fresh app context (its own database session), and a request context on top of
        # it so that jobs can build absolute links. While the job runs, its heartbeat goes on,
        # so that the sweeper can tell a long job from one whose worker was killed.
        stop = threading.Event()
        beat = threading.Thread(target=self._beat, args=(job, stop), name="job-heartbeat", daemon=True)
        beat.start()
        started = time.monotonic()
        try:
            with self.app.app_context(), self.app.test_request_context(base_url=self.app.config["BASE_URL"]):
                try:
                    ok = super().perform_job(job, queue)
                finally:
                    db.session.remove()
        finally:
            stop.set()
            beat.join(timeout=5)
        if ok:  # a failure is logged by RQ, with its traceback
            result = getattr(
                job, "_result", None
            )  # what RQ kept of the return value (asking Redis costs a trip)
            quiet = queue.name == PERIODIC_QUEUE and not result
            log.log(
                logging.DEBUG if quiet else logging.INFO,
                "%s: %s%s, %.0f ms",
                queue.name,
                job.description,
                f" -> {result}" if result not in (None, "") else "",
                (time.monotonic() - started) * 1000,
            )
        return ok

    def _beat(self, job: Job, stop: threading.Event) -> None:
        """RQ's non-forking worker beats only when a job starts and ends: beat every quarter of the
        stall time (EVENT_STALL_SECONDS) while it runs."""
        interval = max(self.app.config["EVENT_STALL_SECONDS"] / 4, 0.5)
        ttl = self.get_heartbeat_ttl(job)
        while not stop.wait(interval):
            with contextlib.suppress(RedisError):  # Redis is away: the job's outcome will tell
                if job.connection.exists(job.key):  # a job Redis lost stays lost (no half-written hash)
                    job.heartbeat(now(), ttl)
                self.heartbeat()  # and the worker's own, which the health check reads


def make_worker(app: Flask, queues: tuple[str, ...] = WORKER_QUEUES, **options) -> AppWorker:
    """A worker on *queues* (in priority order: the ledger first, then the periodic jobs, mail last)."""
    with app.app_context():
        redis = get_redis()
    formatting.warm(app)
    options.setdefault("maintenance_interval", 60)
    options.setdefault("worker_ttl", 60)
    return AppWorker(
        [Queue(q, connection=redis, job_class=AppJob) for q in queues],
        connection=redis,
        app=app,
        job_class=AppJob,
        **options,
    )
