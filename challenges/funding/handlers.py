"""The ledger worker: every ledger event is posted on the ``ledger`` queue, once, in batches of the
events waiting (one transaction each). What the ledger booked or refused is told on the
``notifications`` queue: an award booked to the applicant and the owner, a payment or a change to the
applicant, a refusal to the programme managers."""

from __future__ import annotations

from challenges.accounts.models import Role
from challenges.accounts.people import people_with_role
from challenges.calls.following import owner_members
from challenges.core.bus import LEDGER_QUEUE, NOTIFICATIONS_QUEUE, EventBus, get_bus
from challenges.core.models import Event, must_get
from challenges.extensions import db
from challenges.funding import booking, events
from challenges.funding.models import Award, Instalment
from challenges.notifications.services import notify, recipients_for
from challenges.proposals.rules import applicant_team


def post_to_ledger(e, record: Event) -> None:
    booking.book(get_bus().fact(record))


def post_many_to_ledger(batch: list[tuple[object, Event]]) -> None:
    """The ledger worker's usual path: every waiting ledger event, in batches of one transaction each."""
    bus = get_bus()
    booking.book_many([bus.fact(record) for _e, record in batch])


def _managers() -> list:
    return recipients_for(people_with_role(Role.programme_manager))


def _applicants(award: Award) -> list:
    return recipients_for(applicant_team(award.proposal))


def send_booked(e: events.AwardBooked, record: Event) -> None:
    award = must_get(Award, e.award_id)
    challenge = award.proposal.challenge
    notify(record, "award_booked", _applicants(award), award=award, applicant=True, plan=award.instalments)
    notify(
        record,
        "award_booked",
        recipients_for(owner_members(challenge)),
        award=award,
        applicant=False,
        plan=award.instalments,
    )


def send_refused(e: events.AwardRefused, record: Event) -> None:
    notify(record, "award_refused", _managers(), award=must_get(Award, e.award_id), reason=e.reason)


def send_change_booked(e: events.AwardChangeBooked, record: Event) -> None:
    notify(
        record,
        "award_changed",
        _applicants(must_get(Award, e.award_id)),
        award=must_get(Award, e.award_id),
        kind=e.kind,
        amount_ore=e.amount_ore,
    )


def send_payment(e: events.PaymentMade, record: Event) -> None:
    award = must_get(Award, e.award_id)
    notify(
        record,
        "payment_made",
        _applicants(award),
        award=award,
        instalment=db.session.get(Instalment, e.instalment_id),
        amount_ore=e.amount_ore,
    )


def send_posting_refused(e: events.PostingRefused, record: Event) -> None:
    notify(
        record,
        "posting_refused",
        _managers(),
        kind=e.kind,
        reason=e.reason,
        refused=get_bus().fact(must_get(Event, e.refused_event_id)),  # its payload in today's shape
    )


def register(bus: EventBus) -> None:
    bus.declare(*events.ALL)
    for event_type in events.LEDGER_EVENTS:
        bus.subscribe(
            event_type,
            post_to_ledger,
            name="funding_post_to_ledger",
            queue=LEDGER_QUEUE,
            batch=post_many_to_ledger,
        )
    bus.subscribe(events.AwardBooked, send_booked, name="funding_send_booked", queue=NOTIFICATIONS_QUEUE)
    bus.subscribe(events.AwardRefused, send_refused, name="funding_send_refused", queue=NOTIFICATIONS_QUEUE)
    bus.subscribe(
        events.AwardChangeBooked,
        send_change_booked,
        name="funding_send_change_booked",
        queue=NOTIFICATIONS_QUEUE,
    )
    bus.subscribe(events.PaymentMade, send_payment, name="funding_send_payment", queue=NOTIFICATIONS_QUEUE)
    bus.subscribe(
        events.PostingRefused,
        send_posting_refused,
        name="funding_send_posting_refused",
        queue=NOTIFICATIONS_QUEUE,
    )
