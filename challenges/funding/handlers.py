"""The ledger worker: every ledger event is posted on the ``ledger`` queue, once; a refused award
tells the programme managers."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l

from challenges.accounts.models import Role
from challenges.accounts.services import people_with_role
from challenges.core.events import EventBus
from challenges.core.models import Event
from challenges.extensions import db
from challenges.funding import events, services
from challenges.funding.models import Award
from challenges.notifications.services import deliver, recipient_for


def post_to_ledger(e, record: Event) -> None:
    services.book(record)


def send_refused(e: events.AwardRefused, record: Event) -> None:
    award = db.session.get(Award, e.award_id)
    if award is None:
        raise LookupError(f"award {e.award_id} not found")
    deliver(record, "award_refused", _l("An award could not be booked"),
            [recipient_for(u) for u in people_with_role(Role.programme_manager)], award=award, reason=e.reason)


def send_posting_refused(e: events.PostingRefused, record: Event) -> None:
    deliver(record, "posting_refused", _l("The ledger refused a posting"),
            [recipient_for(u) for u in people_with_role(Role.programme_manager)], kind=e.kind, reason=e.reason,
            refused=db.session.get(Event, e.refused_event_id))


def register(bus: EventBus) -> None:
    bus.declare(*events.ALL)
    for event_type in events.LEDGER_EVENTS:
        bus.subscribe(event_type, post_to_ledger, queue="ledger")
    bus.subscribe(events.AwardRefused, send_refused, queue="notifications")
    bus.subscribe(events.PostingRefused, send_posting_refused, queue="notifications")
