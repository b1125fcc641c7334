"""Forgotten passwords: an emailed, single-use, expiring link."""

from __future__ import annotations

import re
from datetime import timedelta

import sqlalchemy as sa

from challenges.accounts.models import ActionToken
from challenges.extensions import db
from tests.factories import make_user

LINK_RE = re.compile(r"http://localhost(/password/reset/\S+)")


def _reset_link(smtp, address: str) -> str:
    [message] = smtp.to(address)
    match = LINK_RE.search(message.get_body(("plain",)).get_content())
    assert match, "no reset link in the email"
    return match.group(1)


def test_reset_link_sets_a_new_password_once(app, ctx, browser, smtp, drain):
    make_user("sara@example.com")
    db.session.commit()
    page = browser.submit("/password/forgot", {"email": "sara@example.com"})
    assert "Check your email" in page.get_data(as_text=True)
    assert smtp.messages == []  # nothing leaves the request: the worker sends it
    drain()
    link = _reset_link(smtp, "sara@example.com")

    response = browser.submit(link, {"password": "a brand new passphrase", "password_confirm": "a brand new passphrase"})
    assert response.status_code == 303
    assert browser.login("sara@example.com", "a brand new passphrase").status_code == 303
    assert browser.login("sara@example.com").status_code == 200  # the old one no longer works

    again = browser.get(link)
    assert again.status_code == 410
    assert "already been used" in again.get_data(as_text=True)


def test_expired_reset_link_is_refused(app, ctx, browser, smtp, drain):
    make_user("sara@example.com")
    db.session.commit()
    browser.submit("/password/forgot", {"email": "sara@example.com"})
    drain()
    link = _reset_link(smtp, "sara@example.com")
    token = db.session.scalar(sa.select(ActionToken))
    token.expires_at -= timedelta(hours=2)
    db.session.commit()
    response = browser.get(link)
    assert response.status_code == 410
    assert "expired" in response.get_data(as_text=True)


def test_tampered_link_is_refused(app, ctx, browser):
    response = browser.get("/password/reset/not-a-real-token")
    assert response.status_code == 410
    assert "not valid" in response.get_data(as_text=True)


def test_unknown_address_gets_the_same_answer_and_no_mail(app, ctx, browser, smtp, drain):
    page = browser.submit("/password/forgot", {"email": "nobody@example.com"})
    assert "Check your email" in page.get_data(as_text=True)
    drain()
    assert smtp.messages == []
