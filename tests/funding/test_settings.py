"""The programme's settings and the manager's bookings, at the services every door uses: who may, the
bounds, the exact message and field of each refusal, and what is recorded when it is done."""

from __future__ import annotations

from datetime import date

import pytest
import sqlalchemy as sa

from challenges.core.errors import InvalidInput, PermissionDenied, ServiceError
from challenges.core.inline import handle_pending
from challenges.core.models import Event
from challenges.extensions import db
from challenges.funding import services
from challenges.funding.models import AccountKind
from challenges.funding.services import MAX_EUR_RATE_ORE
from tests.factories import make_year

SEK = 100


def _events(type_name: str) -> list[Event]:
    return list(
        db.session.scalars(sa.select(Event).where(Event.type == type_name).order_by(Event.occurred_at))
    )


@pytest.fixture
def programme(people):
    year = make_year(2026, allocation_sek=1_000_000)
    services.open_year(year)
    year.programme.eur_rate_ore = 11_00
    handle_pending()  # the ledger takes the opening: nothing waits for it
    return year.programme


def test_only_a_manager_sets_the_exchange_rate_within_its_bounds(people, programme):
    with pytest.raises(PermissionDenied) as refused:
        services.set_exchange_rate(programme, 12_00, by=people["owner"])
    assert refused.value.message == "Only a programme manager can change the programme's settings."
    for rate in (0, -1, MAX_EUR_RATE_ORE + 1):
        with pytest.raises(ServiceError) as refused:
            services.set_exchange_rate(programme, rate, by=people["manager"])
        assert (refused.value.message, refused.value.field) == (
            "Enter the price of one euro in kronor, for example 11,25.",
            "eur_rate",
        )
    assert programme.eur_rate_ore == 11_00 and _events("ExchangeRateSet") == []
    for rate in (1, MAX_EUR_RATE_ORE):
        services.set_exchange_rate(programme, rate, by=people["manager"])
        assert programme.eur_rate_ore == rate
    recorded = _events("ExchangeRateSet")
    assert [(e.payload, e.actor_id) for e in recorded] == [
        ({"programme_id": programme.id, "eur_rate_ore": rate}, people["manager"].id)
        for rate in (1, MAX_EUR_RATE_ORE)
    ]


def _update(programme, by, *, cap=500, rate=11_00, deadline=None, dates=()):
    services.update_programme(
        programme,
        admin_cap_basis_points=cap,
        eur_rate_ore=rate,
        return_deadline=deadline,
        report_dates=list(dates),
        by=by,
    )


def test_the_programme_settings_name_every_field_refused_and_change_nothing(people, programme):
    with pytest.raises(PermissionDenied) as refused:
        _update(programme, people["sme"])
    assert refused.value.message == "Only a programme manager can do this."
    with pytest.raises(InvalidInput) as refused:
        _update(programme, people["manager"], cap=10001, rate=0)
    assert refused.value.errors == {
        "admin_cap": "Enter a percentage from 0 to 100.",
        "eur_rate": "Enter the price of one euro in kronor, for example 11,25.",
    }
    for cap, rate in ((-1, 11_00), (500, MAX_EUR_RATE_ORE + 1)):
        with pytest.raises(InvalidInput):
            _update(programme, people["manager"], cap=cap, rate=rate)
    db.session.refresh(programme)
    assert (programme.admin_cap_basis_points, programme.eur_rate_ore, programme.report_dates) == (
        500,
        11_00,
        [],
    )


def test_the_programme_settings_keep_their_bounds_and_tell_of_a_new_rate_only(people, programme):
    deadline = date(2027, 6, 30)
    _update(
        programme, people["manager"], cap=0, dates=(date(2027, 3, 31), date(2026, 10, 15)), deadline=deadline
    )
    assert (programme.admin_cap_basis_points, programme.report_dates, programme.return_deadline) == (
        0,
        ["2026-10-15", "2027-03-31"],
        deadline,
    )
    assert _events("ExchangeRateSet") == []  # the same rate as before
    _update(programme, people["manager"], cap=10000, rate=12_50)
    assert (programme.admin_cap_basis_points, programme.eur_rate_ore) == (10000, 12_50)
    assert [e.payload["eur_rate_ore"] for e in _events("ExchangeRateSet")] == [12_50]


def test_a_year_is_added_once_with_an_allocation_and_opened(people, programme):
    with pytest.raises(PermissionDenied):
        services.add_year(programme, 2027, 1_000 * SEK, None, by=people["owner"])
    with pytest.raises(ServiceError) as refused:
        services.add_year(programme, 2026, 1_000 * SEK, None, by=people["manager"])
    assert (refused.value.message, refused.value.field) == (
        "The programme already has the year 2026.",
        "year",
    )
    for allocation in (0, -1):
        with pytest.raises(ServiceError) as refused:
            services.add_year(programme, 2027, allocation, None, by=people["manager"])
        assert (refused.value.message, refused.value.field) == (
            "Enter an amount greater than zero.",
            "allocation",
        )
    assert [y.year for y in programme.years] == [2026]
    year = services.add_year(programme, 2027, 1, date(2028, 2, 28), by=people["manager"])  # one öre will do
    assert (year.year, year.allocation_ore, year.requisition_deadline) == (2027, 1, date(2028, 2, 28))
    assert (
        services.balance(year, AccountKind.available) + services.balance(year, AccountKind.admin_envelope)
        == 1
    )
    assert [e.actor_id for e in _events("YearOpened") if e.payload["programme_year_id"] == year.id] == [
        people["manager"].id
    ]


