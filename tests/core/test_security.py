"""Headers on every response, CSRF on every state change, and access to every route by role."""

from __future__ import annotations

import pytest

from challenges.accounts.models import OrganisationKind, Role
from challenges.extensions import db
from tests.factories import make_org, make_user

PUBLIC_GET = {
    "/",
    "/login",
    "/register",
    "/password/forgot",
    "/healthz",
    "/readyz",
    "/challenges",
    "/challenges/feed.atom",
    "/programmes",
}
LOGGED_IN_GET = {"/account", "/organisation", "/messages", "/projects"}
OWNER_GET = {"/challenges/new", "/challenges/mine"}
SME_GET = {"/following", "/proposals"}
MANAGER_GET = {
    "/admin/users",
    "/admin/invitations",
    "/admin/outbox",
    "/admin/events/failed",
    "/admin/health",
    "/admin/challenges",
    "/admin/topics",
    "/admin/programmes",
    "/admin/ledger",
}
EVALUATOR_GET = {"/reviews", "/reviews/conflicts"}
ALL_GET = PUBLIC_GET | LOGGED_IN_GET | OWNER_GET | SME_GET | MANAGER_GET | EVALUATOR_GET


def _check_headers(response) -> None:
    h = response.headers
    csp = h["Content-Security-Policy"]
    for part in (
        "default-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
        "form-action 'self'",
    ):
        assert part in csp
    assert "unsafe-inline" not in csp
    assert h["X-Content-Type-Options"] == "nosniff"
    assert h["Referrer-Policy"] == "strict-origin-when-cross-origin"
    assert h["Strict-Transport-Security"].startswith("max-age=31536000")


def test_every_get_route_is_in_the_access_table(app):
    rules = {
        r.rule
        for r in app.url_map.iter_rules()
        if "GET" in r.methods and "<" not in r.rule and r.endpoint != "static"
    }
    assert rules == ALL_GET


@pytest.fixture
def people(app, ctx):
    make_user("pm@example.com", roles=(Role.programme_manager,))
    make_user("evaluator@example.com", roles=(Role.evaluator,))
    make_user("owner@example.com", org=make_org(OrganisationKind.industrial))
    make_user("sme@example.com", org=make_org(OrganisationKind.sme))
    db.session.commit()


@pytest.mark.parametrize(
    "who", [None, "sme@example.com", "owner@example.com", "evaluator@example.com", "pm@example.com"]
)
def test_access_matrix(app, people, make_browser, who):
    b = make_browser()
    if who:
        assert b.login(who).status_code == 303
    allowed_to = {
        "owner@example.com": OWNER_GET,
        "sme@example.com": SME_GET,
        "pm@example.com": MANAGER_GET,
        "evaluator@example.com": EVALUATOR_GET,
    }
    for url in sorted(ALL_GET):
        response = b.get(url)
        _check_headers(response)
        if url in PUBLIC_GET:
            expected = 200
        elif url in LOGGED_IN_GET:
            expected = 200 if who else 302
        else:
            expected = 302 if not who else (200 if url in allowed_to.get(who, set()) else 403)
        assert response.status_code == expected, (who, url)


def _builds(rule, args) -> bool:
    try:
        return rule.build(args) is not None
    except ValueError:
        return False


def test_every_unsafe_route_refuses_a_post_without_csrf_token(app, people, make_browser):
    b = make_browser()
    b.login("pm@example.com")
    values = {
        "user_id": "1",
        "membership_id": "1",
        "decision": "approve",
        "role": "evaluator",
        "token": "x",
        "event_id": "x",
        "handler": "x",
        "message_id": "1",
        "challenge_id": "1",
        "question_id": "1",
        "topic_id": "1",
        "proposal_id": "1",
        "attachment_id": "1",
        "number": "1",
        "programme_id": "1",
        "assignment_id": "1",
        "assessment_id": "1",
        "award_id": "1",
        "instalment_id": "1",
        "year_id": "1",
        "report_id": "1",
    }
    unsafe = [r for r in app.url_map.iter_rules() if r.methods & {"POST", "PUT", "PATCH", "DELETE"}]
    assert len(unsafe) >= 24
    for rule in unsafe:
        args = {k: v for k, v in values.items() if k in rule.arguments}
        if "action" in rule.arguments:  # the first value the rule's any() converter accepts
            args["action"] = next(
                a
                for a in ("disable", "submit", "follow", "withdraw", "assign")
                if _builds(rule, {**args, "action": a})
            )
        url = rule.build(args)[1]
        response = b.client.post(url, data={}, headers={"Referer": "https://localhost/"})
        assert response.status_code == 400, url
        _check_headers(response)


def test_csrf_token_from_another_session_is_refused(app, people, make_browser):
    alice, mallory = make_browser(), make_browser()
    token = mallory.csrf("/login")
    response = alice.client.post(
        "/login",
        data={"email": "sme@example.com", "password": "x", "csrf_token": token},
        headers={"Referer": "https://localhost/login"},
    )
    assert response.status_code == 400


@pytest.mark.parametrize(
    ("method", "url", "status"),
    [("GET", "/no-such-page", 404), ("POST", "/", 405), ("GET", "/password/reset/bad", 410)],
)
def test_error_pages_carry_the_headers_and_no_traceback(app, client, method, url, status):
    response = client.open(url, method=method)
    assert response.status_code == status
    _check_headers(response)
    assert "Traceback" not in response.get_data(as_text=True)


def test_unexpected_error_shows_a_friendly_page(app, client, monkeypatch):
    from challenges.core import views

    def boom():
        raise RuntimeError("secret internals")

    monkeypatch.setitem(app.view_functions, "core.home", boom)
    response = client.get("/")
    assert response.status_code == 500
    body = response.get_data(as_text=True)
    assert "Something went wrong" in body and "secret internals" not in body
    _check_headers(response)
    del views


def test_too_large_request_gets_413(app, client):
    response = client.post("/login", data={"x": "y" * (13 * 1024 * 1024)})
    assert response.status_code == 413
    _check_headers(response)


def test_session_cookie_flags(app, client):
    response = client.get("/login")
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith("__Host-session=")
    for flag in ("Secure", "HttpOnly", "SameSite=Lax", "Path=/"):
        assert flag in cookie
    assert "Domain" not in cookie


def test_readiness_reports_database_redis_and_migrations(app, client, redis_server):
    assert client.get("/readyz").get_json() == {
        "status": "ready",
        "database": "ok",
        "redis": "ok",
        "migrations": "ok",
    }
    redis_server.stop()
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.get_json()["redis"].startswith("error")
    assert client.get("/healthz").get_json() == {"status": "ok"}  # liveness asks neither
