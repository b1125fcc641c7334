"""Public pages kept for visitors: a page as someone who is not logged in sees it, kept in Redis and
served again until the data it shows changes or its time runs out.

A commit that wrote to a table the public pages show (:func:`watch`) bumps one version number in
Redis, and a kept page is served only under the version it was rendered at. A view says until when its
page holds (:func:`holds_until`: a deadline turns an open challenge into a closed one, to the second).
Every page is kept at most ``PAGE_CACHE_SECONDS`` (a minute; 0 keeps none), in case a bump never
reached Redis. A page is kept under its path and the query arguments its view reads, so arguments it
does not read cannot multiply the copies. People who are logged in, and visitors with a message
waiting for them, always get a fresh page; so does everyone when Redis does not answer.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from datetime import datetime
from functools import wraps
from itertools import chain
from typing import Any
from urllib.parse import urlencode

from flask import Response, current_app, g, make_response, request, session
from flask_babel import get_locale
from flask_login import current_user
from redis.exceptions import RedisError
from sqlalchemy import event as sa_event
from sqlalchemy.orm import ORMExecuteState, Session

from challenges.core.events import relay_after_commit
from challenges.core.models import utcnow
from challenges.extensions import get_redis

log = logging.getLogger(__name__)

VERSION_KEY = "challenges:public-version"
PAGE_PREFIX = "challenges:page:"
_CHANGED = "challenges_public_change"
_watched: set[str] = set()  # the tables the public pages show


def watch(*models: Any) -> None:
    """Count a write to any of *models* as a change to the public pages."""
    _watched.update(model.__table__.name for model in models)


@sa_event.listens_for(Session, "before_flush")
def _note_flush(session: Session, _context, _instances) -> None:
    if any(
        getattr(getattr(o, "__table__", None), "name", None) in _watched
        for o in chain(session.new, session.dirty, session.deleted)
    ):
        session.info[_CHANGED] = [True]


@sa_event.listens_for(Session, "do_orm_execute")
def _note_bulk(state: ORMExecuteState) -> None:
    if (
        (state.is_insert or state.is_update or state.is_delete)
        and state.bind_mapper is not None
        and state.bind_mapper.local_table.name in _watched  # type: ignore[attr-defined]
    ):
        state.session.info[_CHANGED] = [True]


def _bump(_changed: list) -> None:
    get_redis().incr(VERSION_KEY)


relay_after_commit(_CHANGED, _bump, "public page change(s)")


def holds_until(instant: datetime | Callable[[], datetime | None] | None) -> None:
    """The page being rendered changes at *instant* (or at what the callable returns, asked only when the
    page is kept); the earliest instant given wins."""
    g.setdefault("page_holds_until", []).append(instant)


def _for_anyone() -> bool:
    """A page that reads the same for every visitor: a GET by someone not logged in, with no message waiting."""
    return request.method == "GET" and not current_user.is_authenticated and not session.get("_flashes")


def _seconds_left() -> int:
    now, seconds = utcnow(), float(current_app.config["PAGE_CACHE_SECONDS"])
    for instant in g.get("page_holds_until", []):
        if callable(instant):
            instant = instant()
        if instant is not None:
            seconds = min(seconds, (instant - now).total_seconds())
    return int(seconds)  # rounded down: never kept past the instant


def _page_key(args: tuple[str, ...]) -> str:
    """The kept page's key: the language, the path and the arguments the view reads, every value of
    each, in a fixed order. The page gives as its own address (``g.page_address``, where the language
    switch returns) only what the key holds: an argument it does not read must not be kept in it."""
    read = [(name, request.args.getlist(name)) for name in args if name in request.args]
    query = urlencode([(name, value) for name, values in read for value in values])
    g.page_address = f"{request.path}?{query}" if query else request.path
    return PAGE_PREFIX + hashlib.sha256(repr((str(get_locale()), request.path, read)).encode()).hexdigest()


def visitor_page(*args: str) -> Callable[[Callable], Callable]:
    """Serve the view to visitors from the kept page when there is one for this address (its path and
    the query arguments *args* that the view reads), language and version of the public data; keep
    what it renders otherwise."""

    def decorate(view: Callable) -> Callable:
        @wraps(view)
        def wrapped(*view_args: Any, **view_kwargs: Any):
            if not _for_anyone() or not current_app.config["PAGE_CACHE_SECONDS"]:
                return view(*view_args, **view_kwargs)
            return _kept_or_rendered(_page_key(args), lambda: view(*view_args, **view_kwargs))

        return wrapped

    return decorate


def _kept_or_rendered(key: str, render: Callable[[], Any]) -> Response:
    try:
        version, kept = (
            v.encode() if isinstance(v, str) else v for v in get_redis().mget([VERSION_KEY, key])
        )
    except RedisError:
        return make_response(render())
    version = version or b"0"
    if kept is not None:
        kept_version, _, page = kept.partition(b"\n")
        if kept_version == version:
            return Response(page, mimetype="text/html")
    response = make_response(render())
    # A page that put something of this visitor's in the session (a form's token) is theirs alone.
    if (
        response.status_code == 200
        and _for_anyone()
        and not session.modified
        and (seconds := _seconds_left()) >= 1
    ):
        try:
            get_redis().set(key, version + b"\n" + response.get_data(), ex=seconds)
        except RedisError as exc:
            log.warning("a public page could not be kept: %s", exc)
    return response
