"""Awards and payments: only a programme manager awards and pays; bad amounts change nothing."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from challenges.core.errors import PermissionDenied, ServiceError
from challenges.core.events import record
from challenges.core.models import Event, utcnow
from challenges.extensions import db
from challenges.funding import booking, checks, events, services
from challenges.funding.models import AccountKind, Award, AwardStatus, InstalmentCondition
from challenges.projects import services as projects
from challenges.projects.models import Project, ReportKind
from challenges.projects.services import ReportContent
from challenges.reviews import services as reviews
from challenges.reviews.models import Decision
from tests.reviews.test_workflow import _score

SEK = 100


@pytest.fixture
def decided(people, assigned, drain):
    """Sensors AB recommended (it asked 400 000 kr of a 500 000 kr maximum), Robots rejected, published."""
    manager = people["manager"]
    for key in ("sme", "other_sme"):
        for assignment in assigned.assessments[key].assignments:
            _score(assignment)
    services.open_year(assigned.challenge.programme_year)
    reviews.decide_proposal(
        assigned.assessments["sme"], Decision.recommend, "Best fit.", override="-", by=manager
    )
    reviews.decide_proposal(
        assigned.assessments["other_sme"], Decision.reject, "Weaker.", override="-", by=manager
    )
    reviews.publish_decisions(assigned.review, by=manager)
    db.session.commit()
    drain()
    return assigned


def _awards() -> int:
    db.session.rollback()
    return db.session.scalar(sa.select(sa.func.count()).select_from(Award))


@pytest.mark.parametrize(
    ("amount", "message"),
    [
        ("400 000,001", "Use at most two decimals"),
        ("0", "greater than zero"),
        ("-1", "greater than zero"),
        ("400 000,01", "more than the 400,000 kr requested"),
    ],
)
def test_bad_amounts_are_refused_and_change_nothing(people, decided, make_browser, amount, message):
    manager = make_browser("manager@agency.example.com")
    proposal = decided.proposals["sme"]
    year = decided.challenge.programme_year
    page = manager.submit(
        f"/proposals/{proposal.id}/award", {"programme_year": str(year.id), "amount": amount}
    )
    assert page.status_code == 200 and message in page.get_data(as_text=True)
    assert _awards() == 0


def test_only_recommended_proposals_once_and_within_the_maximum(people, decided):
    manager, year = people["manager"], decided.challenge.programme_year
    with pytest.raises(ServiceError, match="recommended"):
        services.award_funding(decided.proposals["other_sme"], year, 100_000 * SEK, by=manager)
    decided.challenge.max_funding_ore = 300_000 * SEK
    with pytest.raises(ServiceError, match="challenge's maximum"):
        services.award_funding(decided.proposals["sme"], year, 350_000 * SEK, by=manager)
    with pytest.raises(PermissionDenied):
        services.award_funding(decided.proposals["sme"], year, 100_000 * SEK, by=people["owner"])
    services.award_funding(decided.proposals["sme"], year, 300_000 * SEK, by=manager)
    with pytest.raises(ServiceError, match="already has an award"):
        services.award_funding(decided.proposals["sme"], year, 100_000 * SEK, by=manager)


def test_a_recommended_proposal_waits_for_the_decisions_to_be_published(people, assigned, make_browser):
    manager, proposal = people["manager"], assigned.proposals["sme"]
    for assignment in assigned.assessments["sme"].assignments:
        _score(assignment)
    services.open_year(assigned.challenge.programme_year)
    reviews.decide_proposal(
        assigned.assessments["sme"], Decision.recommend, "Best fit.", override="-", by=manager
    )
    db.session.commit()
    with pytest.raises(ServiceError, match="Publish the challenge's decisions"):
        services.award_funding(proposal, assigned.challenge.programme_year, 100_000 * SEK, by=manager)
    page = make_browser("manager@agency.example.com").get(f"/proposals/{proposal.id}/award")
    assert page.status_code == 404 and proposal.title not in page.get_data(as_text=True)
    assert _awards() == 0


def test_an_award_is_pending_then_booked_and_paid_by_plan(people, decided, make_browser, drain):
    manager = make_browser("manager@agency.example.com")
    proposal = decided.proposals["sme"]
    year = decided.challenge.programme_year
    response = manager.submit(
        f"/proposals/{proposal.id}/award", {"programme_year": str(year.id), "amount": "400 000"}
    )
    assert response.status_code == 303
    award = db.session.scalar(sa.select(Award))
    assert award.status is AwardStatus.pending
    assert "Pending" in manager.get(f"/awards/{award.id}").get_data(as_text=True)
    drain()
    db.session.expire_all()
    assert award.status is AwardStatus.booked
    assert [(i.condition.value, i.amount_ore) for i in award.instalments] == [
        ("start", 240_000 * SEK),
        ("final_report", 160_000 * SEK),
    ]
    first, last = award.instalments
    url = f"/awards/{award.id}/instalments"
    page_url = f"/awards/{award.id}"
    assert manager.submit(f"{url}/{last.id}/approve", {}, page_url=page_url).status_code == 303
    db.session.expire_all()
    assert last.approved_at is None  # the final report is not approved
    assert manager.submit(f"{url}/{first.id}/approve", {}, page_url=page_url).status_code == 303
    assert (
        manager.submit(f"{url}/{first.id}/approve", {}, page_url=page_url).status_code == 303
    )  # twice: refused
    drain()
    db.session.expire_all()
    assert services.paid(award) == 240_000 * SEK
    assert services.balance(year, AccountKind.paid_out) == 240_000 * SEK
    # The applicant reads its schedule; nobody else does.
    sara = make_browser("sara@sensors.example.com")
    page = sara.get(page_url).get_data(as_text=True)
    assert "Payment schedule" in page and "approved" in page and "Approve the payment" not in page
    for other in ("jonas@robots.example.com", "owner@steel.example.com", "eva@evaluators.example.com"):
        assert make_browser(other).get(page_url).status_code == 404
    assert sara.submit(f"{url}/{last.id}/approve", {}, page_url=page_url).status_code == 403
    # A payment above what remains is refused: reduce the award below what the last instalment says.
    services.reduce_award(award, 300_000 * SEK, by=people["manager"])
    db.session.commit()
    assert last.amount_ore == 60_000 * SEK
    drain()
    # the last instalment is released by the approved final report, never by hand
    refused = manager.submit(f"{url}/{last.id}/approve", {"condition_met": "y"}, page_url=page_url)
    assert "is paid when the project" in manager.get(refused.headers["Location"]).get_data(as_text=True)
    db.session.expire_all()
    assert last.approved_at is None
    final = next(r for r in db.session.scalar(sa.select(Project)).reports if r.kind is ReportKind.final)
    projects.submit_report(
        final,
        ReportContent(
            text="Done.",
            trl=6,
            pilot_with_owner=True,
            follow_on_with_owner=False,
            other_customers=0,
            private_cofunding_ore=0,
            jobs_created=1,
        ),
        by=people["sme"],
    )
    projects.approve_report(final, by=people["manager"])
    db.session.commit()
    drain()
    db.session.expire_all()
    assert services.paid(award) == 300_000 * SEK and checks.verify() == []
    assert services.balance(year, AccountKind.available) == 7_600_000 * SEK - 300_000 * SEK


def test_the_ledger_refuses_what_the_year_cannot_hold_and_tells_the_manager(people, decided, drain, smtp):
    year = decided.challenge.programme_year
    # Another award takes most of the year first (the ledger takes events in order).
    other = Award(
        proposal_id=decided.proposals["other_sme"].id, programme_year_id=year.id, amount_ore=7_400_000 * SEK
    )
    db.session.add(other)
    db.session.flush()
    record(events.FundingAwarded(award_id=other.id, programme_year_id=year.id, amount_ore=other.amount_ore))
    award = services.award_funding(decided.proposals["sme"], year, 400_000 * SEK, by=people["manager"])
    db.session.commit()
    smtp.reset()
    drain()
    db.session.expire_all()
    assert other.status is AwardStatus.booked
    assert award.status is AwardStatus.refused and award.refused_reason == "insufficient_budget"
    assert _told("AwardBooked") == [{"award_id": other.id, "amount_ore": 7_400_000 * SEK}]
    assert _told("AwardRefused") == [{"award_id": award.id, "reason": "insufficient_budget"}]
    assert sorted(m["To"] for m in smtp.messages if m["Subject"] == "An award could not be booked") == [
        "factory-manager@agency.example.com",
        "manager@agency.example.com",
    ]
    with pytest.raises(ServiceError, match="has 200,000 kr available"):  # a new try is refused at once
        services.award_funding(decided.proposals["sme"], year, 400_000 * SEK, by=people["manager"])
    assert checks.verify() == []


def test_a_closed_year_takes_no_award(people, decided, drain):
    year = decided.challenge.programme_year
    services.close_year(year, by=people["manager"])
    db.session.commit()
    drain()
    db.session.expire_all()
    assert year.closed_at is not None
    with pytest.raises(ServiceError, match="closed"):
        services.award_funding(decided.proposals["sme"], year, 100 * SEK, by=people["manager"])
    assert services.balance(year, AccountKind.returned) == 8_000_000 * SEK


def test_the_ledger_pages_are_for_programme_managers(people, decided, make_browser):
    year = decided.challenge.programme_year
    urls = [
        "/admin/ledger",
        f"/admin/ledger/{year.id}",
        f"/admin/ledger/{year.id}/transfers.csv",
        f"/admin/ledger/{year.id}?kind=opening",
        "/admin/programmes",
    ]
    manager = make_browser("manager@agency.example.com")
    for url in urls:
        assert manager.get(url).status_code == 200, url
    csv_body = manager.get(urls[2]).get_data(as_text=True)
    assert "opening" in csv_body and "7600000.00" in csv_body
    for who in ("sara@sensors.example.com", "owner@steel.example.com", "eva@evaluators.example.com"):
        b = make_browser(who)
        assert all(b.get(url).status_code == 403 for url in urls), who
    page = manager.get(f"/admin/ledger/{year.id}").get_data(as_text=True)
    assert "<svg" in page and "Available budget: 7,600,000 kr" in page


@pytest.mark.parametrize(
    "who", ["sara@sensors.example.com", "owner@steel.example.com", "eva@evaluators.example.com"]
)
def test_only_a_programme_manager_awards_and_pays(people, decided, make_browser, who, drain):
    proposal = decided.proposals["sme"]
    award = services.award_funding(
        proposal, decided.challenge.programme_year, 400_000 * SEK, by=people["manager"]
    )
    db.session.commit()
    drain()
    b = make_browser(who)
    year = decided.challenge.programme_year
    assert b.get(f"/proposals/{proposal.id}/award").status_code == 403
    posts = [
        (f"/proposals/{proposal.id}/award", {"programme_year": str(year.id), "amount": "1"}),
        (f"/awards/{award.id}/instalments/{award.instalments[0].id}/approve", {}),
        (f"/awards/{award.id}/reduce", {"amount": "1"}),
        (f"/awards/{award.id}/cancel", {}),
        (f"/admin/ledger/{year.id}/admin-cost", {"amount": "1", "memo": "x"}),
        (f"/admin/ledger/{year.id}/close", {}),
    ]
    for url, data in posts:
        assert b.submit(url, data, page_url="/account").status_code == 403, url
    db.session.expire_all()
    assert services.paid(award) == 0 and award.status is AwardStatus.booked and year.closed_at is None


def test_a_refused_payment_is_put_back_and_the_managers_are_told(people, decided, drain, smtp):
    year = decided.challenge.programme_year
    award = services.award_funding(decided.proposals["sme"], year, 400_000 * SEK, by=people["manager"])
    db.session.commit()
    drain()
    first = award.instalments[0]
    # A payment the ledger cannot cover (as if another had already taken the commitment).
    first.approved_at, first.approved_by_id = services.utcnow(), people["manager"].id
    row = record(
        events.PaymentApproved(
            award_id=award.id, instalment_id=first.id, programme_year_id=year.id, amount_ore=500_000 * SEK
        ),
        by=people["manager"],
    )
    first.event_id = row.id
    db.session.commit()
    smtp.reset()
    drain()
    db.session.expire_all()
    assert first.approved_at is None and services.paid(award) == 0  # put back: it can be approved again
    assert first.approved_by_id is None and first.event_id is None
    assert [m["Subject"] for m in smtp.messages if m["Subject"] == "The ledger refused a posting"] == [
        "The ledger refused a posting"
    ] * 2
    assert checks.verify() == []


def test_closing_a_year_stops_new_payments_at_once(people, decided, drain):
    year = decided.challenge.programme_year
    award = services.award_funding(decided.proposals["sme"], year, 400_000 * SEK, by=people["manager"])
    db.session.commit()
    drain()
    services.close_year(year, by=people["manager"])
    db.session.commit()
    with pytest.raises(ServiceError, match="closed"):  # before the worker has posted the close
        services.approve_payment(award.instalments[0], by=people["manager"])


def test_a_year_is_not_closed_while_anything_on_it_waits_for_the_ledger(people, decided, drain, smtp):
    """With the workers stopped: an award, then a close. Booked after the close, the award's money would
    already be returned, its project started and its company told; the close must wait instead."""
    year, manager = decided.challenge.programme_year, people["manager"]
    award = services.award_funding(decided.proposals["sme"], year, 400_000 * SEK, by=manager)
    db.session.commit()
    with pytest.raises(ServiceError, match="1 posting on the year waits for the ledger"):
        services.close_year(year, by=manager)
    db.session.rollback()
    drain()  # the workers come back: the award is booked
    db.session.expire_all()
    assert award.status is AwardStatus.booked and year.closing_requested_at is None
    services.close_year(year, by=manager)
    db.session.commit()
    drain()
    db.session.expire_all()
    assert year.closed_at is not None and checks.verify() == []


def test_a_programme_may_spend_everything_on_administration(people, make_browser):
    from tests.factories import make_year

    year = make_year(2040, allocation_sek=1_000)
    year.programme.admin_cap_basis_points = 10000
    db.session.flush()
    services.add_year(year.programme, 2041, 1_000 * SEK, None, by=people["manager"])
    db.session.commit()
    assert checks.verify() == []


def test_programme_set_up_refuses_bad_input_and_changes_nothing(people, make_browser):
    from tests.factories import make_year

    year = make_year(2026)
    programme = year.programme
    db.session.commit()
    manager = make_browser("manager@agency.example.com")
    url = f"/admin/programmes/{programme.id}"
    page = manager.submit(url, {"admin_cap": "101", "eur_rate": "11", "report_dates": "2016-10-15"}).get_data(
        as_text=True
    )
    assert "Enter a percentage from 0 to 100." in page
    page = manager.submit(url, {"admin_cap": "5", "eur_rate": "11", "report_dates": "15 October"}).get_data(
        as_text=True
    )
    assert "Enter dates like 2016-10-15" in page
    page = manager.submit(
        url, {"admin_cap": "5", "eur_rate": "11", "report_dates": "2016-10-15, 9000-01-01"}
    ).get_data(as_text=True)
    assert "Enter dates like 2016-10-15" in page  # a date out of any programme's span
    page = manager.submit(f"{url}/years", {"year": "2026", "allocation": "8 000 000"}, page_url=url).get_data(
        as_text=True
    )
    assert "already has the year 2026" in page
    for day, message in (("0001-01-01", "Enter a date from"), ("2030-03-31", "from 2026 to 2028")):
        page = manager.submit(
            f"{url}/years",
            {"year": "2027", "allocation": "8 000 000", "requisition_deadline": day},
            page_url=url,
        ).get_data(as_text=True)
        assert message in page, day
    db.session.expire_all()
    assert (programme.admin_cap_basis_points, programme.report_dates, len(programme.years)) == (500, [], 1)
    assert (
        manager.submit(
            url, {"admin_cap": "5,5", "eur_rate": "11", "report_dates": "2017-03-31, 2016-10-15"}
        ).status_code
        == 303
    )
    db.session.expire_all()
    assert programme.admin_cap_basis_points == 550 and programme.report_dates == ["2016-10-15", "2017-03-31"]


def _booked_award(people, decided, drain) -> Award:
    award = services.award_funding(
        decided.proposals["sme"], decided.challenge.programme_year, 400_000 * SEK, by=people["manager"]
    )
    db.session.commit()
    drain()
    db.session.expire_all()
    assert award.status is AwardStatus.booked and checks.verify() == []
    return award


@pytest.mark.parametrize(
    ("change", "found"),
    [
        ({"amount_ore": 800_000 * SEK}, "amount 80000000 öre, the ledger committed 40000000 öre"),
        ({"status": AwardStatus.refused}, "refused, but 40000000 öre was committed"),
        ({"status": AwardStatus.pending}, "posted, but still pending"),
    ],
)
def test_verify_finds_an_award_that_disagrees_with_its_commitment(people, decided, drain, change, found):
    award = _booked_award(people, decided, drain)
    db.session.execute(sa.update(Award).where(Award.id == award.id).values(**change))
    db.session.commit()
    assert any(found in problem for problem in checks.verify()), checks.verify()


def test_verify_names_each_disagreement_of_a_reduced_and_partly_paid_award(people, decided, drain):
    """400 000 kr awarded, 240 000 paid, reduced to 300 000: each tampering is named with its figures."""
    award = _booked_award(people, decided, drain)
    first = award.instalments[0]
    services.approve_payment(first, by=people["manager"])
    db.session.commit()
    assert checks.verify() == []  # approved, not yet booked: no payment is expected yet
    drain()
    services.reduce_award(award, 300_000 * SEK, by=people["manager"])
    db.session.commit()
    drain()
    assert checks.verify() == []
    name = f"award {award.id} (booked)"

    def tampered(**values) -> list[str]:
        db.session.execute(sa.update(Award).where(Award.id == award.id).values(**values))
        db.session.commit()
        problems = checks.verify()
        db.session.execute(sa.update(Award).where(Award.id == award.id).values(amount_ore=300_000 * SEK))
        db.session.commit()
        return problems

    assert tampered(amount_ore=350_000 * SEK) == [
        f"{name}: amount 35000000 öre, the ledger committed 30000000 öre",
        f"{name}: 6000000 öre committed, 11000000 öre expected",
    ]
    assert tampered(amount_ore=200_000 * SEK) == [
        f"{name}: amount 20000000 öre, the ledger committed 30000000 öre",
        f"{name}: 6000000 öre committed, -4000000 öre expected",
        f"{name}: paid 24000000 öre of 20000000 öre",
    ]
    first.amount_ore = 200_000 * SEK
    db.session.commit()
    assert checks.verify() == [f"{name}: paid 24000000 öre, its booked instalments 20000000 öre"]


def test_verify_holds_each_year_to_the_cap_it_was_opened_with(people, decided, drain):
    year = decided.challenge.programme_year
    services.book_admin_cost(year, 400_000 * SEK, "Evaluators' fees", by=people["manager"])  # the whole 5 %
    db.session.commit()
    drain()
    year.programme.admin_cap_basis_points = 100  # today the cap is 1 %: the past year was opened with 5 %
    db.session.commit()
    assert checks.verify() == []


def _event_types() -> list[str]:
    from challenges.core.models import Event

    db.session.expire_all()
    return sorted(db.session.scalars(sa.select(Event.type)))


def test_the_last_instalment_approved_twice_is_refused_as_approved_not_as_too_much(
    people, decided, drain, monkeypatch
):
    """While the first instalment is unpaid, what remains would cover the last one again: it is the
    instalment's own approval that refuses the second time."""
    award = _booked_award(people, decided, drain)
    first, last = award.instalments
    monkeypatch.setattr(services, "final_report_approved", lambda award: True)  # as the projects answer
    services.approve_payment(last, by=people["manager"])
    db.session.commit()
    assert award.amount_ore - services.paid(award) >= last.amount_ore  # the remaining check would let it pass
    with pytest.raises(ServiceError, match="already been approved"):
        services.approve_payment(last, by=people["manager"])


