"""Proposal pages: the forms keep what was typed, uploads are checked, and who sees what, when."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
import sqlalchemy as sa

from challenges.accounts.models import OrganisationKind
from challenges.core.models import utcnow
from challenges.extensions import db
from challenges.proposals import rules, services
from challenges.proposals.models import Proposal, ProposalAttachment, ProposalStatus
from tests.factories import make_org, make_user
from tests.proposals.conftest import content, make_proposal, pdf


def _form(sme, **changes) -> dict:
    """The proposal form as a browser posts it: money in kronor as people type it."""
    data = {
        "title": "Acoustic crack detection",
        "summary": "We listen for cracks.",
        "solution": "A *sensor* array.",
        "fit": "Finds cracks before machining.",
        "milestones-0-title": "Prototype",
        "milestones-0-due": "2027-03-01",
        "milestones-0-deliverable": "A rig",
        "requested": "400 000",
        "budget_personnel": "300 000",
        "budget_equipment": "50 000",
        "budget_services": "40 000,00",
        "budget_other": "10000",
        "team": str(sme.id),
        "partners-0-name": "Luleå University of Technology",
        "partners-0-kind": "university",
        "partners-0-org_number": "202100-2841",
        "partners-0-role": "Signals",
        "accept_agreement": "y",
        "save": "1",
    }
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


def _count() -> int:
    db.session.rollback()
    return db.session.scalar(sa.select(sa.func.count()).select_from(Proposal))


@pytest.fixture
def sara(people, make_browser):
    b = make_browser()
    b.login("sara@sensors.example.com")
    return b


def test_save_a_draft_then_submit_it(people, challenge, sara):
    new = f"/challenges/{challenge.id}/proposals/new"
    page = sara.get(new).get_data(as_text=True)
    assert "New proposal" in page and "Results belong to the applicant." in page  # the agreement to accept
    response = sara.submit(new, _form(people["sme"], accept_agreement=None))
    assert response.status_code == 303
    proposal = db.session.scalar(sa.select(Proposal))
    assert proposal.status is ProposalStatus.draft and proposal.requested_ore == 400_000_00
    assert proposal.budget_services_ore == 40_000_00 and proposal.milestones[0]["due"] == "2027-03-01"
    assert proposal.partners[0]["org_number"] == "202100-2841"

    response = sara.submit(f"/proposals/{proposal.id}/submit", {}, page_url=f"/proposals/{proposal.id}")
    page = response.get_data(as_text=True)
    assert response.status_code == 200 and "Accept the challenge agreement to submit" in page
    db.session.rollback()
    assert db.session.get(Proposal, proposal.id).version == 0

    response = sara.submit(f"/proposals/{proposal.id}/edit", _form(people["sme"], save=None, submit="1"))
    assert response.status_code == 303
    db.session.rollback()
    proposal = db.session.get(Proposal, proposal.id)
    assert proposal.status is ProposalStatus.submitted and proposal.version == 1
    page = sara.get(f"/proposals/{proposal.id}").get_data(as_text=True)
    assert "Version 1 of your proposal has been submitted" in page
    assert "<em>sensor</em>" in page  # Markdown, rendered and sanitised
    assert sara.get("/proposals").get_data(as_text=True).count(f'href="/proposals/{proposal.id}"') == 1


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"requested": "400 000,005"}, "Use at most two decimals"),
        (
            {
                "requested": "-400 000",
                "budget_personnel": "-400 000",
                "budget_equipment": "",
                "budget_services": "",
                "budget_other": "",
            },
            "cannot be negative",
        ),
        ({"requested": "500 000,01", "budget_personnel": "400 000,01"}, "You can request at most 500,000 kr"),
        ({"budget_other": "9 999"}, "The budget lines add up to 399,999 kr but you request 400,000 kr"),
        ({"requested": "lots"}, "Enter an amount in kronor"),
        ({"title": ""}, "Enter a title."),
        ({"title": "x" * 201}, "Use at most 200 characters."),
        ({"milestones-0-due": "2027-02-30"}, "Enter a real date"),
        ({"milestones-0-due": ""}, "both a name and a date"),
        ({"partners-0-org_number": "202100-2842"}, "is not valid"),
        ({"team": None}, "Choose at least one person"),
        ({"solution": "- " * 30 + "deep"}, "Lists and quotes are nested more than 20 levels deep here."),
        ({"fit": "[" * 3000}, "A paragraph here has too many square brackets to be shown."),
    ],
)
def test_bad_input_keeps_what_was_typed_and_saves_nothing(people, challenge, sara, changes, message):
    response = sara.submit(f"/challenges/{challenge.id}/proposals/new", _form(people["sme"], **changes))
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert message in page
    assert "We listen for cracks." in page  # what was typed stays in the form
    assert _count() == 0


def test_editing_another_organisations_proposal_is_refused(people, challenge, make_browser):
    proposal = make_proposal(people["sme"], challenge)
    db.session.commit()
    jonas = make_browser()
    jonas.login("jonas@robots.example.com")
    response = jonas.submit(
        f"/proposals/{proposal.id}/edit", _form(people["other_sme"], title="Mine now"), page_url="/proposals"
    )
    assert response.status_code == 404
    db.session.rollback()
    assert db.session.get(Proposal, proposal.id).title == "Acoustic crack detection"


def test_a_company_that_is_not_an_sme_is_told_which_rule_failed(people, challenge, sara):
    org = people["sme"].organisation
    proposal = make_proposal(people["sme"], challenge, submit=False)
    org.staff_headcount = 400
    db.session.commit()
    page = sara.get(f"/proposals/{proposal.id}").get_data(as_text=True)
    assert "fewer than 250 staff; your organisation reports 400" in page
    response = sara.submit(f"/proposals/{proposal.id}/submit", {}, page_url=f"/proposals/{proposal.id}")
    assert "fewer than 250 staff" in response.get_data(as_text=True)
    response = sara.submit(
        "/organisation",
        {
            "org_number": org.org_number,
            "staff_headcount": "45",
            "annual_turnover": "9 500 000",
            "balance_sheet_total": "4 200 000",
        },
    )
    assert response.status_code == 303
    response = sara.submit(f"/proposals/{proposal.id}/submit", {}, page_url=f"/proposals/{proposal.id}")
    assert response.status_code == 303
    db.session.rollback()
    assert db.session.get(Proposal, proposal.id).version == 1


def test_organisation_figures_refuse_bad_input(people, sara):
    org = people["sme"].organisation
    response = sara.submit(
        "/organisation",
        {
            "org_number": "556016-0681",
            "staff_headcount": "-1",
            "annual_turnover": "1,234",
            "balance_sheet_total": "",
        },
    )
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    for message in (
        "check digit does not match",
        "Enter a whole number of 0 or more",
        "Use at most two decimals",
        "Enter the balance-sheet total",
    ):
        assert message in page
    db.session.rollback()
    assert db.session.get(type(org), org.id).staff_headcount == 10


# --- attachments --------------------------------------------------------------------------------------


def _upload(browser, proposal, data: bytes, name: str = "plan.pdf"):
    return browser.submit(
        f"/proposals/{proposal.id}/attachments",
        {"file": (io.BytesIO(data), name)},
        page_url=f"/proposals/{proposal.id}/edit",
        content_type="multipart/form-data",
    )


def _attachments() -> int:
    db.session.rollback()
    return db.session.scalar(sa.select(sa.func.count()).select_from(ProposalAttachment))


def test_uploads_are_checked_by_content_size_and_number(people, challenge, sara):
    proposal = make_proposal(people["sme"], challenge, submit=False)
    db.session.commit()
    for data, message in (
        (b"<html><body>Not a PDF</body></html>", "This file is not a PDF"),
        (pdf(10 * 1024 * 1024 + 1), "larger than 10 MB"),
    ):
        response = _upload(sara, proposal, data)
        assert response.status_code == 200 and message in response.get_data(as_text=True)
        assert _attachments() == 0
    response = sara.submit(
        f"/proposals/{proposal.id}/attachments", {}, page_url=f"/proposals/{proposal.id}/edit"
    )
    assert "Choose a PDF file to upload." in response.get_data(as_text=True)
    assert _upload(sara, proposal, b"%PDF-" + b"x" * (13 * 1024 * 1024)).status_code == 413
    for n in range(5):
        assert _upload(sara, proposal, pdf(), f"annex-{n}.pdf").status_code == 303
    response = _upload(sara, proposal, pdf(), "sixth.pdf")
    assert "at most 5 attachments" in response.get_data(as_text=True)
    assert _attachments() == 5


def test_downloads_are_attachments_for_allowed_people_only(people, challenge, sara, make_browser):
    proposal = make_proposal(people["sme"], challenge, submit=False)
    data = pdf(5000, b"%% the real thing")
    services.add_attachment(proposal, "Plan åäö.pdf", data, by=people["sme"])
    services.submit_proposal(proposal, by=people["sme"])
    db.session.commit()
    attachment = proposal.attachments[0]
    url = f"/proposals/{proposal.id}/attachments/{attachment.id}"
    response = sara.get(url)
    assert response.status_code == 200 and response.data == data
    assert response.headers["Content-Disposition"].startswith("attachment;")
    assert "filename*=UTF-8''Plan%20%C3%A5%C3%A4%C3%B6.pdf" in response.headers["Content-Disposition"]
    assert response.headers["Content-Type"] == "application/pdf"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "no-store" in response.headers["Cache-Control"]
    owner = make_browser()
    owner.login("owner@steel.example.com")
    assert owner.get(url).status_code == 404  # sealed
    challenge.deadline = utcnow() - timedelta(seconds=1)
    db.session.commit()
    assert owner.get(url).status_code == 200


# --- the access matrix ------------------------------------------------------------------------------------

WHO = {
    "sme": "sara@sensors.example.com",
    "other_sme": "jonas@robots.example.com",
    "owner": "owner@steel.example.com",
    "other_owner": "owner@cars.example.com",
    "evaluator": "eva@evaluators.example.com",
    "manager": "manager@agency.example.com",
    "anonymous": None,
}

# What each person gets, before and after the deadline: ok (2xx or a redirect back to the
# proposal), login, or refused (403, or 404 where even the proposal's existence is sealed).
BEFORE = {
    "sme": {"view": 200, "edit": 200, "submit": 303, "withdraw": 303, "download": 200},
    **{
        who: {"view": 404, "edit": 404, "submit": 404, "withdraw": 404, "download": 404}
        for who in ("other_sme", "owner", "other_owner", "evaluator", "manager")
    },
    "anonymous": {"view": 302, "edit": 302, "submit": 302, "withdraw": 302, "download": 302},
}
AFTER = {
    "sme": {"view": 200, "edit": 303, "submit": 303, "withdraw": 303, "download": 200},
    "owner": {"view": 200, "edit": 403, "submit": 403, "withdraw": 403, "download": 200},
    "manager": {"view": 200, "edit": 403, "submit": 403, "withdraw": 403, "download": 200},
    **{
        who: {"view": 404, "edit": 404, "submit": 404, "withdraw": 404, "download": 404}
        for who in ("other_sme", "other_owner", "evaluator")
    },
    "anonymous": {"view": 302, "edit": 302, "submit": 302, "withdraw": 302, "download": 302},
}


@pytest.mark.parametrize("after_deadline", [False, True], ids=["before", "after"])
@pytest.mark.parametrize("who", list(WHO))
def test_access_matrix(people, challenge, make_browser, who, after_deadline):
    sme = people["sme"]
    proposal = make_proposal(sme, challenge, submit=False)
    services.add_attachment(proposal, "plan.pdf", pdf(), by=sme)
    services.submit_proposal(proposal, by=sme)
    services.update_proposal(proposal, content(sme, title="Unsubmitted change"), by=sme)
    if after_deadline:
        challenge.deadline = utcnow() - timedelta(seconds=1)  # passed, though the sweep has not run
    db.session.commit()
    b = make_browser()
    if WHO[who]:
        b.login(WHO[who])
    token_page = "/account" if WHO[who] else "/login"
    base = f"/proposals/{proposal.id}"
    got = {
        "view": b.get(base).status_code,
        "edit": b.get(f"{base}/edit").status_code,
        "download": b.get(f"{base}/attachments/{proposal.attachments[0].id}").status_code,
        "submit": b.submit(f"{base}/submit", {}, page_url=token_page).status_code,
        "withdraw": b.submit(f"{base}/withdraw", {}, page_url=token_page).status_code,
    }
    expected = (AFTER if after_deadline else BEFORE).get(who) or BEFORE[who]
    assert got == expected
    db.session.rollback()
    proposal = db.session.get(Proposal, proposal.id)
    if after_deadline or who != "sme":  # nothing changed, whoever tried
        assert (proposal.status, proposal.version) == (ProposalStatus.submitted, 1)
    else:  # the applicant resubmitted (version 2), then withdrew
        assert (proposal.status, proposal.version) == (ProposalStatus.withdrawn, 2)
    if who in ("owner", "manager") and after_deadline:  # they read the submitted version, not later edits
        page = b.get(base).get_data(as_text=True)
        assert "Acoustic crack detection" in page and "Unsubmitted change" not in page


def test_the_challenge_proposal_list_is_sealed_until_the_deadline(people, challenge, make_browser):
    make_proposal(people["sme"], challenge)
    make_proposal(people["other_sme"], challenge, submit=False, title="A draft")
    db.session.commit()
    url = f"/challenges/{challenge.id}/proposals"
    owner, manager, sme = make_browser(), make_browser(), make_browser()
    owner.login("owner@steel.example.com")
    manager.login("manager@agency.example.com")
    sme.login("sara@sensors.example.com")
    page = owner.get(url).get_data(as_text=True)
    assert "sealed until the deadline" in page and "Acoustic" not in page and "Submitted" not in page
    page = manager.get(url).get_data(as_text=True)
    assert (
        "Acoustic" not in page
        and "<dt>Submitted</dt><dd>1</dd>" in page
        and "<dt>Drafts</dt><dd>1</dd>" in page
    )
    assert sme.get(url).status_code == 403
    challenge.deadline = utcnow() - timedelta(seconds=1)
    db.session.commit()
    for b in (owner, manager):
        page = b.get(url).get_data(as_text=True)
        assert "Acoustic crack detection" in page and "Sensors AB" in page and "A draft" not in page
    other = make_browser()
    other.login("owner@cars.example.com")
    assert other.get(url).status_code == 403


def test_the_challenge_page_offers_a_proposal_to_smes_only(people, challenge, make_browser, sara):
    url = f"/challenges/{challenge.id}"
    assert "Start a proposal" in sara.get(url).get_data(as_text=True)
    owner = make_browser()
    owner.login("owner@steel.example.com")
    assert "Start a proposal" not in owner.get(url).get_data(as_text=True)
    assert owner.get(f"/challenges/{challenge.id}/proposals/new").status_code == 403
    proposal = make_proposal(people["sme"], challenge, submit=False)
    db.session.commit()
    assert f'href="/proposals/{proposal.id}"' in sara.get(url).get_data(as_text=True)
    # A second start goes to the proposal the organisation already has.
    response = sara.get(f"/challenges/{challenge.id}/proposals/new")
    assert response.status_code == 303 and response.headers["Location"].endswith(
        f"/proposals/{proposal.id}/edit"
    )


def test_versions_and_what_changed(people, challenge, sara):
    sme = people["sme"]
    proposal = make_proposal(sme, challenge)
    services.update_proposal(
        proposal, content(sme, fit="Finds cracks before machining.\n\nAnd porosity."), by=sme
    )
    services.submit_proposal(proposal, by=sme)
    db.session.commit()
    page = sara.get(f"/proposals/{proposal.id}/changes").get_data(as_text=True)
    assert "What changed from version 1 to version 2" in page
    assert "<ins>And porosity.</ins>" in page and "Budget" not in page
    page = sara.get(f"/proposals/{proposal.id}/versions/1").get_data(as_text=True)
    assert "Version 1, submitted" in page and "And porosity." not in page
    assert sara.get(f"/proposals/{proposal.id}/versions/3").status_code == 404
    assert sara.get(f"/proposals/{proposal.id}/changes?from=x&to=99").status_code == 200


def test_the_sme_test_uses_the_rate_the_programme_manager_sets(people, challenge, make_browser):
    manager = make_browser()
    manager.login("manager@agency.example.com")
    programme = challenge.programme_year.programme
    url = f"/admin/programmes/{programme.id}"
    page = manager.submit(url, {"eur_rate": "0", "admin_cap": "5"}).get_data(as_text=True)
    assert "Enter the price of one euro" in page
    assert manager.submit(url, {"eur_rate": "9,35", "admin_cap": "5"}).status_code == 303
    db.session.rollback()
    assert db.session.get(type(programme), programme.id).eur_rate_ore == 935
    assert "9.35 kr per euro" in manager.get("/admin/programmes").get_data(as_text=True)
    org = make_org(OrganisationKind.sme)
    org.annual_turnover_ore, org.balance_sheet_total_ore = 470_000_000_00, 420_000_000_00  # €50.3M and €44.9M
    make_user(org=org)
    assert "eligibility.finances" in rules.eligibility_problems(org, challenge)


def test_the_lists_cost_the_same_statements_with_more_proposals(people, make_browser):
    from tests.calls.test_catalogue import counting_queries
    from tests.factories import make_challenge

    sme, owner = people["sme"], people["owner"]
    sara, manager = make_browser(), make_browser()
    sara.login("sara@sensors.example.com")
    manager.login("manager@agency.example.com")
    first = make_challenge(owner)
    deadline = first.deadline
    make_proposal(sme, first)
    first.deadline = utcnow() - timedelta(seconds=1)  # the list shows proposals once it has closed
    db.session.commit()
    with counting_queries() as one_mine:
        assert sara.get("/proposals").status_code == 200
    with counting_queries() as one_list:
        assert "Acoustic crack detection" in manager.get(f"/challenges/{first.id}/proposals").get_data(
            as_text=True
        )
    first.deadline = deadline
    for n in range(4):
        make_proposal(sme, make_challenge(owner))
        applicant = make_user(f"applicant{n}@example.com", org=make_org(OrganisationKind.sme))
        make_proposal(applicant, first)
    first.deadline = utcnow() - timedelta(seconds=1)
    db.session.commit()
    with counting_queries() as five_mine:
        page = sara.get("/proposals").get_data(as_text=True)
    assert page.count("Submitted · version 1") == 5
    with counting_queries() as five_list:
        page = manager.get(f"/challenges/{first.id}/proposals").get_data(as_text=True)
    assert "5 proposals came in" in page
    assert len(five_mine) == len(one_mine)
    assert len(five_list) == len(one_list)


def test_a_refused_save_and_submit_says_that_nothing_was_saved(people, challenge, sara):
    people["sme"].organisation.staff_headcount = 400
    db.session.commit()
    response = sara.submit(
        f"/challenges/{challenge.id}/proposals/new", _form(people["sme"], save=None, submit="1")
    )
    page = response.get_data(as_text=True)
    assert "fewer than 250 staff" in page and "Nothing has been saved." in page
    assert "We listen for cracks." in page
    assert _count() == 0
