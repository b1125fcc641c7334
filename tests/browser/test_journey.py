"""A person in a real Chromium: register an SME, log out and in, reset a forgotten password.

The app is served over real HTTP on 127.0.0.1; the reset email goes through the real RQ
worker and the in-process SMTP server. Every page is checked with axe (no serious or
critical violation), for console errors and for Content Security Policy violations.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from flask import Flask
from werkzeug.serving import make_server

from challenges.reviews import assignments

pytest.importorskip("playwright.sync_api")
pytest.importorskip("axe_playwright_python.sync_playwright")

from axe_playwright_python.sync_playwright import Axe  # noqa: E402
from playwright.sync_api import Browser, ConsoleMessage, Page, expect, sync_playwright  # noqa: E402

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
BLOCKING_IMPACTS = {"serious", "critical"}

EMAIL = "sara@example.com"
OLD_PASSWORD = "a long and memorable passphrase"
NEW_PASSWORD = "another equally long passphrase"

# Records every CSP violation of a document, before any of the page's own code runs.
CSP_LISTENER = """
window.__cspViolations = [];
document.addEventListener('securitypolicyviolation', (e) => {
  window.__cspViolations.push(`${e.violatedDirective} blocked ${e.blockedURI || '(inline)'}`
    + ` at ${e.sourceFile || e.documentURI}:${e.lineNumber}`);
});
"""


# --- fixtures ----------------------------------------------------------------------------------


@pytest.fixture
def live_server(app: Flask) -> Iterator[str]:
    """The session app over real HTTP on a free loopback port; emailed links point at it."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    base_url = f"http://127.0.0.1:{server.server_port}"
    thread = threading.Thread(target=server.serve_forever, name="live-server", daemon=True)
    saved = app.config["BASE_URL"]
    app.config["BASE_URL"] = base_url
    thread.start()
    try:
        yield base_url
    finally:
        app.config["BASE_URL"] = saved
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} not found: install Debian's chromium package for the browser tests")
    p = sync_playwright().start()
    try:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()
    finally:
        p.stop()


@dataclass
class PageProblems:
    """Console errors and uncaught page errors seen since the last check."""

    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)

    def on_console(self, message: ConsoleMessage) -> None:
        if message.type != "error":
            return
        url = (message.location or {}).get("url", "")
        if url.endswith("/favicon.ico"):
            return  # the app has no favicon; the browser asks anyway
        self.console_errors.append(f"{message.text} (at {url or 'unknown'})")

    def take(self) -> tuple[list[str], list[str]]:
        seen = (self.console_errors[:], self.page_errors[:])
        self.console_errors.clear()
        self.page_errors.clear()
        return seen


@pytest.fixture
def browser_page(chromium: Browser, live_server: str) -> Iterator[tuple[Page, PageProblems]]:
    context = chromium.new_context(base_url=live_server, locale="en-GB")
    context.add_init_script(CSP_LISTENER)
    # Only the live server: anything else would be a bug in the page (or a leak to the outside).
    context.route(re.compile(r"^(?!http://127\.0\.0\.1:\d+/).*"), lambda route: route.abort())
    page = context.new_page()
    page.set_default_timeout(10_000)
    problems = PageProblems()
    page.on("console", problems.on_console)
    page.on("pageerror", lambda exc: problems.page_errors.append(str(exc)))
    try:
        yield page, problems
    finally:
        context.close()


# --- checks ------------------------------------------------------------------------------------


def _describe(violations: list[dict]) -> str:
    lines = []
    for v in violations:
        lines.append(f"- {v['id']} ({v['impact']}): {v['help']} <{v['helpUrl']}>")
        for node in v["nodes"]:
            lines.append(f"    target {node['target']}: {node['html'][:200]}")
            summary = (node.get("failureSummary") or "").replace("\n", " / ")
            if summary:
                lines.append(f"      {summary}")
    return "\n".join(lines)


