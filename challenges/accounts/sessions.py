"""Login sessions kept on the server: checking a password, starting a session, loading it (with what every page shows about the person) and ending it, or all of a person's."""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.orm import joinedload

from challenges.accounts.models import (
    LoginSession,
    Membership,
    User,
)
from challenges.accounts.people import user_by_email
from challenges.core.models import utcnow
from challenges.core.security import (
    burn_verification_time,
    new_session_token,
    token_digest,
    verify_password,
)
from challenges.extensions import db


def authenticate(email: str, password: str) -> User | None:
    """The active user with these credentials, or None; upgrades an outdated hash."""
    user = user_by_email(email)
    if user is None:
        burn_verification_time(password)
        return None
    ok, new_hash = verify_password(user.password_hash, password)
    if not ok or not user.active:
        return None
    if new_hash:
        user.password_hash = new_hash
    return user


def start_session(user: User) -> str:
    """A new server-side session for *user*; returns the token kept in the cookie session."""
    token, digest = new_session_token()
    db.session.add(LoginSession(user_id=user.id, token_hash=digest))
    db.session.flush()
    return token


@functools.cache
def _session_query(counts: tuple[tuple[str, Callable[[Any], Any]], ...]) -> sa.Select:
    """Built once: every request of a logged-in person runs it."""
    columns = [count(LoginSession.user_id).label(name) for name, count in counts]
    return (
        sa.select(LoginSession, *columns)
        .where(LoginSession.token_hash == sa.bindparam("digest"))
        .options(
            joinedload(LoginSession.user).joinedload(User.roles),
            joinedload(LoginSession.user).joinedload(User.membership).joinedload(Membership.organisation),
        )
    )


# Figures every page shows about the person who is logged in (the unread messages in the header), by
# name: each a function of the user id column giving a correlated scalar subquery. The packages that
# own them (above this one) add them when they are imported.
SESSION_COUNTS: dict[str, Callable[[Any], Any]] = {}


def load_session(token: str, **counts: Callable[[Any], Any]) -> User | None:
    """The user of a live session token, or None when it ended, expired or idled out; with the roles,
    membership and organisation that every page asks about, in the same query. *counts* are figures
    every page shows about the person (each a function of the user id column giving a correlated
    scalar subquery): read in that query too, and kept in ``user.counts`` under their names."""
    row = (
        db.session.execute(_session_query(tuple(counts.items())), {"digest": token_digest(token)})
        .unique()
        .one_or_none()
    )
    if row is None or not row[0].user.active:
        return None
    login = row[0]
    now = utcnow()
    config = current_app.config
    if (
        now - login.created_at > config["PERMANENT_SESSION_LIFETIME"]
        or now - login.last_seen_at > config["SESSION_IDLE_TIMEOUT"]
    ):
        return None
    if now - login.last_seen_at > timedelta(minutes=1):  # kept when the request ends, as any change
        login.last_seen_at = now
    login.user.counts = dict(zip(counts, row[1:], strict=True))
    return login.user


def end_session(token: str) -> None:
    db.session.execute(sa.delete(LoginSession).where(LoginSession.token_hash == token_digest(token)))


def end_all_sessions(user: User) -> None:
    db.session.execute(sa.delete(LoginSession).where(LoginSession.user_id == user.id))