def test_cancelling_after_a_payment_returns_only_the_unpaid_part(people, decided, drain):
    award = _booked_award(people, decided, drain)
    year = award.programme_year
    services.approve_payment(award.instalments[0], by=people["manager"])  # 60 %
    db.session.commit()
    drain()
    available = services.balance(year, AccountKind.available)
    services.cancel_award(award, by=people["manager"])
    db.session.commit()
    drain()
    db.session.expire_all()
    assert services.balance(year, AccountKind.available) == available + 160_000 * SEK
    assert services.balance(year, AccountKind.paid_out) == 240_000 * SEK
    assert award.status is AwardStatus.cancelled and checks.verify() == []
    # each step of the money names the manager who took it
    steps = db.session.scalars(
        sa.select(Event)
        .where(Event.type.in_(["FundingAwarded", "PaymentApproved", "AwardCancelled"]))
        .order_by(Event.occurred_at)
    )
    assert [(e.type, e.payload["award_id"], e.actor_id) for e in steps] == [
        (kind, award.id, people["manager"].id)
        for kind in ("FundingAwarded", "PaymentApproved", "AwardCancelled")
    ]


def test_a_redelivered_ledger_event_tells_nobody_twice_and_gives_nothing_back_twice(people, decided, drain):
    """Each ledger event is booked once: delivered again, it records no second PaymentMade, change or
    refusal, and a refused reduction adds nothing back to the award twice."""
    from challenges.core.models import Event

    award = _booked_award(people, decided, drain)
    services.approve_payment(award.instalments[0], by=people["manager"])
    services.reduce_award(award, 300_000 * SEK, by=people["manager"])
    db.session.commit()
    drain()
    before = (_event_types(), services.balance(award.programme_year, AccountKind.available), award.amount_ore)
    for row in db.session.scalars(
        sa.select(Event).where(Event.type.in_(["PaymentApproved", "AwardReduced"]))
    ):
        booking.book(row)
    db.session.commit()
    assert (
        _event_types(),
        services.balance(award.programme_year, AccountKind.available),
        award.amount_ore,
    ) == before

    # A reduction the ledger refuses (the year closed meanwhile) is put back once, however often delivered.
    record(
        events.AwardReduced(
            award_id=award.id, programme_year_id=award.programme_year_id, amount_ore=10_000 * SEK
        )
    )
    db.session.commit()
    ledger_year = award.programme_year
    ledger_year.closed_at = utcnow()  # the ledger's own mark of a closed year
    db.session.commit()
    [refused] = db.session.scalars(
        sa.select(Event).where(Event.type == "AwardReduced").order_by(Event.occurred_at.desc(), Event.id)
    ).all()[:1]
    amount = award.amount_ore
    for _ in range(2):
        booking.book(refused)
        db.session.commit()
    db.session.expire_all()
    assert award.amount_ore == amount + 10_000 * SEK
    assert _event_types().count("PostingRefused") == 1