def check_page(page: Page, problems: PageProblems, name: str) -> None:
    """No serious or critical axe violation, no CSP violation, no console or page error.

    Every kind of problem is listed in one failure message, so one run shows all there is to fix.
    """
    csp = page.evaluate("window.__cspViolations || []")
    violations = Axe().run(page).response["violations"]
    blocking = [v for v in violations if v["impact"] in BLOCKING_IMPACTS]
    console_errors, page_errors = problems.take()
    csp += [m for m in console_errors if "Content Security Policy" in m]
    console_errors = [m for m in console_errors if "Content Security Policy" not in m]
    failures = []
    if blocking:
        failures.append(f"axe found serious or critical accessibility violations:\n{_describe(blocking)}")
    if csp:
        failures.append("Content Security Policy violations:\n" + "\n".join(f"- {c}" for c in csp))
    if console_errors:
        failures.append("console errors:\n" + "\n".join(f"- {m}" for m in console_errors))
    if page_errors:
        failures.append("uncaught script errors:\n" + "\n".join(f"- {m}" for m in page_errors))
    if failures:
        pytest.fail(f"the {name} page ({page.url}) has problems:\n\n" + "\n\n".join(failures), pytrace=False)


def expect_logged_in(page: Page, name: str) -> None:
    expect(page.get_by_role("button", name="Log out")).to_be_visible()
    expect(page.get_by_text(f"You are logged in as {name}.")).to_be_visible()


def log_out(page: Page) -> None:
    page.get_by_role("banner").get_by_role("button", name="Log out").click()
    expect(page.get_by_role("status")).to_contain_text("You have logged out.")
    expect(page.get_by_role("button", name="Log out")).to_have_count(0)
    expect(nav_link(page, "Log in")).to_be_visible()


def nav_link(page: Page, name: str):
    return page.get_by_role("navigation", name="Main").get_by_role("link", name=name)


def log_in(page: Page, email: str, password: str) -> None:
    page.get_by_label("Email address").fill(email)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("main").get_by_role("button", name="Log in").click()


def reset_link(smtp, address: str, base_url: str) -> str:
    bodies = [message.get_body(("plain",)).get_content() for message in smtp.to(address)]
    links = [m.group(0) for body in bodies if (m := re.search(r"\S+/password/reset/\S+", body))]
    assert len(links) == 1, f"expected one reset link for {address}, got {links}"
    [link] = links
    assert link.startswith(f"{base_url}/password/reset/"), f"the link is not the server's: {link}"
    return link


# --- the journey -------------------------------------------------------------------------------


