"""Every change to people, organisations and roles: registration, memberships, invitations, roles,
disabling, profiles. Services flush, never commit. Sessions, passwords, one-time links and finding
people have modules of their own."""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app
from flask_babel import gettext as _

from challenges.accounts import events
from challenges.accounts.links import consume, find_token, new_token
from challenges.accounts.models import (
    ActionToken,
    MailMode,
    Membership,
    MembershipState,
    Organisation,
    OrganisationKind,
    Role,
    TokenKind,
    User,
    UserRole,
)
from challenges.accounts.people import organisation_by_number, user_by_email
from challenges.accounts.sessions import end_all_sessions
from challenges.core.errors import InvalidInput, PermissionDenied, ServiceError
from challenges.core.events import record
from challenges.core.models import utcnow
from challenges.core.security import (
    hash_password,
    verify_password,
)
from challenges.extensions import db

# --- registration ------------------------------------------------------------------------


@dataclass(frozen=True)
class NewOrganisation:
    name: str
    org_number: str
    kind: OrganisationKind
    staff_headcount: int | None = None
    annual_turnover_ore: int | None = None
    balance_sheet_total_ore: int | None = None


@dataclass(frozen=True)
class Registration:
    """What a person enters to ask for an account."""

    name: str
    email: str
    password: str
    language: str
    new_organisation: NewOrganisation | None = None
    join_org_number: str | None = None


def _check_organisation(new_organisation: NewOrganisation | None, join_org_number: str | None) -> None:
    if new_organisation is not None and organisation_by_number(new_organisation.org_number):
        raise ServiceError(
            _("An organisation with this number is already registered. Choose to join it instead."),
            "org_number",
        )
    if join_org_number is not None and organisation_by_number(join_org_number) is None:
        raise ServiceError(
            _(
                "No organisation with this number is registered. "
                "Check the number, or register a new organisation."
            ),
            "org_number",
        )


def request_registration(registration: Registration) -> None:
    """Email a link that creates the account once it is opened: nothing exists before the address is
    confirmed. An address that already has an account gets the same answer, and its owner an email, so
    that the form tells nobody which addresses are registered."""
    email = registration.email.strip().lower()
    _check_organisation(registration.new_organisation, registration.join_org_number)
    existing = user_by_email(email)
    if existing is not None:
        record(events.RegistrationRepeated(user_id=existing.id), by=existing)
        return
    org = registration.new_organisation
    payload = {
        "name": registration.name.strip(),
        "language": registration.language,
        "password_hash": hash_password(registration.password),
        "join_org_number": registration.join_org_number,
        "new_organisation": {**org.__dict__, "kind": org.kind.value} if org else None,
    }
    token = new_token(
        TokenKind.registration, current_app.config["REGISTRATION_TTL"], email=email, payload=payload
    )
    record(events.RegistrationRequested(token_id=token.id, email=email, language=registration.language))


def confirm_registration(signed: str) -> User:
    """Create the account a registration link stands for (once)."""
    token = find_token(signed, TokenKind.registration)
    assert token.email is not None and token.payload is not None
    consume(token)
    if user_by_email(token.email) is not None:
        raise ServiceError(
            _("An account with this address was created meanwhile. Log in, or reset its password.")
        )
    values = token.payload
    org = values["new_organisation"]
    return register_user(
        name=values["name"],
        email=token.email,
        password_hash=values["password_hash"],
        language=values["language"],
        join_org_number=values["join_org_number"],
        new_organisation=NewOrganisation(**{**org, "kind": OrganisationKind(org["kind"])}) if org else None,
    )


def register_user(
    *,
    name: str,
    email: str,
    language: str,
    password: str | None = None,
    password_hash: str | None = None,
    new_organisation: NewOrganisation | None = None,
    join_org_number: str | None = None,
) -> User:
    """Create an account as the first member of a new organisation, or asking to join one (the
    registration's confirmation; the demo and the command line create accounts directly)."""
    email = email.strip().lower()
    if user_by_email(email):
        raise ServiceError(_("An account with this email address already exists."), "email")
    _check_organisation(new_organisation, join_org_number)
    assert (password is None) != (password_hash is None)
    user = User(
        email=email,
        name=name.strip(),
        language=language,
        password_hash=password_hash or hash_password(password or ""),
    )
    db.session.add(user)
    membership = _first_membership(user, new_organisation, join_org_number)
    db.session.flush()
    record(events.UserRegistered(user_id=user.id), by=user)
    if membership is not None and membership.state is MembershipState.approved:
        record(
            events.OrganisationRegistered(organisation_id=membership.organisation.id, user_id=user.id),
            by=user,
        )
    elif membership is not None:
        record(
            events.MembershipRequested(
                membership_id=membership.id, user_id=user.id, organisation_id=membership.organisation.id
            ),
            by=user,
        )
    return user


def _first_membership(
    user: User, new_organisation: NewOrganisation | None, join_org_number: str | None
) -> Membership | None:
    """The new account's membership: approved in the organisation it registers, or asking to join one."""
    if new_organisation is not None:
        org = Organisation(**new_organisation.__dict__)
        db.session.add(org)
        membership = Membership(
            user=user, organisation=org, state=MembershipState.approved, decided_at=utcnow()
        )
    elif join_org_number is not None:
        found = organisation_by_number(join_org_number)
        assert found is not None  # checked above
        membership = Membership(user=user, organisation=found, state=MembershipState.pending)
    else:
        return None
    db.session.add(membership)
    return membership