def test_a_reduction_lies_strictly_between_what_is_paid_and_the_award(people, decided, drain):
    award = _booked_award(people, decided, drain)  # 400 000 kr, 60 % paid at the start
    services.approve_payment(award.instalments[0], by=people["manager"])
    db.session.commit()
    refused = "Enter an amount below the award (400,000 kr) and above what is paid (240,000 kr)."
    for amount in (240_000 * SEK, 400_000 * SEK):
        with pytest.raises(ServiceError) as error:
            services.reduce_award(award, amount, by=people["manager"])
        assert (error.value.message, error.value.field) == (refused, "amount")
        db.session.rollback()
    services.reduce_award(award, 240_000 * SEK + 1, by=people["manager"])  # one öre above what is paid
    assert award.amount_ore == 240_000 * SEK + 1
    assert [i.amount_ore for i in award.instalments] == [240_000 * SEK, 1]  # the last keeps its öre
    [reduced] = db.session.scalars(sa.select(Event).where(Event.type == "AwardReduced"))
    assert (reduced.payload["amount_ore"], reduced.actor_id) == (160_000 * SEK - 1, people["manager"].id)


def test_an_instalment_is_approved_once_and_the_last_only_with_the_final_report(people, decided, drain):
    award = _booked_award(people, decided, drain)
    first, last = award.instalments
    services.approve_payment(first, by=people["manager"])
    db.session.commit()
    assert not services.final_report_approved(award)  # the project has no approved final report
    for instalment, message in (
        (first, "This instalment has already been approved."),
        (last, "This instalment is paid when the project's final report is approved."),
    ):
        with pytest.raises(ServiceError) as error:
            services.approve_payment(instalment, by=people["manager"])
        assert error.value.message == message
        db.session.rollback()