def test_register_log_in_and_reset_a_forgotten_password(browser_page, live_server, smtp, drain):
    page, problems = browser_page

    # Register a new SME.
    page.goto("/register")
    expect(page.get_by_role("heading", level=1, name="Register")).to_be_visible()
    check_page(page, problems, "register")
    page.get_by_label("Your name").fill("Sara Svensson")
    page.get_by_label("Email address").fill(EMAIL)
    page.get_by_label("Password", exact=True).fill(OLD_PASSWORD)
    page.get_by_label("Repeat the password").fill(OLD_PASSWORD)
    page.get_by_label("Register a new organisation").check()
    page.get_by_label("Organisation number").fill("556016-0680")
    page.get_by_label("Organisation name").fill("Svensson Robotik AB")
    page.get_by_label("Small or medium-sized enterprise (submits proposals)").check()
    page.get_by_label("Staff headcount").fill("12")
    page.get_by_label("Annual turnover (SEK)").fill("8000000")
    page.get_by_label("Balance-sheet total (SEK)").fill("3000000")
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_role("heading", level=1, name="Check your email")).to_be_visible()
    check_page(page, problems, "registration sent")

    # Confirm the address through the emailed link.
    drain()
    bodies = [m.get_body(("plain",)).get_content() for m in smtp.to(EMAIL)]
    [link] = [m.group(0) for body in bodies if (m := re.search(r"\S+/register/confirm/\S+", body))]
    assert link.startswith(f"{live_server}/register/confirm/")
    page.goto(link)
    check_page(page, problems, "confirm the address")
    page.get_by_role("button", name="Confirm the address and create the account").click()
    expect(page).to_have_url(f"{live_server}/")
    expect(page.get_by_role("status")).to_contain_text(
        "Welcome! Your address is confirmed and your account is ready."
    )
    expect_logged_in(page, "Sara Svensson")
    cookies = {c["name"]: c for c in page.context.cookies()}
    assert "__Host-session" in cookies, f"no session cookie kept by the browser: {list(cookies)}"
    assert cookies["__Host-session"]["secure"] and cookies["__Host-session"]["httpOnly"]
    check_page(page, problems, "home (logged in)")

    # Log out, and in again with the password.
    log_out(page)
    nav_link(page, "Log in").click()
    expect(page.get_by_role("heading", level=1, name="Log in")).to_be_visible()
    check_page(page, problems, "login")
    log_in(page, EMAIL, OLD_PASSWORD)
    expect(page).to_have_url(f"{live_server}/")
    expect_logged_in(page, "Sara Svensson")
    log_out(page)

    # Forgot the password: ask for a link.
    nav_link(page, "Log in").click()
    page.get_by_role("link", name="Forgot your password?").click()
    expect(page.get_by_role("heading", level=1, name="Forgot your password?")).to_be_visible()
    check_page(page, problems, "forgot password")
    page.get_by_label("Email address").fill(EMAIL)
    page.get_by_role("button", name="Send the link").click()
    expect(page.get_by_role("heading", level=1, name="Check your email")).to_be_visible()
    check_page(page, problems, "reset link sent")

    drain()  # the worker sends the welcome and the reset email
    link = reset_link(smtp, EMAIL, live_server)

    # Choose a new password through the emailed link.
    page.goto(link)
    expect(page.get_by_role("heading", level=1, name="Choose a new password")).to_be_visible()
    check_page(page, problems, "reset password")
    page.get_by_label("Password", exact=True).fill(NEW_PASSWORD)
    page.get_by_label("Repeat the password").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Save the new password").click()
    expect(page).to_have_url(f"{live_server}/login")
    expect(page.get_by_role("status")).to_contain_text("Your password has been changed.")

    # The new password works ...
    log_in(page, EMAIL, NEW_PASSWORD)
    expect(page).to_have_url(f"{live_server}/")
    expect_logged_in(page, "Sara Svensson")
    log_out(page)

    # ... and the old one no longer does.
    page.goto("/login")
    log_in(page, EMAIL, OLD_PASSWORD)
    summary = page.locator(".error-summary")
    expect(summary).to_have_attribute("role", "alert")
    expect(summary).to_contain_text("not correct")
    expect(page.get_by_role("button", name="Log out")).to_have_count(0)
    check_page(page, problems, "login (wrong password)")


def test_error_summary_links_to_the_fields(browser_page, live_server):
    page, problems = browser_page
    page.goto("/register")
    page.get_by_role("button", name="Create account").click()

    summary = page.get_by_role("alert")
    expect(summary).to_have_class(re.compile(r"\berror-summary\b"))
    expect(summary.get_by_role("heading", name="There is a problem")).to_be_visible()
    fields = ("name", "email", "password", "password_confirm", "organisation_choice", "org_number")
    for field_id in fields:
        expect(summary.locator(f'a[href="#{field_id}"]')).to_have_count(1)
    expect(page.locator("#name")).to_have_attribute("aria-invalid", "true")

    summary.get_by_role("link").first.click()
    expect(page).to_have_url(f"{live_server}/register#name")
    expect(page.get_by_label("Your name")).to_be_focused()
    check_page(page, problems, "register (with errors)")


