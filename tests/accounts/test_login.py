"""Logging in and out, sessions that really end, and throttling of failed logins."""

from __future__ import annotations

import re
import time
from datetime import timedelta
from types import SimpleNamespace

import pytest
import sqlalchemy as sa

from challenges.accounts.models import LoginSession, Role, User
from challenges.core.security import hash_password
from challenges.extensions import db
from tests.factories import TEST_PASSWORD, make_user


def _logged_in(browser) -> bool:
    return browser.get("/account").status_code == 200


def test_login_and_logout(app, ctx, browser):
    make_user("sara@example.com")
    db.session.commit()
    assert not _logged_in(browser)
    response = browser.login("sara@example.com")
    assert response.status_code == 303
    assert _logged_in(browser)
    browser.logout()
    assert not _logged_in(browser)


def test_wrong_password_gets_a_clear_message(app, ctx, browser):
    make_user("sara@example.com")
    db.session.commit()
    response = browser.login("sara@example.com", "not the password")
    assert response.status_code == 200
    assert "email address or password is not correct" in response.get_data(as_text=True)
    assert not _logged_in(browser)


@pytest.mark.parametrize(
    "target",
    [
        "//evil.example.com/x",
        "////127.0.0.1:5999/phish",
        "///evil.example.com",
        "/\\evil.example.com",
        "https://evil.example.com/",
        "/\t/evil.example.com",
    ],
)
def test_login_redirects_only_within_the_site(app, ctx, make_browser, target):
    make_user("sara@example.com")
    db.session.commit()
    browser = make_browser()
    token = browser.csrf("/login")
    response = browser.client.post(
        "/login",
        query_string={"next": target},
        headers={"Referer": "https://localhost/login"},
        data={"email": "sara@example.com", "password": TEST_PASSWORD, "csrf_token": token},
    )
    assert response.status_code == 303 and response.headers["Location"] == "/"


def test_login_returns_to_the_page_on_this_site_it_came_from(app, ctx, browser):
    make_user("sara@example.com")
    db.session.commit()
    token = browser.csrf("/login")
    response = browser.client.post(
        "/login",
        query_string={"next": "/proposals?page=2"},
        headers={"Referer": "https://localhost/login"},
        data={"email": "sara@example.com", "password": TEST_PASSWORD, "csrf_token": token},
    )
    assert response.headers["Location"] == "/proposals?page=2"


def test_a_cookie_copied_before_logout_no_longer_works(app, ctx, make_browser):
    make_user("sara@example.com")
    db.session.commit()
    first = make_browser()
    first.login("sara@example.com")
    stolen = first.client.get_cookie("__Host-session").value
    first.logout()
    thief = make_browser()
    thief.client.set_cookie("__Host-session", stolen, domain="localhost")
    assert not _logged_in(thief)


def test_password_change_ends_other_sessions_but_keeps_this_one(app, ctx, make_browser):
    make_user("sara@example.com")
    db.session.commit()
    laptop, phone = make_browser(), make_browser()
    laptop.login("sara@example.com")
    phone.login("sara@example.com")
    new = "a completely new passphrase"
    response = laptop.submit(
        "/account/password",
        {"pw-current_password": TEST_PASSWORD, "pw-password": new, "pw-password_confirm": new},
        page_url="/account",
    )
    assert response.status_code == 303
    assert _logged_in(laptop)
    assert not _logged_in(phone)


def test_wrong_current_password_changes_nothing(app, ctx, browser):
    user = make_user("sara@example.com")
    db.session.commit()
    old_hash = user.password_hash
    browser.login("sara@example.com")
    html = browser.submit(
        "/account/password",
        {
            "pw-current_password": "wrong wrong wrong",
            "pw-password": "another passphrase",
            "pw-password_confirm": "another passphrase",
        },
        page_url="/account",
    ).get_data(as_text=True)
    assert "current password is not correct" in html
    db.session.refresh(user)
    assert user.password_hash == old_hash