def test_a_payment_is_refused_on_an_award_not_booked_or_beyond_what_remains(
    people, decided, drain, monkeypatch
):
    pending = services.award_funding(
        decided.proposals["sme"], decided.challenge.programme_year, 400_000 * SEK, by=people["manager"]
    )
    with pytest.raises(ServiceError) as error:
        services.approve_payment(pending.instalments[0], by=people["manager"])
    assert error.value.message == "The award is not booked in the ledger (it is pending)."
    db.session.commit()
    drain()
    award = db.session.get(Award, pending.id)
    first, last = award.instalments
    services.approve_payment(first, by=people["manager"])
    assert (first.approved_by_id, first.approved_at is not None) == (people["manager"].id, True)
    [approved] = db.session.scalars(sa.select(Event).where(Event.type == "PaymentApproved"))
    assert approved.payload == {
        "award_id": award.id,
        "instalment_id": first.id,
        "programme_year_id": award.programme_year_id,
        "amount_ore": 240_000 * SEK,
    }
    last.amount_ore += 1  # a plan that no longer adds up (nothing the services do makes one)
    monkeypatch.setattr(services, "final_report_approved", lambda award: True)  # as the projects answer
    with pytest.raises(ServiceError) as error:
        services.approve_payment(last, by=people["manager"])
    assert error.value.message == (
        "The payment of 160,000.01 kr is more than the 160,000 kr that remains of the award."
    )


