"""Fixtures: the app on SQLite or PostgreSQL (``DATABASE_URL``), a real Redis, a real SMTP server."""

from __future__ import annotations

import contextvars
import functools
import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask, has_app_context
from flask.testing import FlaskClient
from flask_migrate import upgrade

from challenges import create_app
from challenges.accounts.models import OrganisationKind, Role
from challenges.config import driver_url
from challenges.extensions import db, get_redis, limiter
from tests.factories import TEST_PASSWORD, make_manager, make_org, make_user, make_year, topics
from tests.services import RedisServer, SMTPRecorder, start_smtp
from worker import make_worker


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def smtp_session() -> Iterator[SMTPRecorder]:
    controller, recorder = start_smtp()
    recorder.port = controller.port  # type: ignore[attr-defined]
    yield recorder
    controller.stop()


def _database_url(tmp: Path) -> str:
    url = os.environ.get("DATABASE_URL")
    return url or f"sqlite:///{tmp / 'test.db'}"


def _owner_engine(app: Flask) -> sa.Engine:
    """The owner's engine when the app runs as a role that owns nothing (DATABASE_OWNER_URL), else the app's."""
    owner = app.config.get("DATABASE_OWNER_URL")
    if not owner:
        return db.engine
    if "owner_engine" not in app.extensions:
        app.extensions["owner_engine"] = sa.create_engine(driver_url(owner))
    return app.extensions["owner_engine"]


def _reset_schema(app: Flask) -> None:
    """Start from an empty database and build the schema through the migrations only (as the owner,
    who then grants the app's role what it needs)."""
    with app.app_context():
        if db.engine.dialect.name == "postgresql":
            with _owner_engine(app).begin() as conn:
                conn.execute(sa.text("DROP SCHEMA public CASCADE"))
                conn.execute(sa.text("CREATE SCHEMA public"))
        upgrade()
        db.session.remove()


def test_config(tmp: Path, redis_url: str, smtp_port: int) -> dict:
    return {
        "TESTING": True,
        "INSTANCE_PATH": tmp / "instance",
        "SECRET_KEY": "test-secret-key-not-for-production",
        "SQLALCHEMY_DATABASE_URI": _database_url(tmp),
        "DATABASE_OWNER_URL": os.environ.get("DATABASE_OWNER_URL") or None,
        "REDIS_URL": redis_url,
        "RATELIMIT_STORAGE_URI": redis_url,
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": smtp_port,
        "SMTP_TIMEOUT": 5,
        "BASE_URL": "http://localhost",
        # Cheap hashing keeps the suite fast; one test checks the production parameters.
        "ARGON2_TIME_COST": 1,
        "ARGON2_MEMORY_COST": 1024,
        "ARGON2_PARALLELISM": 1,
        "EVENT_RETRY_INTERVALS": [],
        "EVENT_LEASE_SECONDS": 0,
    }


class IsolatedClient(FlaskClient):
    """Each request runs in a fresh context, as a real request would, even while a test
    holds an application context open for its own database work."""

    def open(self, *args, **kwargs):
        if has_app_context():
            db.session.commit()  # the request must see the test's rows, and not wait on its lock
        return contextvars.Context().run(super().open, *args, **kwargs)


@pytest.fixture(scope="session")
def app(tmp_path_factory, redis_server, smtp_session) -> Flask:
    tmp = tmp_path_factory.mktemp("app")
    application = create_app(test_config(tmp, redis_server.url, smtp_session.port))  # type: ignore[attr-defined]
    application.test_client_class = IsolatedClient
    _reset_schema(application)
    return application


@pytest.fixture(autouse=True)
def _fresh_caches_under_mutation() -> None:
    """Under mutation testing (mutmut sets MUTANT_UNDER_TEST) each test builds the statements kept per
    process afresh: otherwise only the first test to reach a builder would run it, and a mutant of it
    would meet none of the tests that check what it builds."""
    if "MUTANT_UNDER_TEST" not in os.environ:
        return
    for name, module in list(sys.modules.items()):
        if name.startswith("challenges."):
            for value in list(vars(module).values()):
                if isinstance(value, functools._lru_cache_wrapper):  # functools.cache and lru_cache
                    value.cache_clear()


