"""The rules of a proposal: what a draft and a submission need, eligibility, versions, the deadline."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from challenges.accounts.models import OrganisationKind
from challenges.calls import jobs as call_jobs
from challenges.calls.models import ChallengeStatus
from challenges.core.errors import InvalidInput, PermissionDenied, ServiceError
from challenges.core.models import Event, utcnow
from challenges.extensions import db
from challenges.proposals import rules, services, versions
from challenges.proposals.models import Proposal, ProposalStatus, ProposalVersion
from tests.factories import make_challenge, make_org, make_user
from tests.proposals.conftest import content, make_proposal, pdf


def _refused(call, *args, **kwargs) -> dict[str, str]:
    with pytest.raises(InvalidInput) as caught:
        call(*args, **kwargs)
    db.session.rollback()
    return caught.value.errors


def _proposals() -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(Proposal))


# --- drafts and their bad input --------------------------------------------------------------------


def test_a_draft_may_be_incomplete_but_needs_a_title(people, challenge):
    sme = people["sme"]
    proposal = services.start_proposal(
        challenge, rules.ProposalContent(title="Idea", team_ids=[sme.id]), by=sme
    )
    assert proposal.status is ProposalStatus.draft and proposal.version == 0
    db.session.commit()
    errors = _refused(
        services.update_proposal, proposal, rules.ProposalContent(title="  ", team_ids=[sme.id]), by=sme
    )
    assert errors == {"title": "Enter a title."}
    assert db.session.get(Proposal, proposal.id).title == "Idea"


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        (
            {"requested_ore": 500_000_01, "budget": {"personnel": 500_000_01}},
            "requested",
            "at most 500,000 kr",
        ),
        ({"requested_ore": -1}, "requested", "cannot be negative"),
        (
            {"requested_ore": 400_000_00, "budget": {"personnel": 399_999_99}},
            "requested",
            "add up to 399,999.99 kr",
        ),
        ({"budget": {"personnel": -5, "equipment": 400_000_05}}, "budget_personnel", "cannot be negative"),
        ({"title": "x" * 201}, "title", "at most 200"),
        ({"solution": "x" * 20001}, "solution", "at most 20000"),
        ({"milestones": [{"title": "Prototype", "due": ""}]}, "milestones", "both a name and a date"),
        ({"milestones": [{"title": "x", "due": "2027-02-30"}]}, "milestones", "real date"),
        (
            {"partners": [{"name": "", "kind": "university", "org_number": "", "role": "x"}]},
            "partners",
            "organisation's name",
        ),
        (
            {"partners": [{"name": "Uni", "kind": "university", "org_number": "202100-2842", "role": ""}]},
            "partners",
            "not valid",
        ),
        (
            {"partners": [{"name": "Uni", "kind": "castle", "org_number": "", "role": ""}]},
            "partners",
            "what kind",
        ),
        ({"team_ids": []}, "team", "at least one person"),
    ],
)
def test_bad_input_is_refused_by_name_and_changes_nothing(people, challenge, changes, field, words):
    sme = people["sme"]
    errors = _refused(services.start_proposal, challenge, content(sme, **changes), by=sme)
    assert words in errors[field], errors
    assert _proposals() == 0
    assert (
        db.session.scalar(
            sa.select(sa.func.count()).select_from(Event).where(Event.type == "ProposalStarted")
        )
        == 0
    )


def test_team_members_come_from_the_applicant_organisation(people, challenge):
    sme, outsider = people["sme"], people["other_sme"]
    errors = _refused(
        services.start_proposal, challenge, content(sme, team_ids=[sme.id, outsider.id]), by=sme
    )
    assert errors == {"team": "Choose team members from your organisation's members."}


def test_one_proposal_per_organisation_and_challenge(people, challenge):
    sme = people["sme"]
    make_proposal(sme, challenge, submit=False)
    colleague = make_user("colleague@sensors.example.com", org=sme.organisation)
    with pytest.raises(ServiceError, match="already has a proposal"):
        services.start_proposal(challenge, content(colleague, team_ids=[colleague.id]), by=colleague)


@pytest.mark.parametrize("who", ["owner", "evaluator", "manager"])
def test_only_sme_members_start_proposals(people, challenge, who):
    with pytest.raises(PermissionDenied):
        services.start_proposal(challenge, content(people["sme"], team_ids=[people[who].id]), by=people[who])


def test_only_open_challenges_take_proposals(people):
    sme = people["sme"]
    for status in (ChallengeStatus.draft, ChallengeStatus.submitted, ChallengeStatus.closed):
        challenge = make_challenge(people["owner"], status)
        with pytest.raises(ServiceError) as caught:
            services.start_proposal(challenge, content(sme), by=sme)
        assert "not open" in caught.value.message or "deadline" in caught.value.message


def test_another_organisation_cannot_edit_submit_or_withdraw(people, challenge):
    proposal = make_proposal(people["sme"], challenge)
    db.session.commit()
    intruder = people["other_sme"]
    for call in (
        lambda: services.update_proposal(proposal, content(intruder, team_ids=[intruder.id]), by=intruder),
        lambda: services.submit_proposal(proposal, by=intruder),
        lambda: services.withdraw_proposal(proposal, by=intruder),
        lambda: services.add_attachment(proposal, "x.pdf", pdf(), by=intruder),
    ):
        with pytest.raises(PermissionDenied):
            call()
        db.session.rollback()
    proposal = db.session.get(Proposal, proposal.id)
    assert proposal.title == "Acoustic crack detection" and proposal.status is ProposalStatus.submitted


# --- submission --------------------------------------------------------------------------------------


def test_submission_needs_every_part_and_names_each_missing_one(people, challenge):
    sme = people["sme"]
    proposal = services.start_proposal(
        challenge, rules.ProposalContent(title="Idea", team_ids=[sme.id]), by=sme
    )
    db.session.commit()
    errors = _refused(services.submit_proposal, proposal, by=sme)
    assert set(errors) == {"summary", "solution", "fit", "requested", "milestones", "accept_agreement"}
    assert "agreement" in errors["accept_agreement"]
    proposal = db.session.get(Proposal, proposal.id)
    assert proposal.status is ProposalStatus.draft and proposal.versions == []


def test_each_submission_is_a_numbered_frozen_version(people, challenge):
    sme = people["sme"]
    proposal = make_proposal(sme, challenge)
    assert proposal.version == 1 and proposal.status is ProposalStatus.submitted
    first = proposal.versions[0]
    assert first.content["title"] == "Acoustic crack detection"
    assert first.content["organisation"]["staff"] == 10  # the size figures the submission relied on

    with pytest.raises(ServiceError, match="Nothing has changed since version 1"):
        services.submit_proposal(proposal, by=sme)
    services.update_proposal(proposal, content(sme, title="Acoustic and thermal crack detection"), by=sme)
    assert versions.has_unsubmitted_changes(proposal)
    assert proposal.latest_version.content["title"] == "Acoustic crack detection"  # still what counts
    second = services.submit_proposal(proposal, by=sme)
    assert second.number == 2 and proposal.version == 2
    assert [v.number for v in proposal.versions] == [1, 2]
    assert first.content["title"] == "Acoustic crack detection"
    submitted = db.session.scalars(sa.select(Event).where(Event.type == "ProposalSubmitted")).all()
    assert [e.payload["number"] for e in submitted] == [1, 2]


def test_a_readable_diff_between_versions(people, challenge):
    sme = people["sme"]
    proposal = make_proposal(sme, challenge)
    services.update_proposal(
        proposal,
        content(
            sme,
            solution="## Approach\n\nA sensor array on the **fixture**.\n\nAnd a thermal camera.",
            requested_ore=450_000_00,
            budget={
                "personnel": 350_000_00,
                "equipment": 50_000_00,
                "services": 40_000_00,
                "other": 10_000_00,
            },
        ),
        by=sme,
    )
    services.submit_proposal(proposal, by=sme)
    labels = {
        k: k
        for k in (
            "title",
            "summary",
            "solution",
            "fit",
            "milestones",
            "requested_ore",
            "budget",
            "team",
            "partners",
            "attachments",
        )
    }
    diff = {
        d.label: d.lines
        for d in versions.diff_versions(proposal.versions[0].content, proposal.versions[1].content, labels)
    }
    assert set(diff) == {"solution", "requested_ore", "budget"}
    assert ("+", "And a thermal camera.") in diff["solution"]
    assert ("-", "400,000 kr") in diff["requested_ore"] and ("+", "450,000 kr") in diff["requested_ore"]
    assert ("-", "Personnel: 300,000 kr") in diff["budget"] and ("+", "Personnel: 350,000 kr") in diff[
        "budget"
    ]
    assert (" ", "Equipment: 50,000 kr") in diff["budget"]  # context around the change


def test_withdraw_and_reopen_before_the_deadline(people, challenge):
    sme = people["sme"]
    proposal = make_proposal(sme, challenge)
    services.withdraw_proposal(proposal, by=sme)
    assert proposal.status is ProposalStatus.withdrawn and proposal.withdrawn_at is not None
    with pytest.raises(ServiceError, match="withdrawn"):
        services.update_proposal(proposal, content(sme), by=sme)
    with pytest.raises(ServiceError, match="Only a submitted"):
        services.withdraw_proposal(proposal, by=sme)
    services.reopen_proposal(proposal, by=sme)
    assert proposal.status is ProposalStatus.draft
    assert services.submit_proposal(proposal, by=sme).number == 2


# --- eligibility ----------------------------------------------------------------------------------------


def _figures(org, staff=10, turnover_sek=5_000_000, balance_sek=2_000_000):
    org.staff_headcount, org.annual_turnover_ore, org.balance_sheet_total_ore = (
        staff,
        turnover_sek * 100,
        balance_sek * 100,
    )


def test_eu_sme_definition_at_the_programme_rate(people, challenge):
    org = people["sme"].organisation
    programme = challenge.programme_year.programme
    programme.eur_rate_ore = 1000  # 10,00 SEK per euro: €50 million is 500 million kronor
    _figures(org, staff=249, turnover_sek=500_000_000, balance_sek=999_000_000)
    assert rules.eligibility_problems(org, challenge) == {}  # the turnover is exactly at the ceiling
    _figures(org, staff=249, turnover_sek=500_000_001, balance_sek=430_000_000)
    assert rules.eligibility_problems(org, challenge) == {}  # the balance sheet is small enough
    _figures(org, staff=249, turnover_sek=500_000_001, balance_sek=430_000_001)
    problems = rules.eligibility_problems(org, challenge)
    assert set(problems) == {"eligibility.finances"}
    assert (
        "500,000,000 kr" in problems["eligibility.finances"]
        and "organisation page" in problems["eligibility.finances"]
    )
    programme.eur_rate_ore = 1100  # at 11 SEK the same company is an SME again
    assert rules.eligibility_problems(org, challenge) == {}
    _figures(org, staff=250)
    assert "fewer than 250 staff" in rules.eligibility_problems(org, challenge)["eligibility.staff"]


def test_a_refused_submission_names_the_rule_and_changes_nothing(people, challenge):
    sme = people["sme"]
    proposal = make_proposal(sme, challenge, submit=False)
    _figures(sme.organisation, staff=400)
    sme.organisation.org_number = "556016-0681"  # a wrong check digit
    db.session.commit()
    errors = _refused(services.submit_proposal, proposal, by=sme)
    assert set(errors) == {"eligibility.staff", "eligibility.org_number"}
    assert "556016-0681" in errors["eligibility.org_number"]
    proposal = db.session.get(Proposal, proposal.id)
    assert proposal.status is ProposalStatus.draft and proposal.version == 0
    assert db.session.scalar(sa.select(sa.func.count()).select_from(ProposalVersion)) == 0


def test_members_correct_their_figures_and_then_submit(people, challenge):
    sme = people["sme"]
    org = sme.organisation
    proposal = make_proposal(sme, challenge, submit=False)
    _figures(org, staff=300)
    with pytest.raises(InvalidInput):
        services.submit_proposal(proposal, by=sme)
    db.session.rollback()
    from challenges.accounts.services import update_organisation_figures

    update_organisation_figures(
        org,
        org_number=org.org_number,
        staff_headcount=42,
        annual_turnover_ore=9_000_000_00,
        balance_sheet_total_ore=1_000_000_00,
        by=sme,
    )
    assert services.submit_proposal(proposal, by=sme).content["organisation"]["staff"] == 42
    with pytest.raises(PermissionDenied):
        update_organisation_figures(
            org,
            org_number=org.org_number,
            staff_headcount=1,
            annual_turnover_ore=0,
            balance_sheet_total_ore=0,
            by=people["other_sme"],
        )


# --- the deadline -------------------------------------------------------------------------------------------


def test_the_deadline_freezes_everything_to_the_second(people, challenge):
    sme = people["sme"]
    proposal = make_proposal(sme, challenge, submit=False)
    db.session.commit()
    deadline = challenge.deadline
    just_before, at = deadline - timedelta(seconds=1), deadline
    services.update_proposal(proposal, content(sme, title="Last-minute title"), by=sme, now=just_before)
    version = services.submit_proposal(proposal, by=sme, now=just_before)
    assert version.number == 1
    db.session.commit()
    for call in (
        lambda: services.update_proposal(proposal, content(sme, title="Too late"), by=sme, now=at),
        lambda: services.submit_proposal(proposal, by=sme, now=at),
        lambda: services.withdraw_proposal(proposal, by=sme, now=at),
        lambda: services.add_attachment(proposal, "late.pdf", pdf(), by=sme, now=at),
    ):
        with pytest.raises(ServiceError) as caught:
            call()
        assert "deadline for this challenge passed" in caught.value.message
        db.session.rollback()
    proposal = db.session.get(Proposal, proposal.id)
    assert proposal.title == "Last-minute title" and proposal.version == 1
    assert proposal.attachments == []


def test_sealed_until_the_deadline(people, challenge):
    proposal = make_proposal(people["sme"], challenge)
    db.session.commit()
    before, after = challenge.deadline - timedelta(seconds=1), challenge.deadline
    for who in ("owner", "colleague", "other_owner", "other_sme", "evaluator", "manager"):
        assert not proposal.can_view(people[who], before), who
    assert proposal.can_view(people["sme"], before)
    seen_after = {who for who in people if proposal.can_view(people[who], after)}
    assert seen_after == {"sme", "owner", "colleague", "manager"}
    assert services.proposal_counts(challenge)[ProposalStatus.submitted] == 1


def test_a_disabled_member_of_the_applicant_sees_nothing(people, challenge):
    """A member whose account is disabled is no longer the applicant's: the proposal, even its own
    organisation's draft, is closed to them (jobs and pages ask the same rule)."""
    from challenges.accounts import services as accounts

    colleague = make_user("sven@sensors.example.com", org=people["sme"].organisation)
    proposal = make_proposal(people["sme"], challenge, submit=False)
    assert proposal.can_view(colleague) and proposal.can_change(colleague)
    accounts.disable_account(colleague, by=people["manager"])
    assert not proposal.can_view(colleague) and not proposal.can_change(colleague)
    assert proposal.can_view(people["sme"])


