"""A programme manager invites evaluators, grants and removes roles."""

from __future__ import annotations

import re

import sqlalchemy as sa

from challenges.accounts.models import ActionToken, Role, User
from challenges.core.models import utcnow
from challenges.extensions import db
from tests.factories import TEST_PASSWORD, make_user

INVITE_RE = re.compile(r"http://localhost(/invitation/\S+)")


def _pm(make_browser):
    make_user("pm@example.com", roles=(Role.programme_manager,))
    db.session.commit()
    pm = make_browser()
    pm.login("pm@example.com")
    return pm


def _invite(pm, smtp, drain, email="karin@evaluators.example.com", language="en") -> str:
    response = pm.submit("/admin/invitations", {"email": email, "language": language})
    assert response.status_code == 303
    drain()
    [message] = smtp.to(email)
    return INVITE_RE.search(message.get_body(("plain",)).get_content()).group(1)


def test_invited_evaluator_creates_an_account_with_the_role(app, ctx, make_browser, smtp, drain):
    link = _invite(_pm(make_browser), smtp, drain)
    guest = make_browser()
    response = guest.submit(
        link, {"name": "Karin Holm", "password": TEST_PASSWORD, "password_confirm": TEST_PASSWORD}
    )
    assert response.status_code == 303
    karin = db.session.scalar(sa.select(User).where(User.email == "karin@evaluators.example.com"))
    assert karin.has_role(Role.evaluator)
    again = make_browser().get(link)
    assert again.status_code == 410 and "already been used" in again.get_data(as_text=True)


def test_invitation_to_an_existing_account_asks_for_its_password(app, ctx, make_browser, smtp, drain):
    make_user("karin@evaluators.example.com")
    link = _invite(_pm(make_browser), smtp, drain)
    guest = make_browser()
    html = guest.submit(link, {"password": "wrong password here"}).get_data(as_text=True)
    assert "password is not correct" in html
    assert guest.submit(link, {"password": TEST_PASSWORD}).status_code == 303
    assert db.session.scalar(sa.select(User).where(User.email == "karin@evaluators.example.com")).has_role(
        Role.evaluator
    )


def test_expired_invitation_is_refused(app, ctx, make_browser, smtp, drain):
    link = _invite(_pm(make_browser), smtp, drain)
    token = db.session.scalar(sa.select(ActionToken))
    token.expires_at = utcnow()
    db.session.commit()
    assert make_browser().get(link).status_code == 410
    assert db.session.scalar(sa.select(sa.func.count(User.id))) == 1


def test_invitation_is_in_the_chosen_language(app, ctx, make_browser, smtp, drain):
    _invite(_pm(make_browser), smtp, drain, email="per@example.com", language="sv")
    [message] = smtp.to("per@example.com")
    assert message["Subject"] == "Du är inbjuden att bedöma lösningsförslag"
    assert message["Content-Language"] == "sv"


def test_inviting_an_existing_evaluator_is_refused(app, ctx, make_browser):
    pm = _pm(make_browser)
    make_user("karin@example.com", roles=(Role.evaluator,))
    db.session.commit()
    html = pm.submit("/admin/invitations", {"email": "karin@example.com", "language": "en"}).get_data(
        as_text=True
    )
    assert "already an evaluator" in html
    assert db.session.scalar(sa.select(sa.func.count(ActionToken.id))) == 0


def test_grant_and_remove_a_role_tells_the_person(app, ctx, make_browser, smtp, drain):
    pm = _pm(make_browser)
    sara = make_user("sara@example.com")
    db.session.commit()
    url = f"/admin/users/{sara.id}"
    assert pm.submit(url, {"role": "evaluator"}).status_code == 303
    db.session.refresh(sara)
    assert sara.has_role(Role.evaluator)
    html = pm.submit(url, {"role": "evaluator"}).get_data(as_text=True)
    assert "already has that role" in html
    assert pm.submit(f"{url}/roles/evaluator/revoke", {}, page_url=url).status_code == 303
    db.session.refresh(sara)
    assert not sara.has_role(Role.evaluator)
    drain()
    subjects = sorted(m["Subject"] for m in smtp.to("sara@example.com"))
    assert subjects == ["A role has been removed from your account", "You have a new role"]


def test_manager_cannot_remove_own_manager_role_or_disable_self(app, ctx, make_browser):
    pm = _pm(make_browser)
    me = db.session.scalar(sa.select(User).where(User.email == "pm@example.com"))
    url = f"/admin/users/{me.id}"
    page = pm.submit(f"{url}/roles/programme_manager/revoke", {}, page_url=url, follow_redirects=True)
    assert "cannot remove your own" in page.get_data(as_text=True)
    page = pm.submit(f"{url}/disable", {}, page_url=url, follow_redirects=True)
    assert "cannot disable your own" in page.get_data(as_text=True)
    db.session.refresh(me)
    assert me.active and me.is_programme_manager


def test_people_list_is_searchable(app, ctx, make_browser):
    pm = _pm(make_browser)
    make_user("sara@example.com", name="Sara Nilsson")
    make_user("jonas@example.com", name="Jonas Berg")
    db.session.commit()
    html = pm.get("/admin/users?q=nils").get_data(as_text=True)
    assert "Sara Nilsson" in html and "Jonas Berg" not in html


def test_an_invitation_link_reaches_only_the_invited_person(app, ctx, make_browser, smtp, drain):
    from challenges.notifications.models import MailMessage

    pm = _pm(make_browser)
    link = _invite(pm, smtp, drain)
    message = db.session.scalar(sa.select(MailMessage).where(MailMessage.notice == "invitation"))
    assert "/invitation/" not in message.body_text + message.body_html
    for page in (f"/admin/outbox/{message.id}", f"/admin/outbox/{message.id}/body"):
        assert "/invitation/" not in pm.get(page).get_data(as_text=True)
    assert make_browser().get(link).status_code == 200  # the emailed copy carries the link
