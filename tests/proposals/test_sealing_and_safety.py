"""What the review found: mail about sealed proposals, who gets receipts, races, odd input."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from challenges.accounts.models import User
from challenges.core.errors import ServiceError
from challenges.core.models import utcnow
from challenges.extensions import db
from challenges.notifications.models import MailMessage
from challenges.proposals import files, services, versions
from challenges.proposals.models import Proposal, ProposalStatus
from tests.factories import make_challenge, make_user
from tests.proposals.conftest import content, make_proposal, pdf


def test_mail_about_a_sealed_proposal_is_sealed_in_the_outbox(people, challenge, make_browser, drain):
    make_proposal(people["sme"], challenge, title="Secret sealed title")
    drain()
    [receipt] = db.session.scalars(
        sa.select(MailMessage).where(MailMessage.notice == "proposal_receipt")
    ).all()
    manager = make_browser("manager@agency.example.com")
    page = manager.get("/admin/outbox").get_data(as_text=True)
    assert "Sealed: about a proposal" in page
    assert "sara@sensors.example.com" not in page and "Receipt" not in page
    page = manager.get("/admin/outbox?q=sara%40sensors").get_data(as_text=True)
    assert "No messages." in page  # a search must not tell who applied
    page = manager.get("/admin/outbox?event=ProposalSubmitted").get_data(as_text=True)
    assert "No messages." in page  # nor may a filter by event count the receipts
    assert manager.get(f"/admin/outbox/{receipt.id}").status_code == 403
    assert manager.get(f"/admin/outbox/{receipt.id}/body").status_code == 403

    sara = make_browser("sara@sensors.example.com")
    page = sara.get(f"/messages/{receipt.id}").get_data(as_text=True)
    assert "Secret sealed title" in page and "version 1" in page
    assert f'href="/messages/{receipt.id}"' in sara.get("/messages").get_data(as_text=True)
    jonas = make_browser("jonas@robots.example.com")
    assert jonas.get(f"/messages/{receipt.id}").status_code == 404
    assert f'href="/messages/{receipt.id}"' not in jonas.get("/messages").get_data(as_text=True)

    challenge.deadline = utcnow() - timedelta(seconds=1)
    db.session.commit()
    assert "Secret sealed title" in manager.get(f"/admin/outbox/{receipt.id}").get_data(as_text=True)
    assert "sara@sensors.example.com" in manager.get("/admin/outbox?q=sara").get_data(as_text=True)
    assert "sara@sensors.example.com" in manager.get("/admin/outbox?event=ProposalSubmitted").get_data(
        as_text=True
    )


def test_receipts_go_to_the_team_of_the_version_still_in_the_organisation(people, challenge, drain, smtp):
    drain()
    smtp.reset()  # the challenge's own publication mail
    sme = people["sme"]
    nils = make_user("nils@sensors.example.com", org=sme.organisation, name="Nils")
    gone = make_user("gone@sensors.example.com", org=sme.organisation, name="Gone")
    proposal = make_proposal(sme, challenge, team_ids=[sme.id, gone.id])
    services.update_proposal(proposal, content(sme, team_ids=[nils.id]), by=sme)  # saved, not submitted
    gone.active = False
    drain()
    assert [m["To"] for m in smtp.messages] == ["sara@sensors.example.com"]
    smtp.reset()
    services.withdraw_proposal(proposal, by=sme)
    drain()
    [notice] = smtp.messages
    assert notice["To"] == "sara@sensors.example.com"
    assert "Acoustic crack detection" in notice.get_body(("plain",)).get_content()


def test_a_save_from_a_stale_page_is_refused(people, challenge):
    sme = people["sme"]
    proposal = make_proposal(sme, challenge, submit=False)
    opened = proposal.revision
    services.update_proposal(proposal, content(sme, title="A colleague's title"), by=sme, revision=opened)
    db.session.commit()
    with pytest.raises(ServiceError, match="saved this proposal after you opened it"):
        services.update_proposal(proposal, content(sme, title="Mine"), by=sme, revision=opened)
    db.session.rollback()
    assert db.session.get(Proposal, proposal.id).title == "A colleague's title"


def test_two_colleagues_starting_at_once_get_a_message_not_an_error(people, challenge, monkeypatch):
    sme = people["sme"]
    make_proposal(sme, challenge, submit=False)
    db.session.commit()
    colleague = make_user("nils@sensors.example.com", org=sme.organisation)
    monkeypatch.setattr(services, "proposal_of", lambda org, ch: None)  # both looked before either saved
    with pytest.raises(ServiceError, match="already has a proposal"):
        services.start_proposal(challenge, content(colleague, team_ids=[colleague.id]), by=colleague)
    db.session.commit()  # the savepoint was rolled back; the session is still usable
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Proposal)) == 1


def test_a_withdrawn_proposal_keeps_its_attachments(people, challenge):
    sme = people["sme"]
    proposal = make_proposal(sme, challenge, submit=False)
    attachment = services.add_attachment(proposal, "plan.pdf", pdf(), by=sme)
    services.submit_proposal(proposal, by=sme)
    services.withdraw_proposal(proposal, by=sme)
    with pytest.raises(ServiceError, match="withdrawn"):
        services.remove_attachment(attachment, by=sme)


def test_file_names_lose_invisible_and_reversing_characters():
    assert files.display_name("\u202egnp.exe") == "gnp.exe.pdf"
    assert files.display_name("a\u200bb\x07.pdf") == "ab.pdf"
    assert files.display_name("../../" + "x" * 300 + ".pdf").endswith(".pdf")
    assert len(files.display_name("x" * 300)) <= 120


def test_a_failed_row_leaves_no_file(people, challenge, app, monkeypatch):
    sme = people["sme"]
    proposal = make_proposal(sme, challenge, submit=False)
    before = set(files.folder().iterdir())

    def broken(*args, **kwargs):
        raise RuntimeError("the database went away")

    monkeypatch.setattr(services, "record", broken)
    with pytest.raises(RuntimeError):
        services.add_attachment(proposal, "plan.pdf", pdf(), by=sme)
    db.session.rollback()  # as the request (or the job) that failed does
    assert set(files.folder().iterdir()) == before


def test_a_file_goes_with_a_transaction_that_does_not_commit_and_stays_with_one_that_does(
    people, challenge, app
):
    sme = people["sme"]
    proposal = make_proposal(sme, challenge, submit=False)
    db.session.commit()
    before = set(files.folder().iterdir())
    services.add_attachment(proposal, "plan.pdf", pdf(), by=sme)
    assert len(set(files.folder().iterdir()) - before) == 1  # written before its row
    ids = proposal.id, sme.id
    db.session.rollback()  # something later in the same request was refused
    assert set(files.folder().iterdir()) == before
    db.session.remove()  # the next request
    proposal, sme = db.session.get(Proposal, ids[0]), db.session.get(User, ids[1])
    kept = services.add_attachment(proposal, "plan.pdf", pdf(), by=sme)
    db.session.commit()
    db.session.rollback()  # nothing left to undo
    assert files.path_of(kept.storage_name).exists()


def test_a_missing_file_is_a_404_not_a_crash(people, challenge, make_browser):
    sme = people["sme"]
    proposal = make_proposal(sme, challenge, submit=False)
    attachment = services.add_attachment(proposal, "plan.pdf", pdf(), by=sme)
    db.session.commit()
    files.path_of(attachment.storage_name).unlink()
    sara = make_browser("sara@sensors.example.com")
    assert sara.get(f"/proposals/{proposal.id}/attachments/{attachment.id}").status_code == 404


def test_others_read_only_the_version_that_counts(people, challenge, make_browser):
    sme = people["sme"]
    proposal = make_proposal(sme, challenge)
    services.update_proposal(proposal, content(sme, title="Second title"), by=sme)
    services.submit_proposal(proposal, by=sme)
    challenge.deadline = utcnow() - timedelta(seconds=1)
    db.session.commit()
    owner = make_browser("owner@steel.example.com")
    page = owner.get(f"/proposals/{proposal.id}").get_data(as_text=True)
    assert "Second title" in page and "Version 2, submitted" in page and "/versions/1" not in page
    assert owner.get(f"/proposals/{proposal.id}/versions/1").status_code == 404
    assert owner.get(f"/proposals/{proposal.id}/changes").status_code == 404
    assert proposal.versions[-1].content["organisation"]["eur_rate_ore"] == 1100  # the rate the test used


@pytest.mark.parametrize(
    "url",
    [
        "/proposals/9999999999999999999999",
        "/challenges/9999999999999999999999",
        "/challenges/9999999999999999999999/proposals/new",
    ],
)
def test_huge_ids_are_not_found(people, make_browser, url):
    assert make_browser("sara@sensors.example.com").get(url).status_code == 404


def test_huge_amounts_get_a_message(people, challenge, make_browser):
    sara = make_browser("sara@sensors.example.com")
    page = sara.submit(
        "/organisation",
        {
            "org_number": people["sme"].organisation.org_number,
            "staff_headcount": "3",
            "annual_turnover": "9" * 25,
            "balance_sheet_total": "1",
        },
    ).get_data(as_text=True)
    assert "This amount is too large" in page
    page = sara.submit(
        f"/challenges/{challenge.id}/proposals/new",
        {"title": "Big", "requested": "9" * 25, "team": str(people["sme"].id)},
    ).get_data(as_text=True)
    assert "This amount is too large" in page


def test_the_list_flags_changes_that_are_not_submitted(people, challenge, make_browser):
    sme = people["sme"]
    proposal = make_proposal(sme, challenge)
    db.session.commit()
    sara = make_browser("sara@sensors.example.com")
    assert "changes not submitted" not in sara.get("/proposals").get_data(as_text=True)
    services.update_proposal(proposal, content(sme, title="Edited"), by=sme)
    db.session.commit()
    assert "changes not submitted" in sara.get("/proposals").get_data(as_text=True)
    assert proposal.status is ProposalStatus.submitted


def test_the_list_reads_changes_as_the_proposal_page_does(people, make_browser):
    """The list asks about all its proposals in one statement; it must agree with the one-by-one check,
    whatever changed: a field, the team, a file; not the order in which the team was read (å after z)."""
    sme = people["sme"]
    org = sme.organisation
    ake, zoe = (
        make_user("ake@sensors.example.com", org=org, name="Åke Ödman"),
        make_user("zoe@sensors.example.com", org=org, name="Zoe Zetterberg"),
    )
    team = [sme.id, ake.id, zoe.id]
    calls = [make_challenge(people["owner"]) for _ in range(7)]
    unchanged, edited, reverted, new_member, new_file, file_removed, draft = [
        make_proposal(sme, c, team_ids=team) for c in calls[:6]
    ] + [make_proposal(sme, calls[6], submit=False)]
    for proposal in (new_file, file_removed):
        services.add_attachment(proposal, "plan.pdf", pdf(), by=sme)
    services.submit_proposal(file_removed, by=sme)
    services.update_proposal(edited, content(sme, title="Edited", team_ids=team), by=sme)
    services.update_proposal(reverted, content(sme, title="Edited", team_ids=team), by=sme)
    services.update_proposal(reverted, content(sme, team_ids=team), by=sme)
    services.update_proposal(new_member, content(sme, team_ids=[sme.id, zoe.id]), by=sme)
    services.remove_attachment(file_removed.current_attachments[0], by=sme)
    db.session.commit()
    everything = [unchanged, edited, reverted, new_member, new_file, file_removed, draft]
    changed = {edited.id, new_member.id, new_file.id, file_removed.id}
    assert versions.unsubmitted_changes(everything) == changed
    assert {
        p.id
        for p in everything
        if p.status is ProposalStatus.submitted and versions.has_unsubmitted_changes(p)
    } == changed
    page = make_browser("sara@sensors.example.com").get("/proposals").get_data(as_text=True)
    assert page.count("changes not submitted") == 4


def test_a_deactivated_member_of_the_applicant_is_not_on_its_side(people, challenge):
    """An account that was turned off sees and changes nothing of its company's proposal."""
    sme = people["sme"]
    gone = make_user("gone@sensors.example.com", org=sme.organisation, name="Gone")
    proposal = make_proposal(sme, challenge, submit=False)
    assert proposal.is_team_side(gone) and proposal.can_view(gone)
    gone.active = False
    assert not proposal.is_team_side(gone)
    assert not proposal.can_view(gone) and not proposal.can_change(gone)