def test_a_version_keeps_the_instant_it_was_submitted(people, challenge):
    proposal = make_proposal(people["sme"], challenge, submit=False)
    started = utcnow()
    at = started + timedelta(days=3, hours=2, seconds=7)
    version = services.submit_proposal(proposal, by=people["sme"], now=at)
    assert version.submitted_at == at and proposal.submitted_at == at
    assert (
        db.session.scalar(sa.select(ProposalVersion.submitted_at).where(ProposalVersion.id == version.id))
        == at
    )


def test_drafts_and_withdrawn_proposals_stay_with_the_applicant(people, challenge):
    draft = make_proposal(people["sme"], challenge, submit=False)
    withdrawn = make_proposal(people["other_sme"], challenge)
    services.withdraw_proposal(withdrawn, by=people["other_sme"])
    after = challenge.deadline
    for proposal in (draft, withdrawn):
        assert not proposal.can_view(people["owner"], after)
        assert not proposal.can_view(people["manager"], after)
    assert services.submitted_proposals(challenge) == []


# --- attachments ---------------------------------------------------------------------------------------


def test_attachments_are_checked_by_content_and_counted(people, challenge, app):
    sme = people["sme"]
    proposal = make_proposal(sme, challenge, submit=False)
    html = b"<html><script>alert(1)</script></html>"
    for data, words in (
        (html, "not a PDF"),
        (b"%PDF-1.4 truncated", "not a PDF"),
        (b"", "empty"),
        (pdf(10 * 1024 * 1024 + 1), "larger than 10 MB"),
    ):
        with pytest.raises(ServiceError) as caught:
            services.add_attachment(proposal, "report.pdf", data, by=sme)
        assert words in caught.value.message and caught.value.field == "file"
    exactly_ten = services.add_attachment(
        proposal, "../../etc/Rapport åäö.pdf", pdf(10 * 1024 * 1024), by=sme
    )
    assert exactly_ten.filename == "Rapport åäö.pdf" and exactly_ten.size == 10 * 1024 * 1024
    for n in range(4):
        services.add_attachment(proposal, f"annex-{n}.pdf", pdf(), by=sme)
    with pytest.raises(ServiceError, match="at most 5 attachments"):
        services.add_attachment(proposal, "sixth.pdf", pdf(), by=sme)
    services.remove_attachment(exactly_ten, by=sme)
    services.add_attachment(proposal, "sixth.pdf", pdf(), by=sme)
    assert len(proposal.current_attachments) == 5
    from challenges.proposals import files

    with app.test_request_context():
        stored = files.path_of(exactly_ten.storage_name)
    assert stored.read_bytes()[:5] == b"%PDF-" and "static" not in str(stored)
    assert stored.name == exactly_ten.storage_name and len(stored.name) == 32
    assert stored.stat().st_mode & 0o777 == 0o600  # readable by the application only


