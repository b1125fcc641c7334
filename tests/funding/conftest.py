"""The closed challenge under review, shared with the review tests; a year opened, an award row and an
award booked for the ledger's tests."""

import pytest

from challenges.core.events import record
from challenges.extensions import db
from challenges.funding import booking, events, services
from challenges.funding.models import Award
from tests.factories import make_challenge, make_year
from tests.proposals.conftest import make_proposal
from tests.reviews.conftest import assigned, desk  # noqa: F401 - fixtures

SEK = 100


@pytest.fixture
def year(people):
    found = make_year(2031, allocation_sek=8_000_000)
    services.open_year(found)
    services.open_year(found)  # once only
    db.session.commit()
    return found


@pytest.fixture
def award_row(people, year):
    proposal = make_proposal(people["sme"], make_challenge(people["owner"]))
    award = Award(proposal_id=proposal.id, programme_year_id=year.id, amount_ore=200_000 * SEK)
    db.session.add(award)
    db.session.flush()
    return award


def _book(event_type, **payload):
    """Record a ledger event and post it as the ledger worker would (twice: the second is a no-op)."""
    row = record(event_type(**payload))
    db.session.flush()
    booking.book(row)
    booking.book(row)
    return row


@pytest.fixture
def booked(year, award_row):
    """A year opened and an award booked (committed): rows in every table of the ledger."""
    _book(
        events.FundingAwarded,
        award_id=award_row.id,
        programme_year_id=year.id,
        amount_ore=award_row.amount_ore,
    )
    db.session.commit()
    return year