def test_an_administration_cost_names_each_field_refused(people, programme):
    year = programme.years[0]
    assert services.balance(year, AccountKind.admin_spent) == 0  # no account yet
    assert services.balance(year, AccountKind.paid_out) == 0
    envelope = services.balance(year, AccountKind.admin_envelope)
    with pytest.raises(PermissionDenied):
        services.book_admin_cost(year, 1 * SEK, "Fees", by=people["evaluator"])
    with pytest.raises(InvalidInput) as refused:
        services.book_admin_cost(year, 0, "  ", by=people["manager"])
    assert refused.value.errors == {
        "amount": "Enter an amount greater than zero.",
        "memo": "Say what the cost is for.",
    }
    with pytest.raises(InvalidInput) as refused:
        services.book_admin_cost(year, envelope + 1, "Fees", by=people["manager"])
    assert refused.value.errors == {"amount": f"The administration envelope has {envelope // SEK:,} kr left."}
    assert _events("AdminCostBooked") == []
    services.book_admin_cost(year, 1, "  Evaluators' fees ", by=people["manager"])
    [booked] = _events("AdminCostBooked")
    assert (booked.payload, booked.actor_id) == (
        {"programme_year_id": year.id, "amount_ore": 1, "memo": "Evaluators' fees"},
        people["manager"].id,
    )


def test_a_year_waiting_for_the_ledger_is_not_closed_and_the_message_counts_what_waits(people, programme):
    year = programme.years[0]
    with pytest.raises(PermissionDenied):
        services.close_year(year, by=people["owner"])
    services.book_admin_cost(year, 1 * SEK, "Fees", by=people["manager"])
    with pytest.raises(ServiceError) as refused:
        services.close_year(year, by=people["manager"])
    assert refused.value.message == (
        "1 posting on the year waits for the ledger (an award, a payment, a change or a cost). "
        "Close the year once it is booked or refused."
    )
    services.book_admin_cost(year, 1 * SEK, "More fees", by=people["manager"])
    with pytest.raises(ServiceError) as refused:
        services.close_year(year, by=people["manager"])
    assert refused.value.message.startswith("2 postings on the year wait for the ledger")
    assert year.closing_requested_at is None and _events("YearClosed") == []


def test_a_year_is_closed_by_a_manager_once_the_ledger_has_taken_everything(people, programme):
    year = programme.years[0]
    services.book_admin_cost(year, 1 * SEK, "Fees", by=people["manager"])
    handle_pending()
    services.close_year(year, by=people["manager"])
    assert year.closing_requested_at is not None
    [closed] = _events("YearClosed")
    assert (closed.payload, closed.actor_id) == ({"programme_year_id": year.id}, people["manager"].id)
    with pytest.raises(
        ServiceError
    ) as refused:  # closing: it takes nothing more, before the ledger closes it
        services.book_admin_cost(year, 1, "Late fees", by=people["manager"])
    assert refused.value.message == "The year 2026 is closed: it takes no more postings."


def test_what_waits_for_the_ledger_is_counted_per_year_and_only_for_the_ledger(
    app, people, programme, monkeypatch
):
    """A year counts its own ledger events not yet posted: not another year's, and not an event's other
    handlers (a ledger event that also woke a workflow handler waits for the ledger only until posted)."""
    from challenges.core.bus import Handler
    from challenges.core.events import run_batches
    from challenges.funding import events as funding_events

    bus = app.extensions["event_bus"]
    other = Handler("test_also_told", "workflow", lambda e, record: None)
    monkeypatch.setitem(bus.handlers, "AdminCostBooked", [*bus.handlers["AdminCostBooked"], other])
    monkeypatch.setitem(bus._by_name, other.name, other)
    first = programme.years[0]
    second = services.add_year(programme, 2027, 1_000_000 * SEK, None, by=people["manager"])
    handle_pending()
    assert (services.unposted(first), services.unposted(second)) == (0, 0)
    services.book_admin_cost(first, 1 * SEK, "Fees", by=people["manager"])
    for memo in ("Fees", "More fees"):
        services.book_admin_cost(second, 1 * SEK, memo, by=people["manager"])
    db.session.commit()
    assert (services.unposted(first), services.unposted(second)) == (1, 2)
    assert len(_events(funding_events.AdminCostBooked.type_name)) == 3
    run_batches("funding_post_to_ledger")  # the ledger's handler only: the other stays pending
    assert (services.unposted(first), services.unposted(second)) == (0, 0)