def test_a_version_keeps_the_files_it_was_submitted_with(people, challenge):
    sme = people["sme"]
    proposal = make_proposal(sme, challenge, submit=False)
    first = services.add_attachment(proposal, "plan.pdf", pdf(), by=sme)
    services.submit_proposal(proposal, by=sme)
    services.remove_attachment(first, by=sme)
    services.add_attachment(proposal, "plan-v2.pdf", pdf(3000), by=sme)
    services.submit_proposal(proposal, by=sme)
    db.session.commit()
    v1, v2 = proposal.versions
    assert [a["filename"] for a in v1.content["attachments"]] == ["plan.pdf"]
    assert [a["filename"] for a in v2.content["attachments"]] == ["plan-v2.pdf"]
    after = challenge.deadline
    owner = people["owner"]
    assert proposal.can_view(owner, after)
    assert not services.can_download(first, owner, after)  # not in the version that counts
    assert services.can_download(proposal.attachments[1], owner, after)
    assert services.can_download(first, sme, after)


# --- events through the worker -------------------------------------------------------------------------------


def test_receipt_to_the_whole_team_with_the_version(people, challenge, drain, smtp):
    sme = people["sme"]
    colleague = make_user("nils@sensors.example.com", org=sme.organisation, name="Nils")
    proposal = make_proposal(sme, challenge, team_ids=[sme.id, colleague.id])
    services.update_proposal(
        proposal, content(sme, team_ids=[sme.id, colleague.id], title="Sharper title"), by=sme
    )
    services.submit_proposal(proposal, by=sme)
    drain()
    receipts = [m for m in smtp.messages if "Receipt" in m["Subject"]]
    assert sorted((m["To"], m["Subject"]) for m in receipts) == [
        ("nils@sensors.example.com", "Receipt: your proposal has been submitted (version 1)"),
        ("nils@sensors.example.com", "Receipt: your proposal has been submitted (version 2)"),
        ("sara@sensors.example.com", "Receipt: your proposal has been submitted (version 1)"),
        ("sara@sensors.example.com", "Receipt: your proposal has been submitted (version 2)"),
    ]
    body = (
        next(m for m in receipts if m["Subject"].endswith("(version 2)")).get_body(("plain",)).get_content()
    )
    assert "version 2" in body and "Sharper title" in body and "400,000 kr" in body