def test_disabling_an_account_logs_it_out_everywhere_at_once(app, ctx, make_browser, smtp, drain):
    make_user("pm@example.com", roles=(Role.programme_manager,))
    sara = make_user("sara@example.com")
    db.session.commit()
    sara_browser, pm = make_browser(), make_browser()
    sara_browser.login("sara@example.com")
    assert _logged_in(sara_browser)
    pm.login("pm@example.com")
    response = pm.submit(f"/admin/users/{sara.id}/disable", {}, page_url=f"/admin/users/{sara.id}")
    assert response.status_code == 303
    assert not _logged_in(sara_browser)
    assert sara_browser.login("sara@example.com").status_code == 200  # cannot log in again
    assert (
        db.session.scalar(sa.select(sa.func.count(LoginSession.id)).where(LoginSession.user_id == sara.id))
        == 0
    )
    drain()
    assert smtp.to("sara@example.com")[0]["Subject"] == "Your account has been disabled"


def test_idle_session_ends(app, ctx, browser, monkeypatch):
    make_user("sara@example.com")
    db.session.commit()
    browser.login("sara@example.com")
    session = db.session.scalar(sa.select(LoginSession))
    session.last_seen_at = session.last_seen_at.replace(year=session.last_seen_at.year - 1)
    db.session.commit()
    assert not _logged_in(browser)


def _from(make_browser, address: str):
    """A browser of its own at *address*."""
    browser = make_browser()
    browser.client.environ_base["REMOTE_ADDR"] = address
    return browser


def test_sixth_failure_for_one_account_from_one_address_is_throttled(app, ctx, make_browser):
    make_user("sara@example.com")
    db.session.commit()
    for attempt in range(5):
        assert (
            _from(make_browser, "10.0.0.1").login("sara@example.com", f"wrong {attempt}!").status_code == 200
        )
    blocked = _from(make_browser, "10.0.0.1").login("sara@example.com")  # even the right password waits
    assert blocked.status_code == 429
    assert "Too many failed attempts" in blocked.get_data(as_text=True)
    assert "Retry-After" in blocked.headers
    assert "Content-Security-Policy" in blocked.headers


def test_wrong_passwords_from_one_address_do_not_keep_the_owner_out_from_another(app, ctx, make_browser):
    make_user("sara@example.com")
    db.session.commit()
    for attempt in range(5):
        _from(make_browser, "10.6.6.6").login("sara@example.com", f"wrong {attempt}!")
    assert _from(make_browser, "10.6.6.6").login("sara@example.com").status_code == 429
    assert _from(make_browser, "10.0.0.1").login("sara@example.com").status_code == 303


def test_guesses_spread_over_many_addresses_slow_down_but_the_owners_browser_gets_in(app, ctx, make_browser):
    make_user("sara@example.com")
    db.session.commit()
    own = _from(make_browser, "10.0.0.1")
    assert own.login("sara@example.com").status_code == 303  # her browser: it gets the device cookie
    own.logout()
    for n in range(10):
        assert _from(make_browser, f"10.9.0.{n}").login("sara@example.com", "a guess!!!").status_code == 200
    assert _from(make_browser, "10.9.1.1").login("sara@example.com").status_code == 429  # a new browser waits
    assert own.login("sara@example.com").status_code == 303
    own.logout()
    make_user("jonas@example.com")
    db.session.commit()
    for n in range(10):
        _from(make_browser, f"10.9.0.{n}").login("jonas@example.com", "a guess!!!")
    assert own.login("jonas@example.com").status_code == 429  # her browser's cookie is for her account only


