"""Passwords: set by any route (which ends every other session and every outstanding link), changed by the person, and reset by an emailed link."""

from __future__ import annotations

import sqlalchemy as sa
from flask import current_app
from flask_babel import gettext as _

from challenges.accounts import events
from challenges.accounts.links import consume, find_token, new_token
from challenges.accounts.models import (
    ActionToken,
    TokenKind,
    User,
)
from challenges.accounts.people import user_by_email
from challenges.accounts.sessions import end_all_sessions
from challenges.core.errors import ServiceError
from challenges.core.events import record
from challenges.core.models import utcnow
from challenges.core.security import (
    hash_password,
    verify_password,
)
from challenges.extensions import db


def set_password(user: User, password: str, *, via: str, by: User) -> None:
    """Store a new password, end every session of *user* and every reset link still outstanding."""
    user.password_hash = hash_password(password)
    end_all_sessions(user)
    db.session.execute(
        sa.update(ActionToken)
        .where(
            ActionToken.user_id == user.id,
            ActionToken.kind == TokenKind.password_reset,
            ActionToken.used_at.is_(None),
        )
        .values(used_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    db.session.flush()
    record(events.PasswordChanged(user_id=user.id, via=via), by=by)


def change_password(user: User, current: str, new: str) -> None:
    ok, _unused = verify_password(user.password_hash, current)
    if not ok:
        raise ServiceError(_("The current password is not correct."), "current_password")
    set_password(user, new, via="change", by=user)


def request_password_reset(email: str) -> None:
    """Send a reset link if an active account has this address; say nothing either way."""
    user = user_by_email(email)
    if user is None or not user.active:
        return
    token = new_token(TokenKind.password_reset, current_app.config["PASSWORD_RESET_TTL"], user_id=user.id)
    record(events.PasswordResetRequested(user_id=user.id, token_id=token.id), by=user)


def reset_password(signed: str, password: str) -> User:
    token = find_token(signed, TokenKind.password_reset)
    user = token.user
    if user is None or not user.active:
        raise ServiceError(_("This link is not valid. Ask for a new one."))
    consume(token)
    set_password(user, password, via="reset", by=user)
    return user