def test_withdrawal_notice(people, challenge, drain, smtp):
    sme = people["sme"]
    proposal = make_proposal(sme, challenge)
    services.withdraw_proposal(proposal, by=sme)
    drain()
    notices = [m for m in smtp.messages if m["Subject"] == "Your proposal has been withdrawn"]
    assert [m["To"] for m in notices] == ["sara@sensors.example.com"]


def test_one_digest_to_the_owner_when_the_challenge_closes(people, challenge, drain, smtp):
    make_proposal(people["sme"], challenge)
    make_proposal(people["other_sme"], challenge, submit=False, title="Unfinished draft")
    challenge.deadline = utcnow() - timedelta(seconds=1)
    db.session.commit()
    drain()
    smtp.reset()
    assert call_jobs.close_due_challenges() == 1
    drain()
    drain()  # a second run changes nothing: one digest per person
    digests = [
        m for m in smtp.messages if m["Subject"] == "Your challenge has closed: the proposals that came in"
    ]
    assert sorted(m["To"] for m in digests) == ["colleague@steel.example.com", "owner@steel.example.com"]
    body = digests[0].get_body(("plain",)).get_content()
    assert "1 proposal came in" in body and "Acoustic crack detection" in body and "Sensors AB" in body
    assert "Unfinished draft" not in body


