"""Users, organisations, memberships, roles, server-side login sessions and action tokens."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from flask import url_for
from flask_login import UserMixin
from sqlalchemy.orm import Mapped, mapped_column, relationship

from challenges.core.models import UTCDateTime, enum_column, utcnow
from challenges.core.security import sign_token_id
from challenges.extensions import Model


class OrganisationKind(enum.Enum):
    industrial = "industrial"
    sme = "sme"


class MembershipState(enum.Enum):
    pending = "pending"
    approved = "approved"
    rejected = "rejected"


class Role(enum.Enum):
    """Roles granted by a programme manager. Owner and applicant follow from the organisation."""

    programme_manager = "programme_manager"
    evaluator = "evaluator"


class TokenKind(enum.Enum):
    password_reset = "password_reset"  # noqa: S105 - a token kind, not a secret
    invitation = "invitation"
    registration = "registration"  # an account asked for, waiting for its address to be confirmed


TOKEN_PAGES = {
    TokenKind.password_reset: "accounts.reset_password",
    TokenKind.invitation: "accounts.accept_invitation",
    TokenKind.registration: "accounts.confirm_registration",
}


class Organisation(Model):
    """A company: an industrial challenge owner or a small or medium-sized enterprise."""

    __tablename__ = "organisation"
    __table_args__ = (
        sa.CheckConstraint(
            "kind <> 'sme' OR (staff_headcount IS NOT NULL AND annual_turnover_ore IS NOT NULL"
            " AND balance_sheet_total_ore IS NOT NULL)",
            name="sme_has_size_figures",
        ),
        sa.CheckConstraint("staff_headcount IS NULL OR staff_headcount >= 0", name="staff_not_negative"),
        sa.CheckConstraint(
            "annual_turnover_ore IS NULL OR annual_turnover_ore >= 0", name="turnover_not_negative"
        ),
        sa.CheckConstraint(
            "balance_sheet_total_ore IS NULL OR balance_sheet_total_ore >= 0",
            name="balance_sheet_not_negative",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    org_number: Mapped[str] = mapped_column(sa.String(11), unique=True)
    kind: Mapped[OrganisationKind] = mapped_column(enum_column(OrganisationKind, "organisation_kind"))
    staff_headcount: Mapped[int | None] = mapped_column(sa.Integer)
    annual_turnover_ore: Mapped[int | None] = mapped_column(sa.BigInteger)
    balance_sheet_total_ore: Mapped[int | None] = mapped_column(sa.BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    memberships: Mapped[list[Membership]] = relationship(back_populates="organisation")

    def approved_members(self) -> list[User]:
        return [m.user for m in self.memberships if m.state is MembershipState.approved and m.user.active]


class MailMode(enum.Enum):
    immediate = "immediate"
    daily = "daily"
    off = "off"


class User(UserMixin, Model):
    """A person with a login."""

    __tablename__ = "user_account"
    __table_args__ = (sa.CheckConstraint("language IN ('en', 'sv')", name="known_language"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(sa.String(254), unique=True)
    name: Mapped[str] = mapped_column(sa.String(120))
    password_hash: Mapped[str] = mapped_column(sa.String(255))
    language: Mapped[str] = mapped_column(sa.String(2), default="en")
    # How non-essential messages (follows, questions and answers) reach this person by email.
    mail_mode: Mapped[MailMode] = mapped_column(
        enum_column(MailMode, "mail_mode"),
        default=MailMode.immediate,
        server_default=MailMode.immediate.value,
    )
    active: Mapped[bool] = mapped_column(sa.Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    membership: Mapped[Membership | None] = relationship(
        back_populates="user", uselist=False, foreign_keys="Membership.user_id"
    )
    roles: Mapped[list[UserRole]] = relationship(
        back_populates="user",
        cascade="all, delete-orphan",
        lazy="selectin",
        foreign_keys="UserRole.user_id",
    )

    # The cookie session holds a server-side login-session token, not the user id, so
    # that logout, a password change or disabling ends the session for real.
    __allow_unmapped__ = True
    session_token: str | None = None
    # Figures about the person that every page shows, read with the login session (see
    # ``sessions.load_session``); empty for a user loaded any other way.
    counts: dict[str, int] = {}  # noqa: RUF012 - replaced, never changed in place

    def get_id(self) -> str | None:
        return self.session_token

    @property
    def is_active(self) -> bool:
        return self.active

    def has_role(self, role: Role) -> bool:
        return any(r.role is role for r in self.roles)

    @property
    def is_programme_manager(self) -> bool:
        return self.active and self.has_role(Role.programme_manager)

    @property
    def organisation(self) -> Organisation | None:
        """The organisation this person is an approved member of."""
        m = self.membership
        return m.organisation if m and m.state is MembershipState.approved else None

    @property
    def is_challenge_owner(self) -> bool:
        org = self.organisation
        return org is not None and org.kind is OrganisationKind.industrial

    @property
    def is_sme_member(self) -> bool:
        org = self.organisation
        return org is not None and org.kind is OrganisationKind.sme

    def can_manage_accounts(self) -> bool:
        return self.is_programme_manager

    def can_decide_membership(self, membership: Membership) -> bool:
        return (
            self.active
            and membership.state is MembershipState.pending
            and self.organisation is not None
            and self.organisation.id == membership.organisation_id
        )


class Membership(Model):
    """A person's place in an organisation; joining an existing one needs a member's approval."""

    __tablename__ = "membership"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("user_account.id", ondelete="CASCADE"), unique=True)
    organisation_id: Mapped[int] = mapped_column(sa.ForeignKey("organisation.id"), index=True)
    state: Mapped[MembershipState] = mapped_column(enum_column(MembershipState, "membership_state"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    decided_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user_account.id"))

    user: Mapped[User] = relationship(back_populates="membership", foreign_keys=[user_id])
    organisation: Mapped[Organisation] = relationship(back_populates="memberships")


class UserRole(Model):
    __tablename__ = "user_role"

    user_id: Mapped[int] = mapped_column(
        sa.ForeignKey("user_account.id", ondelete="CASCADE"), primary_key=True
    )
    role: Mapped[Role] = mapped_column(enum_column(Role, "role_name"), primary_key=True)
    granted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    granted_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user_account.id"))

    user: Mapped[User] = relationship(back_populates="roles", foreign_keys=[user_id])


class LoginSession(Model):
    """A server-side login session; deleting the row logs that browser out at once."""

    __tablename__ = "login_session"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("user_account.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    user: Mapped[User] = relationship(lazy="joined")


class ActionToken(Model):
    """A single-use, expiring link sent by email (password reset, evaluator invitation, registration).

    The link carries a signed token id; nothing secret is stored here, and a used or
    expired row refuses a second use.
    """

    __tablename__ = "action_token"
    __table_args__ = (
        sa.CheckConstraint(
            "kind <> 'invitation' OR (email IS NOT NULL AND role IS NOT NULL)",
            name="invitation_has_email_and_role",
        ),
        sa.CheckConstraint(
            "kind <> 'registration' OR (email IS NOT NULL AND payload IS NOT NULL)",
            name="registration_has_email_and_payload",
        ),
    )

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    kind: Mapped[TokenKind] = mapped_column(enum_column(TokenKind, "token_kind"))
    user_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("user_account.id", ondelete="CASCADE"), index=True
    )
    email: Mapped[str | None] = mapped_column(sa.String(254))
    role: Mapped[Role | None] = mapped_column(enum_column(Role, "token_role"))
    # A registration: what the person entered (the password as its hash), used once the address is confirmed.
    payload: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user_account.id"))

    user: Mapped[User | None] = relationship(foreign_keys=[user_id])

    def is_usable(self) -> bool:
        return self.used_at is None and self.expires_at > utcnow()

    def link(self) -> str:
        """The emailed link (absolute): a fresh signature of the token id, for the page of its kind."""
        return url_for(TOKEN_PAGES[self.kind], token=sign_token_id(self.id, self.kind.value), _external=True)
