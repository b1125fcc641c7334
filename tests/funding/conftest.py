"""The closed challenge under review, shared with the review tests; a year opened and an award row for
the ledger's tests."""

import pytest

from challenges.extensions import db
from challenges.funding import services
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