def test_the_demo_organisations_are_smes_by_the_rule(app, ctx):
    org = make_org(OrganisationKind.sme)
    challenge = make_challenge(
        make_user(org=make_org(OrganisationKind.industrial)), ChallengeStatus.published
    )
    assert rules.eligibility_problems(org, challenge) == {}


def test_after_the_deadline_a_withdrawn_proposal_cannot_be_reopened_nor_a_file_removed(people, challenge):
    sme = people["sme"]
    withdrawn = make_proposal(sme, challenge)
    services.add_attachment(withdrawn, "plan.pdf", pdf(), by=sme)
    services.withdraw_proposal(withdrawn, by=sme)
    db.session.commit()
    attachment = withdrawn.attachments[0]
    at = challenge.deadline
    for call in (
        lambda: services.reopen_proposal(withdrawn, by=sme, now=at),
        lambda: services.remove_attachment(attachment, by=sme, now=at),
    ):
        with pytest.raises(ServiceError, match="deadline for this challenge passed"):
            call()
        db.session.rollback()
    proposal = db.session.get(Proposal, withdrawn.id)
    assert proposal.status is ProposalStatus.withdrawn and len(proposal.attachments) == 1


def test_a_proposal_can_be_changed_by_its_team_until_the_deadline_at_the_instant_asked(people, challenge):
    proposal = make_proposal(people["sme"], challenge, submit=False)
    before, at = challenge.deadline - timedelta(seconds=1), challenge.deadline
    assert proposal.can_change(people["sme"]) and proposal.can_change(people["sme"], before)
    assert not proposal.can_change(people["sme"], at)
    assert not proposal.can_change(people["other_sme"], before)
