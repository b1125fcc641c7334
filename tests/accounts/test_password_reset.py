"""Forgotten passwords: an emailed, single-use, expiring link."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import sqlalchemy as sa

from challenges.accounts.models import ActionToken, Role
from challenges.extensions import db
from tests.factories import TEST_PASSWORD, make_user

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

    response = browser.submit(
        link, {"password": "a brand new passphrase", "password_confirm": "a brand new passphrase"}
    )
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


def test_setting_a_password_ends_every_link_still_outstanding(app, ctx, browser, make_browser, smtp, drain):
    make_user("sara@example.com")
    db.session.commit()
    for _ in range(2):
        browser.submit("/password/forgot", {"email": "sara@example.com"})
    drain()
    first, second = (
        LINK_RE.search(m.get_body(("plain",)).get_content()).group(1) for m in smtp.to("sara@example.com")
    )
    assert (
        browser.submit(
            second, {"password": "a brand new passphrase", "password_confirm": "a brand new passphrase"}
        ).status_code
        == 303
    )
    refused = browser.get(first)
    assert refused.status_code == 410 and "already been used" in refused.get_data(as_text=True)

    # A link asked for before a change of password on the account page is ended by it too.
    drain()
    smtp.reset()
    browser.submit("/password/forgot", {"email": "sara@example.com"})
    drain()
    link = _reset_link(smtp, "sara@example.com")
    sara = make_browser()
    sara.login("sara@example.com", "a brand new passphrase")
    changed = sara.submit(
        "/account/password",
        {
            "pw-current_password": "a brand new passphrase",
            "pw-password": "another new passphrase",
            "pw-password_confirm": "another new passphrase",
        },
        page_url="/account",
    )
    assert changed.status_code == 303
    assert browser.get(link).status_code == 410


def _manager_reads_the_outbox(make_browser, address: str) -> tuple[str, str]:
    from challenges.notifications.models import MailMessage

    make_user("pm@example.com", roles=(Role.programme_manager,))
    db.session.commit()
    pm = make_browser()
    pm.login("pm@example.com")
    message = db.session.scalar(
        sa.select(MailMessage).where(MailMessage.recipient == address, MailMessage.notice == "password_reset")
    )
    return (
        pm.get(f"/admin/outbox/{message.id}").get_data(as_text=True),
        pm.get(f"/admin/outbox/{message.id}/body").get_data(as_text=True),
    )


def test_a_reset_link_reaches_only_its_recipient_never_the_outbox(
    app, ctx, browser, make_browser, smtp, drain
):
    """A programme manager reading the outbox could otherwise open the link and take the account over."""
    make_user("sara@example.com")
    db.session.commit()
    browser.submit("/password/forgot", {"email": "sara@example.com"})
    drain()
    link = _reset_link(smtp, "sara@example.com")
    html_part = smtp.to("sara@example.com")[0].get_body(("html",)).get_content()
    assert f'href="http://localhost{link}"' in html_part
    page, body = _manager_reads_the_outbox(make_browser, "sara@example.com")
    for shown in (page, body):
        assert "/password/reset/" not in shown
        assert "[link left out: sent only to the recipient]" in shown
    assert (
        browser.submit(
            link, {"password": "a brand new passphrase", "password_confirm": "a brand new passphrase"}
        ).status_code
        == 303
    )


@pytest.mark.parametrize("shows_links", [False, True])
def test_the_local_outbox_shows_the_link_only_when_a_development_setting_says_so(
    app, ctx, browser, make_browser, smtp, drain, monkeypatch, shows_links
):
    monkeypatch.setitem(app.config, "SMTP_HOST", "")
    monkeypatch.setitem(app.config, "OUTBOX_SHOWS_LINKS", shows_links)
    make_user("sara@example.com")
    db.session.commit()
    browser.submit("/password/forgot", {"email": "sara@example.com"})
    drain()
    assert smtp.messages == []
    page, _body = _manager_reads_the_outbox(make_browser, "sara@example.com")
    assert ("/password/reset/" in page) is shows_links


@pytest.mark.parametrize("password", ["Sara Nilsson rides again", "Sommar2016!", "sara.nilsson@example.com"])
def test_a_new_password_is_checked_against_the_persons_name_and_common_patterns(
    app, ctx, browser, make_browser, smtp, drain, password
):
    make_user("sara.nilsson@example.com", name="Sara Nilsson")
    db.session.commit()
    browser.submit("/password/forgot", {"email": "sara.nilsson@example.com"})
    drain()
    [message] = smtp.to("sara.nilsson@example.com")
    link = LINK_RE.search(message.get_body(("plain",)).get_content()).group(1)
    page = browser.submit(link, {"password": password, "password_confirm": password})
    assert page.status_code == 200
    assert "must not contain your name" in page.get_data(
        as_text=True
    ) or "too easy to guess" in page.get_data(as_text=True)
    sara = make_browser("sara.nilsson@example.com")
    changed = sara.submit(
        "/account/password",
        {"pw-current_password": TEST_PASSWORD, "pw-password": password, "pw-password_confirm": password},
        page_url="/account",
    )
    assert changed.status_code == 200 and "Your password has been changed" not in changed.get_data(
        as_text=True
    )