def test_a_challenge_from_draft_to_an_sme_that_follows_its_theme(browser_page, live_server, ctx, smtp, drain):
    """The owner drafts and submits; the programme approves; an SME finds it by search, follows
    its theme and gets the email for the next challenge with that theme."""
    from datetime import timedelta

    from challenges.accounts.models import OrganisationKind
    from challenges.calls import services
    from challenges.core.formatting import to_local
    from challenges.core.models import utcnow
    from challenges.extensions import db
    from tests.factories import challenge_content, make_manager, make_org, make_user, make_year, topics

    owner = make_user(
        "olle@steel.example.com",
        name="Olle Owner",
        password=OLD_PASSWORD,
        org=make_org(OrganisationKind.industrial, name="Steel Works AB"),
    )
    manager = make_manager()
    manager.password_hash = owner.password_hash
    make_user(
        "sara@sensors.example.com",
        name="Sara SME",
        password=OLD_PASSWORD,
        org=make_org(OrganisationKind.sme, name="Sensors AB"),
    )
    year = make_year(2026)
    by_name = topics()
    db.session.commit()
    page, problems = browser_page

    # The owner drafts a challenge, previews it and submits it.
    page.goto("/login")
    log_in(page, "olle@steel.example.com", OLD_PASSWORD)
    nav_link(page, "Your challenges").click()
    check_page(page, problems, "your challenges")
    page.get_by_role("link", name="Draft a new challenge").click()
    expect(page.get_by_role("heading", level=1, name="New challenge")).to_be_visible()
    check_page(page, problems, "new challenge")
    page.get_by_label("Title").fill("Detect hairline cracks in castings")
    page.get_by_label("One-line summary").fill("Find cracks before the parts are machined.")
    page.get_by_label("Description").fill("We cast **pump housings**.\n\n- 40 000 parts a year")
    page.get_by_label("Priority area").select_option(label="Data")
    page.get_by_label("Sensors").check()
    page.get_by_label("What a solution must demonstrate").fill("A prototype tested on our parts.")
    page.get_by_label("Maximum funding per proposal (SEK)").fill("400 000")
    deadline = to_local(utcnow() + timedelta(days=21))
    page.locator("#deadline_date").fill(deadline.date().isoformat())
    page.locator("#deadline_time").fill("15:00")
    page.get_by_label("Challenge agreement").fill("Results belong to the applicant.")
    page.get_by_role("button", name="Preview").click()
    expect(page.locator(".preview strong")).to_have_text("pump housings")
    check_page(page, problems, "new challenge (preview)")
    page.get_by_role("button", name="Save the draft").click()
    expect(page.get_by_role("status")).to_contain_text("The draft has been saved.")
    expect(page.get_by_role("heading", level=1)).to_have_text("Detect hairline cracks in castings")
    expect(
        page.get_by_text(f"{deadline.day} {deadline.strftime('%b')} {deadline.year} 15:00")
    ).to_be_visible()
    check_page(page, problems, "challenge (draft)")
    page.get_by_role("button", name="Submit for approval").click()
    expect(page.get_by_role("status")).to_contain_text("submitted for approval")
    log_out(page)

    # The programme manager approves it.
    page.goto("/login")
    log_in(page, "manager@agency.example.com", OLD_PASSWORD)
    nav_link(page, "Approvals").click()
    check_page(page, problems, "approvals")
    page.get_by_role("link", name="Detect hairline cracks in castings").click()
    page.get_by_role("button", name="Approve and publish").click()
    expect(page.get_by_role("status")).to_contain_text("The challenge is published.")
    expect(page.get_by_role("list").filter(has_text="Approved and published")).to_be_visible()
    check_page(page, problems, "challenge (published)")
    nav_link(page, "Health").click()
    expect(page.get_by_role("heading", level=1, name="Health")).to_be_visible()
    check_page(page, problems, "health")
    log_out(page)

    # An SME finds it by searching, then follows the theme Simulation.
    page.goto("/login")
    log_in(page, "sara@sensors.example.com", OLD_PASSWORD)
    nav_link(page, "Challenges").click()
    page.get_by_label("Search").fill("hairline crack")
    page.get_by_role("button", name="Show challenges").click()
    expect(page.locator("main p[role=status]")).to_contain_text("1 challenge ·")
    check_page(page, problems, "catalogue (search)")
    page.get_by_role("link", name="Detect hairline cracks in castings").click()
    expect(page.locator(".prose strong").first).to_have_text("pump housings")
    check_page(page, problems, "challenge (as an SME)")
    nav_link(page, "Following").click()
    page.get_by_label("Simulation").check()
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status")).to_contain_text("choices have been saved")
    expect(page.get_by_label("Simulation")).to_be_checked()
    check_page(page, problems, "following")

    drain()
    smtp.reset()
    # The next challenge with that theme is published: Sara hears of it from the worker.
    owner, manager = db.session.merge(owner), db.session.merge(manager)
    second = services.create_challenge(
        challenge_content(
            year, title="Simulate the cooling of large castings", theme_ids=[by_name["Simulation"].id]
        ),
        by=owner,
    )
    services.submit_challenge(second, by=owner)
    services.approve_challenge(second, by=manager)
    db.session.commit()
    drain()
    [mail] = smtp.to("sara@sensors.example.com")
    assert mail["Subject"] == "A new challenge matches what you follow"
    body = mail.get_body(("plain",)).get_content()
    assert "Simulate the cooling of large castings" in body
    assert f"{live_server}/challenges/{second.id}" in body


