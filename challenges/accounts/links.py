"""One-time links (a registration, a password reset, an invitation): made with a lifetime, found from the signed token in the link, and used once."""

from __future__ import annotations

import uuid
from datetime import timedelta

import sqlalchemy as sa
from flask import current_app
from flask_babel import gettext as _

from challenges.accounts.models import (
    ActionToken,
    TokenKind,
)
from challenges.core.errors import ServiceError
from challenges.core.models import utcnow
from challenges.core.security import (
    unsign_token_id,
)
from challenges.extensions import db

TOKEN_TTLS = {
    TokenKind.password_reset: "PASSWORD_RESET_TTL",
    TokenKind.invitation: "INVITATION_TTL",
    TokenKind.registration: "REGISTRATION_TTL",
}


def new_token(kind: TokenKind, ttl: timedelta, **fields) -> ActionToken:
    token = ActionToken(id=str(uuid.uuid4()), kind=kind, expires_at=utcnow() + ttl, **fields)
    db.session.add(token)
    db.session.flush()
    return token


def find_token(signed: str, kind: TokenKind) -> ActionToken:
    """The usable token behind a link, or a ServiceError saying why it cannot be used."""
    ttl = current_app.config[TOKEN_TTLS[kind]]
    token_id = unsign_token_id(signed, kind.value, int(ttl.total_seconds()))
    token = db.session.get(ActionToken, token_id) if token_id else None
    if token is None or token.kind is not kind:
        raise ServiceError(_("This link is not valid. Ask for a new one."))
    if token.used_at is not None:
        raise ServiceError(_("This link has already been used. Ask for a new one."))
    if not token.is_usable():
        raise ServiceError(_("This link has expired. Ask for a new one."))
    return token


def consume(token: ActionToken) -> None:
    """Mark *token* used; a concurrent second use finds zero rows and is refused."""
    result = db.session.execute(
        sa.update(ActionToken)
        .where(ActionToken.id == token.id, ActionToken.used_at.is_(None))
        .values(used_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise ServiceError(_("This link has already been used. Ask for a new one."))