def test_a_reduction_the_unpaid_instalments_cannot_absorb_is_refused(people, decided, drain):
    """Each unpaid instalment keeps at least an öre: with two unpaid, an award cannot go down to one öre."""
    award = _booked_award(people, decided, drain)
    with pytest.raises(ServiceError) as error:
        services.reduce_award(award, 1, by=people["manager"])
    assert (error.value.message, error.value.field) == (
        "The unpaid instalments cannot absorb this reduction.",
        "amount",
    )
    db.session.rollback()
    db.session.expire_all()
    assert award.amount_ore == 400_000 * SEK and [i.amount_ore for i in award.instalments] == [
        240_000 * SEK,
        160_000 * SEK,
    ]
    services.reduce_award(award, 2, by=people["manager"])  # an öre each
    assert [i.amount_ore for i in award.instalments] == [1, 1]


def test_an_awards_amount_is_refused_by_name_and_field_at_the_service(people, decided):
    """From one öre up to the smallest of what was asked for, the challenge's maximum and what the year has."""
    manager, year, proposal = people["manager"], decided.challenge.programme_year, decided.proposals["sme"]
    decided.challenge.max_funding_ore = 300_000 * SEK
    db.session.commit()
    available = services.balance(year, AccountKind.available)
    cases = [
        (0, "Enter an amount greater than zero."),
        (-1, "Enter an amount greater than zero."),
        (300_000 * SEK + 1, "The award cannot be more than the challenge's maximum, 300,000 kr."),
    ]
    for amount, message in cases:
        with pytest.raises(ServiceError) as error:
            services.award_funding(proposal, year, amount, by=manager)
        assert (error.value.message, error.value.field) == (message, "amount")
        db.session.rollback()
    decided.challenge.max_funding_ore = 500_000 * SEK
    db.session.commit()
    with pytest.raises(ServiceError) as error:
        services.award_funding(proposal, year, 400_000 * SEK + 1, by=manager)
    assert (error.value.message, error.value.field) == (
        "The award cannot be more than the 400,000 kr requested.",
        "amount",
    )
    db.session.rollback()
    version = proposal.versions[-1]
    version.content = {**version.content, "requested_ore": None}  # asked for nothing
    db.session.commit()
    with pytest.raises(ServiceError) as error:
        services.award_funding(proposal, year, 1, by=manager)
    assert error.value.message == "The award cannot be more than the 0 kr requested."
    db.session.rollback()
    assert _awards() == 0 and services.balance(year, AccountKind.available) == available
    version.content = {**version.content, "requested_ore": 400_000 * SEK}
    award = services.award_funding(proposal, year, 1, by=manager)  # one öre will do
    assert (award.amount_ore, award.status, award.awarded_by_id) == (1, AwardStatus.pending, manager.id)
    # 60 % of one öre is nothing: the plan is the one instalment that holds the öre
    assert [(i.condition, i.amount_ore) for i in award.instalments] == [(InstalmentCondition.final_report, 1)]
    [awarded] = db.session.scalars(sa.select(Event).where(Event.type == "FundingAwarded"))
    assert (award.event_id, awarded.actor_id) == (awarded.id, manager.id)


