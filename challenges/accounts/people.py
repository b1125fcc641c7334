"""Finding people and organisations: by email address, by organisation number, by role."""

from __future__ import annotations

import sqlalchemy as sa

from challenges.accounts.models import (
    Organisation,
    Role,
    User,
    UserRole,
)
from challenges.extensions import db


def user_by_email(email: str) -> User | None:
    return db.session.scalar(sa.select(User).where(User.email == email.strip().lower()))


def organisation_by_number(org_number: str) -> Organisation | None:
    return db.session.scalar(sa.select(Organisation).where(Organisation.org_number == org_number))


def people_with_role(role: Role) -> list[User]:
    """Active people holding *role*, for example the programme managers to tell of a new draft."""
    return list(
        db.session.scalars(
            sa.select(User)
            .join(UserRole, UserRole.user_id == User.id)
            .where(UserRole.role == role, User.active.is_(True))
            .order_by(User.id)
        )
    )
