"""Reading the record a report is made from: the events of the types it counts, up to an instant, in
the order they happened, and the rows they name, by id."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import lazyload

from challenges.calls.events import ChallengePublished
from challenges.core.bus import DomainEvent, Fact, get_bus
from challenges.core.models import Event
from challenges.extensions import db
from challenges.funding.events import AwardBooked, AwardChangeBooked, PaymentMade
from challenges.projects.events import ReportApproved
from challenges.proposals.events import ProposalSubmitted, ProposalWithdrawn
from challenges.reviews.events import (
    ConflictDeclared,
    EvaluatorRecused,
    ProposalScreened,
    ReviewOpened,
    ReviewSubmitted,
)

EVENT_TYPES: tuple[type[DomainEvent], ...] = (
    ChallengePublished,
    ProposalSubmitted,
    ProposalWithdrawn,
    ReviewOpened,
    ProposalScreened,
    ReviewSubmitted,
    ConflictDeclared,
    EvaluatorRecused,
    AwardBooked,
    AwardChangeBooked,
    PaymentMade,
    ReportApproved,
)


# --- building it -----------------------------------------------------------------------------------------


Events = dict[type[DomainEvent], list[Fact]]


def events_until(until: datetime, types: tuple[type[DomainEvent], ...] = EVENT_TYPES) -> Events:
    """The events of *types* before *until*, by type, in their order, read in today's shape."""
    bus = get_bus()
    found: Events = defaultdict(list)
    for event in db.session.scalars(
        sa.select(Event)
        .where(Event.type.in_(bus.stored_names(*types)), Event.occurred_at < until)
        .options(lazyload(Event.handlings))
        .order_by(Event.occurred_at, Event.id)
    ):
        found[bus.event_types[event.type]].append(bus.fact(event))
    return found


def by_id(model: Any, ids: set[int], *options: Any, where: Any = sa.true()) -> dict[int, Any]:
    if not ids:
        return {}
    return {
        row.id: row
        for row in db.session.scalars(sa.select(model).where(model.id.in_(ids), where).options(*options))
    }
