"""Who hears about account events, and what they are told. Each handler runs on the worker, once per
event; the names are those the handlers were first stored with, in the accounts package."""

from __future__ import annotations

from challenges.accounts import events
from challenges.accounts.models import ActionToken, Membership, Organisation, User
from challenges.core.bus import NOTIFICATIONS_QUEUE, EventBus
from challenges.core.models import Event, must_get
from challenges.extensions import db
from challenges.notifications.services import Recipient, notify, recipient_for, recipients_for


def send_registration_link(e: events.RegistrationRequested, record: Event) -> None:
    token = db.session.get(ActionToken, e.token_id)
    assert token is not None and token.payload is not None
    notify(
        record,
        "registration_confirm",
        [Recipient(email=e.email, language=e.language)],
        link_token=token,
        name=token.payload["name"],
        expires_at=token.expires_at,
    )


def send_registration_repeated(e: events.RegistrationRepeated, record: Event) -> None:
    user = must_get(User, e.user_id)
    notify(record, "registration_repeated", [recipient_for(user)], user=user)


def send_welcome(e: events.UserRegistered, record: Event) -> None:
    user = must_get(User, e.user_id)
    notify(record, "welcome", [recipient_for(user)], user=user)


def send_membership_request(e: events.MembershipRequested, record: Event) -> None:
    membership = db.session.get(Membership, e.membership_id)
    org = db.session.get(Organisation, e.organisation_id)
    assert membership is not None and org is not None
    members = [u for u in org.approved_members() if u.id != e.user_id]
    notify(record, "membership_requested", recipients_for(members), applicant=membership.user, org=org)


def send_membership_decision(e: events.MembershipApproved | events.MembershipRejected, record: Event) -> None:
    approved = isinstance(e, events.MembershipApproved)
    org = db.session.get(Organisation, e.organisation_id)
    notify(
        record,
        "membership_approved" if approved else "membership_rejected",
        [recipient_for(must_get(User, e.user_id))],
        org=org,
        approved=approved,
    )


def send_password_reset(e: events.PasswordResetRequested, record: Event) -> None:
    user = must_get(User, e.user_id)
    token = db.session.get(ActionToken, e.token_id)
    assert token is not None
    notify(
        record,
        "password_reset",
        [recipient_for(user)],
        user=user,
        link_token=token,
        expires_at=token.expires_at,
    )


def send_password_changed(e: events.PasswordChanged, record: Event) -> None:
    user = must_get(User, e.user_id)
    notify(record, "password_changed", [recipient_for(user)], user=user, when=record.occurred_at)


def send_invitation(e: events.EvaluatorInvited, record: Event) -> None:
    token = db.session.get(ActionToken, e.token_id)
    assert token is not None
    notify(
        record,
        "invitation",
        [Recipient(email=e.email, language=e.language)],
        link_token=token,
        expires_at=token.expires_at,
    )


def send_role_change(e: events.RoleGranted | events.RoleRevoked, record: Event) -> None:
    granted = isinstance(e, events.RoleGranted)
    notify(
        record,
        "role_granted" if granted else "role_revoked",
        [recipient_for(must_get(User, e.user_id))],
        role=e.role,
        granted=granted,
    )


def send_account_state(e: events.AccountDisabled | events.AccountEnabled, record: Event) -> None:
    disabled = isinstance(e, events.AccountDisabled)
    notify(
        record,
        "account_disabled" if disabled else "account_enabled",
        [recipient_for(must_get(User, e.user_id))],
    )


def register(bus: EventBus) -> None:
    """Subscribe the account handlers: every email goes out from the worker, never the request."""
    bus.declare(*events.ALL)
    bus.subscribe(
        events.RegistrationRequested,
        send_registration_link,
        name="accounts_send_registration_link",
        queue=NOTIFICATIONS_QUEUE,
    )
    bus.subscribe(
        events.RegistrationRepeated,
        send_registration_repeated,
        name="accounts_send_registration_repeated",
        queue=NOTIFICATIONS_QUEUE,
    )
    bus.subscribe(
        events.UserRegistered, send_welcome, name="accounts_send_welcome", queue=NOTIFICATIONS_QUEUE
    )
    bus.subscribe(
        events.MembershipRequested,
        send_membership_request,
        name="accounts_send_membership_request",
        queue=NOTIFICATIONS_QUEUE,
    )
    bus.subscribe(
        events.MembershipApproved,
        send_membership_decision,
        name="accounts_send_membership_decision",
        queue=NOTIFICATIONS_QUEUE,
    )
    bus.subscribe(
        events.MembershipRejected,
        send_membership_decision,
        name="accounts_send_membership_decision",
        queue=NOTIFICATIONS_QUEUE,
    )
    bus.subscribe(
        events.PasswordResetRequested,
        send_password_reset,
        name="accounts_send_password_reset",
        queue=NOTIFICATIONS_QUEUE,
    )
    bus.subscribe(
        events.PasswordChanged,
        send_password_changed,
        name="accounts_send_password_changed",
        queue=NOTIFICATIONS_QUEUE,
    )
    bus.subscribe(
        events.EvaluatorInvited, send_invitation, name="accounts_send_invitation", queue=NOTIFICATIONS_QUEUE
    )
    bus.subscribe(
        events.RoleGranted, send_role_change, name="accounts_send_role_change", queue=NOTIFICATIONS_QUEUE
    )
    bus.subscribe(
        events.RoleRevoked, send_role_change, name="accounts_send_role_change", queue=NOTIFICATIONS_QUEUE
    )
    bus.subscribe(
        events.AccountDisabled,
        send_account_state,
        name="accounts_send_account_state",
        queue=NOTIFICATIONS_QUEUE,
    )
    bus.subscribe(
        events.AccountEnabled,
        send_account_state,
        name="accounts_send_account_state",
        queue=NOTIFICATIONS_QUEUE,
    )
