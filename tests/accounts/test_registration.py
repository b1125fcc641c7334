"""Registering as a member of a new or an existing organisation, and every kind of bad input."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import sqlalchemy as sa

from challenges.accounts.models import (
    ActionToken,
    Membership,
    MembershipState,
    Organisation,
    OrganisationKind,
    User,
)
from challenges.core.models import Event, utcnow
from challenges.extensions import db
from tests.factories import TEST_PASSWORD, make_org, make_user, valid_org_number

SME = {
    "name": "Sara Nilsson",
    "email": "sara@sensorik.example.com",
    "password": TEST_PASSWORD,
    "password_confirm": TEST_PASSWORD,
    "organisation_choice": "new",
    "org_number": "556016-0680",
    "org_name": "Sensorik Labb AB",
    "kind": "sme",
    "staff_headcount": "12",
    "annual_turnover": "9500000",
    "balance_sheet_total": "4200000",
}


def _count(model) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(model))


CONFIRM_RE = re.compile(r"http://localhost(/register/confirm/\S+)")


def register(browser, data: dict, smtp, drain):
    """Register as a browser does: the form, the email, the link, the button on its page."""
    sent = browser.submit("/register", data)
    assert sent.status_code == 200 and "Check your email" in sent.get_data(as_text=True)
    drain()
    [mail] = [m for m in smtp.to(data["email"]) if m["Subject"] == "Confirm your email address"]
    link = CONFIRM_RE.search(mail.get_body(("plain",)).get_content()).group(1)
    return browser.submit(link, {})


def _field_error(html: str, field_id: str) -> str | None:
    match = re.search(rf'<p class="field-error" id="{field_id}-error">.*?</span>\s*(.*?)</p>', html, re.S)
    return match.group(1).strip() if match else None


def test_sme_registers_a_new_organisation_and_is_logged_in(app, ctx, browser, smtp, drain):
    sent = browser.submit("/register", SME)
    assert _count(User) == 0 and _count(Organisation) == 0  # nothing exists before the address is confirmed
    drain()
    [mail] = smtp.to("sara@sensorik.example.com")
    assert mail["Subject"] == "Confirm your email address" and "Check your email" in sent.get_data(
        as_text=True
    )
    link = CONFIRM_RE.search(mail.get_body(("plain",)).get_content()).group(1)
    page = browser.get(link)  # a mail scanner opening the link creates nothing: a person presses the button
    assert page.status_code == 200 and "sara@sensorik.example.com" in page.get_data(as_text=True)
    assert _count(User) == 0
    smtp.reset()
    response = browser.submit(link, {})
    assert response.status_code == 303
    home = browser.get("/").get_data(as_text=True)
    assert "You are logged in as Sara Nilsson" in home
    org = db.session.scalar(sa.select(Organisation))
    assert (org.org_number, org.kind, org.staff_headcount) == ("556016-0680", OrganisationKind.sme, 12)
    assert org.annual_turnover_ore == 9_500_000_00  # kronor in, öre stored
    user = db.session.scalar(sa.select(User))
    assert user.is_sme_member and user.password_hash.startswith("$argon2id$")
    assert sorted(db.session.scalars(sa.select(Event.type))) == [
        "OrganisationRegistered",
        "RegistrationRequested",
        "UserRegistered",
    ]
    drain()
    [welcome] = smtp.to("sara@sensorik.example.com")
    assert welcome["Subject"] == "Welcome to the open innovation platform"


def test_industrial_company_needs_no_size_figures(app, ctx, browser, smtp, drain):
    data = {
        **SME,
        "kind": "industrial",
        "staff_headcount": "",
        "annual_turnover": "",
        "balance_sheet_total": "",
        "org_name": "Nordisk Stål AB",
    }
    assert register(browser, data, smtp, drain).status_code == 303
    org = db.session.scalar(sa.select(Organisation))
    assert org.kind is OrganisationKind.industrial and org.staff_headcount is None


def test_joining_an_existing_organisation_needs_a_members_approval(app, ctx, make_browser, smtp, drain):
    org = make_org(OrganisationKind.sme, name="Robotlogik AB")
    make_user("jonas@robotlogik.example.com", org=org)
    db.session.commit()
    newcomer = make_browser()
    data = {
        **SME,
        "email": "new@robotlogik.example.com",
        "organisation_choice": "existing",
        "org_number": org.org_number.replace("-", ""),
        "org_name": "",
        "kind": "",
    }
    assert register(newcomer, data, smtp, drain).status_code == 303
    membership = db.session.scalar(
        sa.select(Membership).join(Membership.user).where(User.email == "new@robotlogik.example.com")
    )
    assert membership.state is MembershipState.pending
    assert "waiting for a member" in newcomer.get("/organisation").get_data(as_text=True)
    drain()
    [request_mail] = smtp.to("jonas@robotlogik.example.com")
    assert "asks to join Robotlogik AB" in request_mail.get_body(("plain",)).get_content()

    member = make_browser()
    member.login("jonas@robotlogik.example.com")
    page = member.get("/organisation").get_data(as_text=True)
    assert "new@robotlogik.example.com" in page
    response = member.submit(f"/organisation/requests/{membership.id}/approve", {}, page_url="/organisation")
    assert response.status_code == 303
    db.session.refresh(membership)
    assert membership.state is MembershipState.approved
    drain()
    [decision] = smtp.to("new@robotlogik.example.com")[-1:]
    assert "You are now a member of Robotlogik AB" in decision.get_body(("plain",)).get_content()


def test_only_members_decide_on_requests_to_join(app, ctx, make_browser):
    org = make_org(OrganisationKind.sme)
    other = make_org(OrganisationKind.sme)
    make_user("outsider@example.com", org=other)
    pending = make_user("pending@example.com", org=org, state=MembershipState.pending)
    db.session.commit()
    outsider = make_browser()
    outsider.login("outsider@example.com")
    response = outsider.submit(
        f"/organisation/requests/{pending.membership.id}/approve", {}, page_url="/organisation"
    )
    assert response.status_code == 403
    db.session.refresh(pending.membership)
    assert pending.membership.state is MembershipState.pending


BAD_INPUT = [
    ("name", "", "Enter your name."),
    ("name", "x" * 121, "Use at most 120 characters."),
    ("name", "Eve\r\nBcc: victim@example.com", "Use a single line"),
    ("name", "=?UTF-8?Q?=0A?=Bcc: x@example.com", "Use a single line"),
    ("email", "", "Enter your email address."),
    ("email", "not-an-email", "Enter an email address like"),
    ("email", "a" * 250 + "@example.com", "Use at most 254 characters."),
    ("email", "eve@example.com\nBcc: x@example.com", "Enter an email address like"),
    ("password", "short", "Use at least 10 characters."),
    ("password", "x" * 257, "Use at most 256 characters."),
    ("password", "password123", "too easy to guess"),
    ("password", "Password12", "too easy to guess"),
    ("password", "Sommar2016!", "too easy to guess"),
    ("password", "passwordpassword", "too easy to guess"),
    ("password", "demo-innovation-2016", "too easy to guess"),  # printed in the README
    ("password", "Nilsson blue horizon", "must not contain your name or email address"),
    ("password", "sensorik grey window", "must not contain your name or email address"),
    ("org_number", "", "Enter the organisation number."),
    ("org_number", "556016-0681", "The check digit does not match."),
    ("org_number", "55601606", "Enter ten digits"),
    ("org_number", "abcdefghij", "Enter ten digits"),
    ("org_name", "", "Enter the organisation's name."),
    ("org_name", "Evil AB\r\nX-Injected: 1", "Use a single line"),
    ("org_name", "y" * 201, "Use at most 200 characters."),
    ("kind", "", "Choose the kind of organisation."),
    ("staff_headcount", "", "Enter the staff headcount"),
    ("staff_headcount", "-3", "Enter a whole number of 0 or more."),
    ("staff_headcount", "twelve", "Not a valid integer value."),
    ("annual_turnover", "", "Enter the annual turnover"),
    ("balance_sheet_total", "1.5", "Not a valid integer value."),
]


@pytest.mark.parametrize(("field", "value", "message"), BAD_INPUT)
def test_bad_input_is_explained_beside_the_field_and_nothing_is_saved(
    app, ctx, browser, field, value, message
):
    data = {**SME, field: value}
    if field == "password":
        data["password_confirm"] = value
    response = browser.submit("/register", data)
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    error = _field_error(html, field)
    assert error is not None and message in error.replace("&#39;", "'"), html[:3000]
    assert f'href="#{field}"' in html  # the error summary links to the field
    kept = data["name"] if field != "name" else data["email"]
    assert f'value="{kept}"' in html  # what the user typed is kept
    assert _count(User) == 0 and _count(Organisation) == 0 and _count(Event) == 0


def test_passwords_must_match(app, ctx, browser):
    html = browser.submit("/register", {**SME, "password_confirm": "something else entirely"}).get_data(
        as_text=True
    )
    assert "The two passwords are not the same." in _field_error(html, "password_confirm")
    assert _count(User) == 0


def test_a_registered_address_gets_the_same_answer_and_its_owner_is_told(app, ctx, browser, smtp, drain):
    make_user("sara@sensorik.example.com")
    db.session.commit()
    new = browser.submit("/register", {**SME, "email": "someone.new@sensorik.example.com"}).get_data(
        as_text=True
    )
    known = browser.submit("/register", {**SME, "email": "Sara@Sensorik.example.com"}).get_data(as_text=True)
    assert (
        known.replace("sara@sensorik", "someone.new@sensorik") == new
    )  # the form says nothing about who has an account
    assert "already exists" not in known
    drain()
    [told] = smtp.to("sara@sensorik.example.com")
    assert told["Subject"] == "Someone asked for an account with your address"
    assert "/register/confirm/" not in told.get_body(("plain",)).get_content()
    assert _count(User) == 1 and _count(Organisation) == 0


def test_a_confirmation_link_works_once_and_expires(app, ctx, make_browser, smtp, drain):
    first = make_browser()
    assert register(first, SME, smtp, drain).status_code == 303
    link = CONFIRM_RE.search(
        smtp.to("sara@sensorik.example.com")[0].get_body(("plain",)).get_content()
    ).group(1)
    again = make_browser().get(link)
    assert again.status_code == 410 and "already been used" in again.get_data(as_text=True)
    assert _count(User) == 1

    smtp.reset()
    other = make_browser()
    other.submit("/register", {**SME, "email": "late@example.com", "org_number": valid_org_number(77)})
    drain()
    token = db.session.scalar(sa.select(ActionToken).where(ActionToken.email == "late@example.com"))
    token.expires_at = utcnow() - timedelta(seconds=1)
    db.session.commit()
    link = CONFIRM_RE.search(smtp.to("late@example.com")[0].get_body(("plain",)).get_content()).group(1)
    assert (
        other.get(link).status_code == 410 and other.submit(link, {}, page_url="/register").status_code == 410
    )
    assert _count(User) == 1


def test_an_organisation_registered_before_the_confirmation_is_told_not_duplicated(
    app, ctx, make_browser, smtp, drain
):
    first = make_browser()
    first.submit("/register", SME)
    drain()
    link = CONFIRM_RE.search(
        smtp.to("sara@sensorik.example.com")[0].get_body(("plain",)).get_content()
    ).group(1)
    assert (
        register(make_browser(), {**SME, "email": "quicker@sensorik.example.com"}, smtp, drain).status_code
        == 303
    )
    refused = first.submit(link, {})
    assert refused.status_code == 409 and "already registered" in refused.get_data(as_text=True)
    assert _count(User) == 1 and _count(Organisation) == 1


def test_duplicate_organisation_number_is_refused(app, ctx, browser):
    make_org(OrganisationKind.sme)
    db.session.commit()
    existing = db.session.scalar(sa.select(Organisation))
    html = browser.submit("/register", {**SME, "org_number": existing.org_number}).get_data(as_text=True)
    assert "already registered" in _field_error(html, "org_number")
    assert _count(User) == 0 and _count(Organisation) == 1


def test_joining_an_unknown_organisation_is_refused(app, ctx, browser):
    data = {**SME, "organisation_choice": "existing", "org_number": valid_org_number(4242)}
    html = browser.submit("/register", data).get_data(as_text=True)
    assert "No organisation with this number" in _field_error(html, "org_number")
    assert _count(User) == 0


def test_register_without_csrf_token_is_refused(app, ctx, client):
    response = client.post("/register", data=SME)
    assert response.status_code == 400
    assert "security token" in response.get_data(as_text=True)
    assert _count(User) == 0


def test_rejected_request_to_join_is_told_and_grants_nothing(app, ctx, make_browser, smtp, drain):
    org = make_org(OrganisationKind.sme, name="Robotlogik AB")
    make_user("jonas@robotlogik.example.com", org=org)
    pending = make_user("new@robotlogik.example.com", org=org, state=MembershipState.pending)
    db.session.commit()
    member = make_browser()
    member.login("jonas@robotlogik.example.com")
    response = member.submit(
        f"/organisation/requests/{pending.membership.id}/reject", {}, page_url="/organisation"
    )
    assert response.status_code == 303
    db.session.refresh(pending.membership)
    assert pending.membership.state is MembershipState.rejected
    assert pending.organisation is None and not pending.is_sme_member
    drain()
    [message] = smtp.to("new@robotlogik.example.com")
    assert message["Subject"] == "Your request to join was not approved"
    again = member.submit(
        f"/organisation/requests/{pending.membership.id}/approve", {}, page_url="/organisation"
    )
    assert again.status_code == 403  # decided once; a second decision is refused
