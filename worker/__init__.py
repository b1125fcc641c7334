"""RQ workers for the platform: one entry point (``python -m worker``), built by the app factory.

Workers are non-forking (:class:`AppWorker`): a forking worker pays about 12 ms per job,
and a forked child must never share the parent's database connections. Each job runs in
an application (and request) context and the database session is removed after it.
"""

from __future__ import annotations

from flask import Flask
from rq import Queue, SimpleWorker
from rq.job import Job

from challenges.core.events import QUEUES
from challenges.extensions import db, get_redis


class AppWorker(SimpleWorker):
    """A non-forking RQ worker that runs every job inside the Flask application context."""

    def __init__(self, *args, app: Flask, **kwargs) -> None:
        self.app = app
        super().__init__(*args, **kwargs)

    def perform_job(self, job: Job, queue: Queue) -> bool:
        # A fresh app context (its own database session), and a request context on top of
        # it so that jobs can build absolute links.
        with self.app.app_context(), self.app.test_request_context(base_url=self.app.config["BASE_URL"]):
            try:
                return super().perform_job(job, queue)
            finally:
                db.session.remove()


def make_worker(app: Flask, queues: tuple[str, ...] = QUEUES, **options) -> AppWorker:
    """A worker on *queues* (in priority order: the ledger first, mail last)."""
    with app.app_context():
        redis = get_redis()
    options.setdefault("maintenance_interval", 60)
    options.setdefault("worker_ttl", 60)
    return AppWorker([Queue(q, connection=redis) for q in queues], connection=redis, app=app, **options)