def test_an_sme_drafts_attaches_a_pdf_submits_and_reads_its_receipt(
    browser_page, live_server, ctx, smtp, drain
):
    """An SME finds an open challenge, drafts a proposal, attaches a PDF (a fake one is refused),
    submits version 1, and the receipt the worker wrote is in the mail outbox."""
    from challenges.accounts.models import OrganisationKind
    from challenges.calls.models import ChallengeStatus
    from challenges.extensions import db
    from tests.factories import make_challenge, make_manager, make_org, make_user, make_year, topics
    from tests.proposals.conftest import pdf

    owner = make_user(
        "olle@steel.example.com",
        password=OLD_PASSWORD,
        org=make_org(OrganisationKind.industrial, name="Steel Works AB"),
    )
    manager = make_manager()
    manager.password_hash = owner.password_hash
    make_user(
        "sara@sensors.example.com",
        name="Sara SME",
        password=OLD_PASSWORD,
        org=make_org(OrganisationKind.sme, name="Sensors AB"),
    )
    make_year(2026)
    topics()
    challenge_id = make_challenge(owner, ChallengeStatus.published, title="Detect cracks in cast parts").id
    db.session.commit()  # and no more ORM reads: an open SQLite transaction would block the server
    page, problems = browser_page

    page.goto("/login")
    log_in(page, "sara@sensors.example.com", OLD_PASSWORD)
    nav_link(page, "Challenges").click()
    page.get_by_role("link", name="Detect cracks in cast parts").click()
    page.get_by_role("link", name="Start a proposal").click()
    expect(page.get_by_role("heading", level=1, name="New proposal")).to_be_visible()
    check_page(page, problems, "new proposal")
    page.get_by_label("Title").fill("Acoustic crack detection")
    page.get_by_label("Summary").fill("Contact microphones hear cracks that cameras miss.")
    page.get_by_label("Your solution").fill("A sensor array on the **fixture**.")
    page.get_by_label("How it meets what the challenge asks").fill("Every part is tested before machining.")
    page.get_by_label("Milestone 1", exact=True).fill("Prototype")
    page.get_by_label("Date of milestone 1").fill("2027-03-01")
    page.get_by_label("Funding requested (SEK)").fill("400 000")
    page.get_by_label("Personnel").fill("350 000")
    page.get_by_label("Equipment").fill("40 000")
    page.get_by_role("button", name="Save without submitting").click()
    # The budget does not add up: the page says so, and keeps what was typed.
    expect(page.get_by_role("alert")).to_contain_text(
        "The budget lines add up to 390,000 kr but you request 400,000 kr"
    )
    expect(page.get_by_label("Title")).to_have_value("Acoustic crack detection")
    check_page(page, problems, "new proposal (refused)")
    page.get_by_label("Other costs").fill("10 000")
    page.get_by_role("button", name="Save without submitting").click()
    expect(page.get_by_role("status")).to_contain_text("Your changes have been saved.")
    expect(page.get_by_text("This is a draft: it has not been submitted.")).to_be_visible()
    check_page(page, problems, "proposal (draft)")

    page.get_by_role("link", name="Edit").click()
    file_input = page.get_by_label("PDF file")
    file_input.set_input_files(
        {"name": "plan.pdf", "mimeType": "application/pdf", "buffer": b"<html><body>not a pdf</body></html>"}
    )
    page.get_by_role("button", name="Attach the file").click()
    expect(page.get_by_role("alert")).to_contain_text("This file is not a PDF, whatever its name says.")
    check_page(page, problems, "edit proposal (refused file)")
    page.get_by_label("PDF file").set_input_files(
        {"name": "plan.pdf", "mimeType": "application/pdf", "buffer": pdf(4000)}
    )
    page.get_by_role("button", name="Attach the file").click()
    expect(page.get_by_role("status")).to_contain_text("plan.pdf has been attached.")
    page.get_by_label("We accept the challenge agreement").check()
    page.get_by_role("button", name="Save and submit version 1").click()
    expect(page.get_by_role("status")).to_contain_text("Version 1 of your proposal has been submitted.")
    expect(page.get_by_role("link", name="plan.pdf")).to_be_visible()
    check_page(page, problems, "proposal (submitted)")
    nav_link(page, "Your proposals").click()
    expect(page.get_by_role("row", name=re.compile("Acoustic crack detection"))).to_contain_text(
        "Submitted · version 1"
    )
    check_page(page, problems, "your proposals")

    drain()
    [receipt] = smtp.to("sara@sensors.example.com")
    assert receipt["Subject"] == "Receipt: your proposal has been submitted (version 1)"
    # Sara sees one unread message in the header and reads the receipt among her own messages.
    page.reload()
    expect(nav_link(page, "Messages (1 unread)")).to_be_visible()
    nav_link(page, "Messages (1 unread)").click()
    check_page(page, problems, "your messages (one unread)")
    page.get_by_role("link", name="Receipt: your proposal has been submitted (version 1)").click()
    expect(page.get_by_role("main")).to_contain_text(
        "We have received version 1 of your organisation's proposal"
    )
    expect(page.get_by_role("main")).to_contain_text("Acoustic crack detection")
    check_page(page, problems, "your message (receipt)")
    expect(nav_link(page, "Messages")).to_have_text("Messages")  # read: the count is gone
    log_out(page)

    # The programme manager sees only a count on the challenge, and a sealed line in the outbox.
    page.goto("/login")
    log_in(page, "manager@agency.example.com", OLD_PASSWORD)
    page.goto(f"/challenges/{challenge_id}")
    expect(page.get_by_text("Proposals are sealed until the deadline.")).to_be_visible()
    expect(page.locator("#proposals-title + p + dl")).to_have_text(
        re.compile(r"\s*Submitted\s*1\s*Drafts\s*0\s*Withdrawn\s*0\s*")
    )
    nav_link(page, "Outbox").click()
    expect(page.get_by_role("main")).to_contain_text(
        "Sealed: about a proposal to a challenge that is open until"
    )
    expect(page.get_by_role("main")).not_to_contain_text("Acoustic crack detection")
    expect(page.get_by_role("main")).not_to_contain_text("sara@sensors.example.com")
    check_page(page, problems, "outbox (sealed)")