def test_a_reset_by_email_lets_the_browser_in_while_guesses_are_slowed(app, ctx, make_browser, smtp, drain):
    make_user("sara@example.com")
    db.session.commit()
    for n in range(10):
        _from(make_browser, f"10.9.0.{n}").login("sara@example.com", "a guess!!!")
    fresh = _from(make_browser, "10.0.0.2")
    fresh.submit("/password/forgot", {"email": "sara@example.com"})
    drain()
    [mail] = smtp.to("sara@example.com")
    link = re.search(r"http://localhost(/password/reset/\S+)", mail.get_body(("plain",)).get_content()).group(
        1
    )
    assert (
        fresh.submit(
            link, {"password": "a brand new passphrase", "password_confirm": "a brand new passphrase"}
        ).status_code
        == 303
    )
    assert fresh.login("sara@example.com", "a brand new passphrase").status_code == 303


def test_sixth_failure_from_one_address_is_throttled_across_accounts(app, ctx, make_browser, monkeypatch):
    monkeypatch.setitem(app.config, "LOGIN_ADDRESS_LIMIT", "5 per minute")
    for n in range(5):
        assert (
            _from(make_browser, "10.0.0.7").login(f"unknown{n}@example.com", "whatever password").status_code
            == 200
        )
    assert (
        _from(make_browser, "10.0.0.7").login("someone-else@example.com", "whatever password").status_code
        == 429
    )


def test_throttle_lifts_after_the_window(app, ctx, make_browser, monkeypatch):
    """The limiter's window (a minute) on a clock the test moves: a slow machine cannot decide it."""
    clock = [time.time()]
    monkeypatch.setattr("limits.storage.redis.time", SimpleNamespace(time=lambda: clock[0]))
    assert app.config["LOGIN_LIMIT"] == "5 per minute"
    make_user("sara@example.com")
    db.session.commit()
    for _ in range(5):
        _from(make_browser, "10.0.0.1").login("sara@example.com", "wrong password!")
    clock[0] += 59
    assert _from(make_browser, "10.0.0.1").login("sara@example.com").status_code == 429
    clock[0] += 2  # a minute after the failures
    assert _from(make_browser, "10.0.0.1").login("sara@example.com").status_code == 303


def test_successful_logins_are_not_counted(app, ctx, make_browser):
    make_user("sara@example.com")
    db.session.commit()
    for _ in range(8):
        assert make_browser().login("sara@example.com").status_code == 303


def test_outdated_password_hash_is_upgraded_on_login(app, ctx, browser, monkeypatch):
    user = make_user("sara@example.com")
    db.session.commit()
    monkeypatch.setitem(app.config, "ARGON2_TIME_COST", 2)
    assert browser.login("sara@example.com").status_code == 303
    db.session.refresh(user)
    assert ",t=2," in user.password_hash


def test_production_hash_parameters(app, ctx, monkeypatch):
    monkeypatch.setitem(app.config, "ARGON2_TIME_COST", 3)
    monkeypatch.setitem(app.config, "ARGON2_MEMORY_COST", 65536)
    monkeypatch.setitem(app.config, "ARGON2_PARALLELISM", 4)
    assert hash_password("a long enough password").startswith("$argon2id$v=19$m=65536,t=3,p=4$")


def test_new_session_on_login(app, ctx, browser):
    make_user("sara@example.com")
    db.session.commit()
    browser.get("/login")
    before = browser.client.get_cookie("__Host-session").value
    browser.login("sara@example.com")
    assert browser.client.get_cookie("__Host-session").value != before
    assert db.session.scalar(sa.select(sa.func.count(User.id))) == 1


def test_reading_pages_keeps_the_session_alive(app, ctx, browser):
    make_user("sara@example.com")
    db.session.commit()
    browser.login("sara@example.com")
    session = db.session.scalar(sa.select(LoginSession))
    old = session.last_seen_at.replace(microsecond=0) - timedelta(minutes=50)
    session.last_seen_at = old
    db.session.commit()
    assert browser.get("/account").status_code == 200  # a GET: the view itself commits nothing
    db.session.expire_all()
    assert db.session.scalar(sa.select(LoginSession)).last_seen_at > old + timedelta(minutes=49)
