"""Open innovation challenge platform: the Flask application factory."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from flask import Flask, has_request_context, request, session
from redis import Redis
from sqlalchemy import event as sa_event
from werkzeug.routing import IntegerConverter

from challenges.config import PROJECT_ROOT, driver_url, from_environment


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Build the application: configuration, extensions, the event table, blueprints."""
    overrides = dict(config or {})
    instance_path = Path(
        overrides.pop("INSTANCE_PATH", None) or os.environ.get("INSTANCE_PATH") or PROJECT_ROOT / "instance"
    )
    app = Flask(
        __name__,
        template_folder=str(PROJECT_ROOT / "templates"),
        instance_path=str(instance_path.resolve()),
    )
    app.config.update(from_environment(instance_path))
    app.config.update(overrides)
    _configure_database_url(app)

    _import_models()
    _init_extensions(app)
    _register_events(app)
    _import_jobs()
    app.url_map.converters["int"] = DatabaseInt
    _register_blueprints(app)

    from challenges.calls.views import PUBLIC_MODELS
    from challenges.core import pagecache

    pagecache.watch(*PUBLIC_MODELS)

    from challenges import cli
    from challenges.core import errors, formatting, readonly, security, transaction

    transaction.init_app(app)
    readonly.init_app(app)
    errors.init_app(app)
    formatting.init_app(app)
    security.init_app(app)
    cli.init_app(app)
    return app


class DatabaseInt(IntegerConverter):
    """``<int:…>`` in a URL only matches ids a database column can hold: a longer number is a
    plain 404, never an overflow inside the database driver."""

    def __init__(self, url_map, *args, **kwargs) -> None:
        kwargs.setdefault("max", 2**31 - 1)
        super().__init__(url_map, *args, **kwargs)


def _configure_database_url(app: Flask) -> None:
    url = app.config["SQLALCHEMY_DATABASE_URI"] = driver_url(app.config["SQLALCHEMY_DATABASE_URI"])
    options = app.config.setdefault("SQLALCHEMY_ENGINE_OPTIONS", {})
    if url.startswith("sqlite"):
        options.setdefault("connect_args", {"timeout": 30})
    else:
        options.setdefault("pool_pre_ping", True)
        options.setdefault("connect_args", {"connect_timeout": 5})


def _init_extensions(app: Flask) -> None:
    from challenges.extensions import babel, csrf, db, limiter, login_manager, migrate

    db.init_app(app)
    with app.app_context():
        if db.engine.dialect.name == "sqlite":
            _configure_sqlite(db.engine)
    from challenges.calls.catalogue import include_name

    migrate.init_app(
        app, db, directory=str(PROJECT_ROOT / "migrations"), render_as_batch=True, include_name=include_name
    )

    login_manager.init_app(app)
    login_manager.login_view = "accounts.login"
    login_manager.session_protection = "basic"
    from challenges.core.translation import lazy_gettext as _l

    login_manager.login_message = _l("Log in to see this page.")
    csrf.init_app(app)
    babel.init_app(app, locale_selector=_select_locale)
    from challenges.core import translation

    translation.install(app, babel)

    app.config.setdefault("RATELIMIT_STORAGE_URI", app.config["REDIS_URL"])
    app.config.setdefault("RATELIMIT_STORAGE_OPTIONS", {"socket_connect_timeout": 1, "socket_timeout": 1})
    app.config.setdefault("RATELIMIT_KEY_PREFIX", "challenges-limit")
    limiter.init_app(app)
    app.extensions["redis"] = Redis.from_url(
        app.config["REDIS_URL"], socket_connect_timeout=2, socket_timeout=10
    )

    from flask_babel import get_locale

    app.jinja_env.globals["get_locale"] = get_locale


