"""Nouns for the proposal tests: the challenge people, a PDF, and proposals taken through the services."""

from __future__ import annotations

import pytest

from challenges.accounts.models import User
from challenges.calls.models import Challenge, ChallengeStatus
from challenges.extensions import db
from challenges.proposals import services
from challenges.proposals.models import Proposal
from challenges.proposals.rules import ProposalContent
from tests.factories import make_challenge


def pdf(size: int = 2000, body: bytes = b"") -> bytes:
    """A small file that is a PDF by content, padded to *size* bytes."""
    head = b"%PDF-1.7\n" + body + b"\n1 0 obj << /Type /Catalog >> endobj\n"
    tail = b"\ntrailer << /Root 1 0 R >>\n%%EOF\n"
    return head + b"%" + b"x" * max(0, size - len(head) - len(tail) - 2) + b"\n" + tail


def content(user: User, **changes) -> ProposalContent:
    """A complete proposal that adds up: 400 000 kr of a 500 000 kr maximum."""
    values = dict(
        title="Acoustic crack detection",
        summary="We listen for cracks with contact microphones.",
        solution="## Approach\n\nA sensor array on the **fixture**.",
        fit="Finds cracks before machining.",
        milestones=[
            {"title": "Prototype", "due": "2027-03-01", "deliverable": "A rig"},
            {"title": "Pilot at the foundry", "due": "2027-09-01", "deliverable": ""},
        ],
        requested_ore=400_000_00,
        budget={"personnel": 300_000_00, "equipment": 50_000_00, "services": 40_000_00, "other": 10_000_00},
        team_ids=[user.id],
        partners=[
            {
                "name": "Luleå University of Technology",
                "org_number": "202100-2841",
                "kind": "university",
                "role": "Signal processing",
            }
        ],
        accept_agreement=True,
    )
    values.update(changes)
    return ProposalContent(**values)


def make_proposal(user: User, challenge: Challenge, *, submit: bool = True, **changes) -> Proposal:
    proposal = services.start_proposal(challenge, content(user, **changes), by=user)
    if submit:
        services.submit_proposal(proposal, by=user)
    db.session.flush()
    return proposal


@pytest.fixture
def challenge(people) -> Challenge:
    """An open challenge of Steel Works AB, 30 days from its deadline."""
    found = make_challenge(people["owner"], ChallengeStatus.published)
    db.session.commit()
    return found