@pytest.fixture(autouse=True)
def _clean(request) -> Iterator[None]:
    """Every test starts with empty tables, an empty Redis and an empty mailbox."""
    yield
    if "app" not in request.fixturenames:
        return
    application: Flask = request.getfixturevalue("app")
    redis_server: RedisServer = request.getfixturevalue("redis_server")
    if redis_server.proc is None:
        redis_server.start()
    with application.app_context():
        db.session.remove()
        tables = [t.name for t in reversed(db.metadata.sorted_tables)]
        with _owner_engine(application).begin() as conn:
            if (
                conn.dialect.name == "postgresql"
            ):  # the audit trail's triggers refuse TRUNCATE but to a replica
                conn.execute(sa.text("SET LOCAL session_replication_role = replica"))
                conn.execute(sa.text(f"TRUNCATE {', '.join(tables)} CASCADE"))
            else:  # immutable tables refuse DELETE: lift their triggers for the clean-up only
                triggers = conn.execute(
                    sa.text(
                        "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND sql LIKE '%immutable%'"
                    )
                ).all()
                for name, _sql in triggers:
                    conn.execute(sa.text(f"DROP TRIGGER {name}"))
                for name in tables:
                    conn.execute(sa.text(f"DELETE FROM {name}"))  # noqa: S608 - our own table names
                for _name, sql in triggers:
                    conn.execute(sa.text(sql))
        get_redis().flushdb()
        limiter.reset()
    request.getfixturevalue("smtp_session").reset()


@pytest.fixture
def owner(app) -> sa.Engine:
    """The database as its owner: what the platform's own role may not do (DATABASE_OWNER_URL on PostgreSQL)."""
    with app.app_context():
        return _owner_engine(app)


@pytest.fixture
def smtp(smtp_session) -> SMTPRecorder:
    return smtp_session


@pytest.fixture
def ctx(app) -> Iterator[None]:
    with app.app_context():
        yield
        db.session.remove()


@pytest.fixture
def drain(app):
    """Run a burst worker on every queue until they are empty (real RQ on the real Redis)."""

    def run() -> None:
        if has_app_context():
            db.session.commit()  # end the test's transaction, so it sees what the worker writes
        contextvars.Context().run(make_worker(app).work, burst=True, logging_level="WARNING")

    return run


CSRF_RE = re.compile(
    r'<input[^>]*name="csrf_token"[^>]*value="([^"]+)"|<input[^>]*value="([^"]+)"[^>]*name="csrf_token"'
)


class Browser:
    """A test client that fills in the CSRF token from the page, as a browser would."""

    def __init__(self, client: FlaskClient) -> None:
        self.client = client

    def get(self, url: str, **kwargs):
        return self.client.get(url, **kwargs)

    def csrf(self, page_url: str = "/login") -> str:
        page = self.client.get(page_url).get_data(as_text=True)
        match = CSRF_RE.search(page)
        assert match, f"no CSRF token on {page_url}"
        return match.group(1) or match.group(2)

    def submit(self, url: str, data: dict, page_url: str | None = None, **kwargs):
        page_url = page_url or (url if url not in {"/logout", "/language"} else "/")
        token = self.csrf(page_url)
        headers = {"Referer": f"https://localhost{page_url}", **kwargs.pop("headers", {})}
        return self.client.post(url, data={**data, "csrf_token": token}, headers=headers, **kwargs)

    def login(self, email: str, password: str = TEST_PASSWORD):
        return self.submit("/login", {"email": email, "password": password})

    def logout(self):
        return self.submit("/logout", {}, page_url="/account")


@pytest.fixture
def client(app) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def browser(client) -> Browser:
    return Browser(client)


@pytest.fixture
def make_browser(app):
    """A new browser of its own; logged in as *email* when one is given."""

    def make(email: str | None = None) -> Browser:
        b = Browser(app.test_client())
        if email:
            assert b.login(email).status_code == 303, f"{email} could not log in"
        return b

    return make


@pytest.fixture
def people(app, ctx):
    """For the challenge and proposal tests: everyone the access rules tell apart, committed, with the default topics and a year."""
    owner_org = make_org(OrganisationKind.industrial, name="Steel Works AB")
    cast = {
        "owner": make_user("owner@steel.example.com", org=owner_org, name="Olle Owner"),
        "colleague": make_user("colleague@steel.example.com", org=owner_org),
        "other_owner": make_user("owner@cars.example.com", org=make_org(OrganisationKind.industrial)),
        "sme": make_user("sara@sensors.example.com", org=make_org(OrganisationKind.sme, name="Sensors AB")),
        "other_sme": make_user("jonas@robots.example.com", org=make_org(OrganisationKind.sme)),
        "evaluator": make_user("eva@evaluators.example.com", roles=(Role.evaluator,)),
        "manager": make_manager(),
    }
    topics()
    make_year()
    db.session.commit()
    return cast