def _configure_sqlite(engine) -> None:
    """Foreign keys on, WAL, and every transaction BEGIN IMMEDIATE.

    SQLAlchemy drops ``FOR UPDATE`` on SQLite; taking the write lock at BEGIN gives a
    locked read the same meaning it has on PostgreSQL.
    """

    @sa_event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA busy_timeout = 30000")
        cursor.close()

    @sa_event.listens_for(engine, "begin")
    def _on_begin(connection):
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def _select_locale() -> str:
    from flask import current_app
    from flask_login import current_user

    languages = current_app.config["LANGUAGES"]
    if not has_request_context():  # a CLI command or a job outside force_locale()
        return str(current_app.config["BABEL_DEFAULT_LOCALE"])
    chosen = session.get("language")
    if chosen in languages:
        return str(chosen)
    if current_user and current_user.is_authenticated and current_user.language in languages:
        return current_user.language
    return str(request.accept_languages.best_match(languages) or current_app.config["BABEL_DEFAULT_LOCALE"])


def _import_models() -> None:
    """Every model module, so the metadata (and Alembic) sees every table."""
    import challenges.accounts.models
    import challenges.calls.models
    import challenges.core.models
    import challenges.funding.models
    import challenges.notifications.models
    import challenges.programmes.models
    import challenges.projects.models
    import challenges.proposals.models
    import challenges.reports.models
    import challenges.reviews.models  # noqa: F401


def _import_jobs() -> None:
    """Every module of jobs (each declares its own, ``core.jobs.job``): the one place they are listed,
    so the scheduler finds every periodic job and a worker every path a job was stored under."""
    import challenges.calls.jobs
    import challenges.core.events
    import challenges.notifications.jobs
    import challenges.projects.jobs
    import challenges.reviews.jobs  # noqa: F401


def _register_events(app: Flask) -> None:
    """The one place where modules subscribe their handlers to events."""
    from challenges.calls import handlers as call_handlers
    from challenges.core.bus import EventBus
    from challenges.funding import handlers as funding_handlers
    from challenges.notifications import about_accounts, about_challenges
    from challenges.notifications import handlers as notification_handlers
    from challenges.projects import handlers as project_handlers
    from challenges.proposals import handlers as proposal_handlers
    from challenges.reviews import handlers as review_handlers

    bus = EventBus()
    call_handlers.register(bus)
    about_accounts.register(bus)
    about_challenges.register(bus)
    proposal_handlers.register(bus)
    review_handlers.register(bus)
    funding_handlers.register(bus)
    project_handlers.register(bus)
    notification_handlers.register(bus)
    bus.check()
    app.extensions["event_bus"] = bus


def _register_blueprints(app: Flask) -> None:
    import challenges.accounts.admin_views
    import challenges.accounts.organisation_views  # noqa: F401 - their pages, on the accounts blueprint
    import challenges.calls.exchange_views  # noqa: F401 - its pages, on the blueprint
    import challenges.calls.lists_views  # noqa: F401 - its pages, on the blueprint
    import challenges.proposals.attachment_views  # noqa: F401 - its pages, on the blueprint
    import challenges.reviews.desk_views  # noqa: F401 - its pages, on the blueprint
    from challenges.accounts.views import bp as accounts_bp
    from challenges.calls.views import bp as calls_bp
    from challenges.core.views import bp as core_bp
    from challenges.funding.views import bp as funding_bp
    from challenges.notifications.views import bp as notifications_bp
    from challenges.notifications.views import inbox as inbox_bp
    from challenges.projects.views import bp as projects_bp
    from challenges.proposals.views import bp as proposals_bp
    from challenges.reports.views import bp as reports_bp
    from challenges.reviews.views import bp as reviews_bp

    app.register_blueprint(core_bp)
    app.register_blueprint(accounts_bp)
    app.register_blueprint(calls_bp)
    app.register_blueprint(notifications_bp)
    app.register_blueprint(inbox_bp)
    app.register_blueprint(proposals_bp)
    app.register_blueprint(reviews_bp)
    app.register_blueprint(funding_bp)
    app.register_blueprint(projects_bp)
    app.register_blueprint(reports_bp)