def decide_membership(membership: Membership, *, approve: bool, by: User) -> None:
    """A member of the organisation approves or rejects a request to join it."""
    if not by.can_decide_membership(membership):
        raise PermissionDenied(_("Only a member of this organisation can decide on requests to join it."))
    membership.state = MembershipState.approved if approve else MembershipState.rejected
    membership.decided_at = utcnow()
    membership.decided_by_id = by.id
    db.session.flush()
    cls = events.MembershipApproved if approve else events.MembershipRejected
    record(
        cls(
            membership_id=membership.id,
            user_id=membership.user_id,
            organisation_id=membership.organisation_id,
        ),
        by=by,
    )


# --- invitations, roles, disabling -------------------------------------------------------


def _require_manager(by: User) -> None:
    if not by.can_manage_accounts():
        raise PermissionDenied(_("Only a programme manager can do this."))


def invite_evaluator(email: str, language: str, *, by: User) -> ActionToken:
    """Email a single-use link that makes its recipient an evaluator."""
    _require_manager(by)
    email = email.strip().lower()
    existing = user_by_email(email)
    if existing is not None and existing.has_role(Role.evaluator):
        raise ServiceError(_("This person is already an evaluator."), "email")
    token = new_token(
        TokenKind.invitation,
        current_app.config["INVITATION_TTL"],
        email=email,
        role=Role.evaluator,
        created_by_id=by.id,
    )
    record(events.EvaluatorInvited(token_id=token.id, email=email, language=language), by=by)
    return token


def accept_invitation(signed: str, *, name: str | None, password: str) -> User:
    """Accept an invitation: create the account, or, for an existing one, check its password."""
    token = find_token(signed, TokenKind.invitation)
    assert token.email is not None and token.role is not None
    user = user_by_email(token.email)
    if user is None:
        if not name:
            raise ServiceError(_("Enter your name."), "name")
        user = User(
            email=token.email, name=name.strip(), password_hash=hash_password(password), language="en"
        )
        db.session.add(user)
        db.session.flush()
        record(events.UserRegistered(user_id=user.id), by=user)
    else:
        ok, _unused = verify_password(user.password_hash, password)
        if not ok:
            raise ServiceError(_("The password is not correct for this account."), "password")
        if not user.active:
            raise ServiceError(_("This account is disabled."))
    consume(token)
    if not user.has_role(token.role):
        user.roles.append(UserRole(role=token.role, granted_by_id=token.created_by_id))
    db.session.flush()
    record(events.InvitationAccepted(token_id=token.id, user_id=user.id), by=user)
    return user


def grant_role(user: User, role: Role, *, by: User) -> None:
    _require_manager(by)
    if user.has_role(role):
        raise ServiceError(_("This person already has that role."), "role")
    user.roles.append(UserRole(role=role, granted_by_id=by.id))
    db.session.flush()
    record(events.RoleGranted(user_id=user.id, role=role.value), by=by)


def revoke_role(user: User, role: Role, *, by: User) -> None:
    _require_manager(by)
    if role is Role.programme_manager and user.id == by.id:
        raise ServiceError(_("You cannot remove your own programme manager role."))
    held = [r for r in user.roles if r.role is role]
    if not held:
        raise ServiceError(_("This person does not have that role."))
    user.roles.remove(held[0])
    db.session.flush()
    record(events.RoleRevoked(user_id=user.id, role=role.value), by=by)


def disable_account(user: User, *, by: User) -> None:
    """Disable *user* and end all of their sessions at once."""
    _require_manager(by)
    if user.id == by.id:
        raise ServiceError(_("You cannot disable your own account."))
    if not user.active:
        raise ServiceError(_("This account is already disabled."))
    user.active = False
    end_all_sessions(user)
    db.session.flush()
    record(events.AccountDisabled(user_id=user.id), by=by)


def enable_account(user: User, *, by: User) -> None:
    _require_manager(by)
    if user.active:
        raise ServiceError(_("This account is already enabled."))
    user.active = True
    db.session.flush()
    record(events.AccountEnabled(user_id=user.id), by=by)


def update_profile(user: User, *, name: str, language: str, mail_mode: MailMode | None = None) -> None:
    user.name = name.strip()
    user.language = language
    if mail_mode is not None:
        user.mail_mode = mail_mode
    db.session.flush()


def set_language(user: User, language: str) -> None:
    """The language *user* reads the site and their mail in (one of the site's languages)."""
    user.language = language
    db.session.flush()


def update_organisation_figures(
    org: Organisation,
    *,
    org_number: str,
    staff_headcount: int,
    annual_turnover_ore: int,
    balance_sheet_total_ore: int,
    by: User,
) -> None:
    """A member of an SME corrects what the EU SME test reads: its number and its size."""
    if not (by.active and by.organisation is not None and by.organisation.id == org.id):
        raise PermissionDenied(_("Only members of this organisation can change its details."))
    if org.kind is not OrganisationKind.sme:
        raise PermissionDenied(_("Only small and medium-sized enterprises give size figures."))
    errors = {}
    other = organisation_by_number(org_number)
    if other is not None and other.id != org.id:
        errors["org_number"] = _("Another organisation is registered with this number.")
    for name, value in (
        ("staff_headcount", staff_headcount),
        ("annual_turnover", annual_turnover_ore),
        ("balance_sheet_total", balance_sheet_total_ore),
    ):
        if value < 0:
            errors[name] = _("Enter an amount of 0 or more.")
    if errors:
        raise InvalidInput(errors)
    org.org_number = org_number
    org.staff_headcount = staff_headcount
    org.annual_turnover_ore = annual_turnover_ore
    org.balance_sheet_total_ore = balance_sheet_total_ore
    db.session.flush()
    record(
        events.OrganisationFiguresChanged(
            organisation_id=org.id,
            org_number=org_number,
            staff_headcount=staff_headcount,
            annual_turnover_ore=annual_turnover_ore,
            balance_sheet_total_ore=balance_sheet_total_ore,
        ),
        by=by,
    )