def test_an_award_may_take_all_that_its_year_has_available_and_not_an_ore_more(people, decided):
    from tests.factories import make_year

    year = make_year(2045, allocation_sek=400_000)  # 5 % for administration: 380 000 kr available
    services.open_year(year)
    db.session.commit()
    assert services.balance(year, AccountKind.available) == 380_000 * SEK
    with pytest.raises(ServiceError) as error:
        services.award_funding(decided.proposals["sme"], year, 380_000 * SEK + 1, by=people["manager"])
    assert (error.value.message, error.value.field) == (
        "The year 2045 has 380,000 kr available; this award needs 380,000.01 kr.",
        "amount",
    )
    db.session.rollback()
    award = services.award_funding(decided.proposals["sme"], year, 380_000 * SEK, by=people["manager"])
    assert award.amount_ore == 380_000 * SEK


def _told(event_type: str) -> list[dict]:
    return [
        e.payload
        for e in db.session.scalars(
            sa.select(Event).where(Event.type == event_type).order_by(Event.occurred_at, Event.id)
        )
    ]


def test_once_booked_the_applicant_hears_of_each_payment_reduction_and_cancellation_as_what_it_was(
    people, decided, drain
):
    """What the ledger booked is what the company is told: the payment with its instalment and amount,
    a reduction as a reduction with what it returned, a cancellation as a cancellation."""
    award = _booked_award(people, decided, drain)
    first = award.instalments[0]
    services.approve_payment(first, by=people["manager"])
    db.session.commit()
    assert _told("PaymentMade") == []  # approved, not yet booked: nothing said
    drain()
    assert _told("PaymentMade") == [
        {"award_id": award.id, "instalment_id": first.id, "amount_ore": first.amount_ore}
    ]
    services.reduce_award(award, 300_000 * SEK, by=people["manager"])
    db.session.commit()
    drain()
    services.cancel_award(db.session.get(Award, award.id), by=people["manager"])
    db.session.commit()
    drain()
    changes = {c["kind"]: c for c in _told("AwardChangeBooked")}
    assert sorted(changes) == ["cancelled", "reduced"]
    assert {c["award_id"] for c in changes.values()} == {award.id}
    assert changes["reduced"]["amount_ore"] == 100_000 * SEK  # what the reduction returned


def test_each_refusal_to_award_says_why(people, decided, drain):
    proposal = decided.proposals["sme"]
    with pytest.raises(PermissionDenied) as denied:
        services.check_awardable(proposal, by=people["sme"])  # not a programme manager
    assert denied.value.message
    _booked_award(people, decided, drain)
    with pytest.raises(ServiceError) as refused:
        services.check_awardable(proposal, by=people["manager"])
    assert refused.value.message == "This proposal already has an award."
