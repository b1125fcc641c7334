"""Facts about people and organisations. Each fires in the service named in its docstring."""

from __future__ import annotations

from dataclasses import dataclass

from challenges.core.bus import DomainEvent


@dataclass(frozen=True)
class UserRegistered(DomainEvent, type_name="UserRegistered"):
    """A person created an account (``register_user``)."""

    user_id: int


@dataclass(frozen=True)
class RegistrationRequested(DomainEvent, type_name="RegistrationRequested"):
    """Someone asked for an account; a link to confirm the address is emailed (``request_registration``)."""

    token_id: str
    email: str
    language: str


@dataclass(frozen=True)
class RegistrationRepeated(DomainEvent, type_name="RegistrationRepeated"):
    """Someone asked for an account with an address that has one; its owner is told (``request_registration``)."""

    user_id: int


@dataclass(frozen=True)
class OrganisationRegistered(DomainEvent, type_name="OrganisationRegistered"):
    """A new organisation was registered with its first member (``register_user``)."""

    organisation_id: int
    user_id: int


@dataclass(frozen=True)
class MembershipRequested(DomainEvent, type_name="MembershipRequested"):
    """A person asked to join an existing organisation (``register_user``)."""

    membership_id: int
    user_id: int
    organisation_id: int


@dataclass(frozen=True)
class MembershipApproved(DomainEvent, type_name="MembershipApproved"):
    """A member let a person join their organisation (``decide_membership``)."""

    membership_id: int
    user_id: int
    organisation_id: int


@dataclass(frozen=True)
class MembershipRejected(DomainEvent, type_name="MembershipRejected"):
    """A member turned down a request to join (``decide_membership``)."""

    membership_id: int
    user_id: int
    organisation_id: int


@dataclass(frozen=True)
class PasswordResetRequested(DomainEvent, type_name="PasswordResetRequested"):
    """A person asked for a password reset link (``request_password_reset``)."""

    user_id: int
    token_id: str


@dataclass(frozen=True)
class PasswordChanged(DomainEvent, type_name="PasswordChanged"):
    """A password was changed or reset; every other session ended (``set_password``)."""

    user_id: int
    via: str


@dataclass(frozen=True)
class EvaluatorInvited(DomainEvent, type_name="EvaluatorInvited"):
    """A programme manager invited an evaluator by email (``invite_evaluator``)."""

    token_id: str
    email: str
    language: str


@dataclass(frozen=True)
class InvitationAccepted(DomainEvent, type_name="InvitationAccepted"):
    """An invited person accepted and holds the role (``accept_invitation``)."""

    token_id: str
    user_id: int


@dataclass(frozen=True)
class RoleGranted(DomainEvent, type_name="RoleGranted"):
    """A programme manager granted a role (``grant_role``)."""

    user_id: int
    role: str


@dataclass(frozen=True)
class RoleRevoked(DomainEvent, type_name="RoleRevoked"):
    """A programme manager removed a role (``revoke_role``)."""

    user_id: int
    role: str


@dataclass(frozen=True)
class AccountDisabled(DomainEvent, type_name="AccountDisabled"):
    """A programme manager disabled an account; all its sessions ended (``disable_account``)."""

    user_id: int


@dataclass(frozen=True)
class AccountEnabled(DomainEvent, type_name="AccountEnabled"):
    """A programme manager enabled a disabled account again (``enable_account``)."""

    user_id: int


@dataclass(frozen=True)
class OrganisationFiguresChanged(DomainEvent, type_name="OrganisationFiguresChanged"):
    """A member corrected the organisation number or the SME size figures
    (``update_organisation_figures``); the payload keeps the figures as they now are."""

    organisation_id: int
    org_number: str
    staff_headcount: int
    annual_turnover_ore: int
    balance_sheet_total_ore: int


ALL = (
    UserRegistered,
    RegistrationRequested,
    RegistrationRepeated,
    OrganisationRegistered,
    MembershipRequested,
    MembershipApproved,
    MembershipRejected,
    PasswordResetRequested,
    PasswordChanged,
    EvaluatorInvited,
    InvitationAccepted,
    RoleGranted,
    RoleRevoked,
    AccountDisabled,
    AccountEnabled,
    OrganisationFiguresChanged,
)
