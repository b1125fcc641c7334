"""The ledger worker's side: each ledger event posted in its order, and what it is about settled: an
award booked (or refused, with an event that says why), a refused payment, reduction or cancellation
put back as it was, and the applicant told of what was booked."""

from __future__ import annotations

import sqlalchemy as sa

from challenges.core.bus import Fact
from challenges.core.events import record
from challenges.extensions import db
from challenges.funding import events, ledger
from challenges.funding.models import (
    Award,
    AwardStatus,
    Instalment,
    Posting,
)


def book(event: Fact) -> None:
    """Post one ledger event and settle what it is about (see :func:`book_many`)."""
    book_many([event])


def book_many(events: list[Fact]) -> None:
    """Post ledger events in their order and settle what each is about: an award booked, or refused with
    an event that says why; a refused payment, reduction or cancellation put back as it was. One flush
    for them all (the ledger worker books a batch of waiting events in one transaction)."""
    postings = ledger.post_many(events)
    award_ids = {event.payload["award_id"] for event in events if "award_id" in event.payload}
    awards = {
        award.id: award for award in db.session.scalars(sa.select(Award).where(Award.id.in_(award_ids)))
    }
    for event, (posting, fresh) in zip(events, postings, strict=True):
        if fresh:  # a re-delivery: everything was done the first time
            _settle(event, posting, awards.get(event.payload.get("award_id", -1)))
    db.session.flush()


def _settle(event: Fact, posting: Posting, award: Award | None) -> None:
    if event.type == events.FundingAwarded.type_name:
        _settle_award(award, booked=posting.booked, reason=posting.reason)
        return
    if posting.booked or event.type in (events.YearOpened.type_name, events.YearClosed.type_name):
        _tell_booked(event)
        return
    payload = event.payload
    if event.type == events.PaymentApproved.type_name:
        instalment = db.session.get(Instalment, payload["instalment_id"])
        if instalment is not None and instalment.event_id == event.id:
            instalment.approved_at = instalment.approved_by_id = instalment.event_id = None
    elif event.type == events.AwardReduced.type_name and award is not None:
        award.amount_ore += payload["amount_ore"]
        unpaid = [i for i in award.instalments if i.approved_at is None]
        if unpaid:
            unpaid[-1].amount_ore += payload["amount_ore"]
    elif (
        event.type == events.AwardCancelled.type_name
        and award is not None
        and award.status is AwardStatus.cancelled
    ):
        award.status = AwardStatus.booked
    record(
        events.PostingRefused(refused_event_id=event.id, kind=event.type, reason=posting.reason or ""),
        flush=False,
    )


def _tell_booked(event: Fact) -> None:
    """What the applicant hears once the ledger has booked it: a payment, a reduction, a cancellation."""
    payload = event.payload
    if event.type == events.PaymentApproved.type_name:
        record(
            events.PaymentMade(
                award_id=payload["award_id"],
                instalment_id=payload["instalment_id"],
                amount_ore=payload["amount_ore"],
            ),
            flush=False,
        )
    elif event.type in (events.AwardReduced.type_name, events.AwardCancelled.type_name):
        record(
            events.AwardChangeBooked(
                award_id=payload["award_id"],
                amount_ore=payload["amount_ore"],
                kind="reduced" if event.type == events.AwardReduced.type_name else "cancelled",
            ),
            flush=False,
        )


def _settle_award(award: Award | None, *, booked: bool, reason: str | None) -> None:
    if award is None or award.status is not AwardStatus.pending:
        return
    if booked:
        award.status = AwardStatus.booked
        record(events.AwardBooked(award_id=award.id, amount_ore=award.amount_ore), flush=False)
    else:
        award.status = AwardStatus.refused
        award.refused_reason = reason
        record(events.AwardRefused(award_id=award.id, reason=reason or ""), flush=False)
