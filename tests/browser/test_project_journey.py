"""In Chromium: an SME files its final report, the programme manager approves it, the last payment
shows on the award, and the programme report and the public list show the project as completed.
Every page is checked with axe, for CSP violations and for console errors."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

pytest.importorskip("axe_playwright_python.sync_playwright")

from playwright.sync_api import expect  # noqa: E402

from challenges.extensions import db  # noqa: E402
from challenges.funding import services as funding  # noqa: E402
from challenges.funding.models import Award, InstalmentCondition  # noqa: E402
from challenges.projects.models import Project  # noqa: E402
from tests.browser.test_journey import (  # noqa: E402, F401 - fixtures
    browser_page,
    check_page,
    chromium,
    live_server,
    log_in,
    log_out,
    nav_link,
)
from tests.factories import TEST_PASSWORD  # noqa: E402
from tests.funding.test_awards import decided  # noqa: E402, F401 - fixtures
from tests.reviews.conftest import assigned, desk  # noqa: E402, F401

pytestmark = pytest.mark.browser
SEK = 100


def test_a_final_report_filed_approved_paid_and_reported(browser_page, live_server, people, decided, drain):  # noqa: F811
    manager = people["manager"]
    award = funding.award_funding(
        decided.proposals["sme"], decided.challenge.programme_year, 400_000 * SEK, by=manager
    )
    award_id = award.id
    db.session.commit()
    drain()  # the ledger books the award; the project starts
    award = db.session.get(Award, award_id)
    start = next(i for i in award.instalments if i.condition is InstalmentCondition.start)
    funding.approve_payment(start, by=manager)
    project_title = db.session.scalar(sa.select(Project).where(Project.award_id == award_id)).title
    programme_id = decided.challenge.programme_year.programme_id
    db.session.commit()
    drain()
    page, problems = browser_page

    # Sensors AB files its final report; a bad indicator is refused first.
    page.goto("/login")
    log_in(page, "sara@sensors.example.com", TEST_PASSWORD)
    nav_link(page, "Projects").click()
    page.get_by_role("link", name=project_title).click()
    check_page(page, problems, "project")
    page.get_by_role("link", name="Final report").click()
    page.get_by_label("What was done").fill("The sensor rig ran **ten weeks** on the line.")
    page.get_by_label("Technology readiness level reached").select_option("7")
    page.get_by_role("group", name="A prototype or pilot with the challenge owner").get_by_label(
        "Yes"
    ).check()
    page.get_by_role("group", name="A follow-on agreement or sale with the challenge owner").get_by_label(
        "No"
    ).check()
    page.get_by_label("Other customers for the solution").fill("2")
    page.get_by_label("Private co-funding (SEK)").fill("-5")
    page.get_by_label("Jobs created").fill("3")
    page.get_by_role("button", name="Submit the report").click()
    expect(page.get_by_role("alert")).to_contain_text("0 or more")
    check_page(page, problems, "final report (refused)")
    page.get_by_label("Private co-funding (SEK)").fill("150 000")
    page.get_by_role("button", name="Submit the report").click()
    expect(page.get_by_role("status")).to_contain_text("Your report has been submitted")
    log_out(page)

    # The programme manager approves it: the ledger pays the last instalment.
    page.goto("/login")
    log_in(page, "manager@agency.example.com", TEST_PASSWORD)
    nav_link(page, "Projects").click()
    page.get_by_role("link", name=project_title).click()
    page.get_by_role("link", name="Final report").click()
    expect(page.get_by_text("ten weeks")).to_be_visible()
    check_page(page, problems, "final report (to approve)")
    page.get_by_role("button", name="Approve the report").click()
    expect(page.get_by_role("status")).to_contain_text("approved")
    drain()
    page.goto(f"/awards/{award_id}")
    expect(page.get_by_role("row", name=re.compile("After the approved final report"))).to_contain_text(
        "approved"
    )
    expect(page.get_by_role("button", name="Approve the payment")).to_have_count(0)
    check_page(page, problems, "award (paid)")

    # The programme report shows the project, completed and paid in full, reconciled with the ledger.
    nav_link(page, "Programmes").click()
    page.get_by_role("link", name="Programme report").first.click()
    row = page.get_by_role("row", name=re.compile(re.escape(project_title)))
    expect(row.first).to_contain_text("Completed")
    expect(row.first).to_contain_text("400,000")
    expect(page.get_by_text("Yes, to the öre")).to_be_visible()
    expect(page.locator("svg[role=img]")).to_have_count(4)
    check_page(page, problems, "programme report")
    pdf = page.pdf()  # the printable page makes a PDF
    assert pdf.startswith(b"%PDF") and len(pdf) > 5_000

    # Anyone may read the public list.
    log_out(page)
    page.goto(f"/programmes/{programme_id}")
    expect(page.get_by_role("row", name=re.compile(re.escape(project_title)))).to_contain_text("Completed")
    check_page(page, problems, "public list of funded projects")