def test_an_evaluator_declares_a_conflict_scores_two_proposals_and_then_reads_the_others(
    browser_page, live_server, ctx, drain
):
    """The evaluator declares a conflict with one applicant, is given the other two, scores them
    (one criterion N/A), and sees another evaluator's review only once their own is in."""
    from datetime import timedelta

    from challenges.accounts.models import OrganisationKind, Role
    from challenges.calls import services as calls
    from challenges.calls.models import ChallengeStatus
    from challenges.core.models import utcnow
    from challenges.extensions import db
    from challenges.reviews import services as reviews
    from tests.factories import make_challenge, make_manager, make_org, make_user, make_year, topics
    from tests.proposals.conftest import make_proposal
    from tests.reviews.test_workflow import _score

    make_year(2026)
    topics()
    owner = make_user(
        "olle@steel.example.com", org=make_org(OrganisationKind.industrial, name="Steel Works AB")
    )
    challenge = make_challenge(
        owner,
        ChallengeStatus.published,
        criteria=[("Potential", 40), ("Team and capacity", 30), ("Feasibility of implementation", 30)],
    )
    smes = [
        make_user(f"lead@sme{i}.example.com", org=make_org(OrganisationKind.sme, name=f"SME {i} AB"))
        for i in range(3)
    ]
    for i, sme in enumerate(smes):
        make_proposal(sme, challenge, title=f"Proposal from SME {i}")
    challenge.deadline = utcnow() - timedelta(seconds=1)
    calls.close_challenge(challenge)
    review = reviews.open_review(challenge)
    review.evaluators_per_proposal = 2
    eva = make_user(
        "eva@evaluators.example.com", name="Eva Evaluator", password=OLD_PASSWORD, roles=(Role.evaluator,)
    )
    others = [
        make_user(f"expert{i}@independent.example.org", name=f"Expert {i}", roles=(Role.evaluator,))
        for i in (2, 3)
    ]
    manager = make_manager()
    conflicted_number = smes[2].organisation.org_number
    db.session.commit()
    page, problems = browser_page

    page.goto("/login")
    log_in(page, "eva@evaluators.example.com", OLD_PASSWORD)
    nav_link(page, "Your reviews").click()
    expect(page.get_by_text("You have no proposals to review yet.")).to_be_visible()
    check_page(page, problems, "your reviews (empty)")
    page.get_by_role("link", name="Declare a conflict of interest").click()
    page.get_by_label("Organisation number").fill(conflicted_number)
    page.get_by_label("I have a contract with it").check()
    page.get_by_role("button", name="Declare").click()
    expect(page.get_by_role("status")).to_contain_text("You will not be assigned proposals")
    expect(page.get_by_role("cell", name="SME 2 AB")).to_be_visible()
    check_page(page, problems, "conflicts")

    # The programme manager screens and assigns; another expert scores the first proposal.
    db.session.expire_all()
    for assessment in review.assessments:
        reviews.screen_proposal(assessment, eligible=True, reason="", by=manager)
    assignments.assign_automatically(review, by=manager)
    mine = {a.assessment.proposal.title: a for a in reviews.my_assignments(eva)}
    assert sorted(mine) == ["Proposal from SME 0", "Proposal from SME 1"]
    first_other = next(
        a for a in mine["Proposal from SME 0"].assessment.assignments if a.evaluator_id != eva.id
    )
    _score(first_other, comment="An expert view on the first proposal.")
    db.session.commit()
    assert others  # both experts exist; one of them has scored

    nav_link(page, "Your reviews").click()
    expect(page.get_by_role("row", name=re.compile("To do"))).to_have_count(2)
    expect(page.get_by_text("Proposal from SME 2")).to_have_count(0)
    page.get_by_role("link", name="Proposal from SME 0").click()
    expect(
        page.get_by_text("You can read the other reviews after you have submitted your own.")
    ).to_be_visible()
    expect(page.get_by_text("An expert view on the first proposal.")).to_have_count(0)
    check_page(page, problems, "review (before scoring)")
    page.get_by_role("group", name=re.compile("^Potential")).get_by_label("6 – Very good").check()
    page.get_by_role("group", name=re.compile("^Team and capacity")).get_by_label("5 – Good").check()
    page.get_by_role("button", name="Submit the review").click()
    # One criterion left out: the page says which, and keeps the choices made.
    expect(page.get_by_role("alert")).to_contain_text("Score “Feasibility of implementation” from 1 to 7")
    expect(
        page.get_by_role("group", name=re.compile("^Potential")).get_by_label("6 – Very good")
    ).to_be_checked()
    check_page(page, problems, "review (refused)")
    page.get_by_role("group", name=re.compile("^Feasibility")).get_by_label("N/A – cannot be judged").check()
    page.get_by_label("Comment to the applicant").fill("A credible plan; the pilot needs a date.")
    page.get_by_role("button", name="Submit the review").click()
    expect(page.get_by_role("status")).to_contain_text("Your review is submitted.")
    expect(page.get_by_text("An expert view on the first proposal.")).to_be_visible()
    check_page(page, problems, "review (after scoring)")

    nav_link(page, "Your reviews").click()
    page.get_by_role("link", name="Proposal from SME 1").click()
    for group, label in (
        ("^Potential", "4 – Average"),
        ("^Team and capacity", "5 – Good"),
        ("^Feasibility", "3 – Fair"),
    ):
        page.get_by_role("group", name=re.compile(group)).get_by_label(label).check()
    page.get_by_label("Comment to the applicant").fill("Good team, unproven method.")
    page.get_by_role("button", name="Submit the review").click()
    expect(page.get_by_role("status")).to_contain_text("Your review is submitted.")
    expect(page.get_by_text("No other review is in yet.")).to_be_visible()
    nav_link(page, "Your reviews").click()
    expect(page.get_by_role("row", name=re.compile("To do"))).to_have_count(0)
    check_page(page, problems, "your reviews (done)")
    drain()
