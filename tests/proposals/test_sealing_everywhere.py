"""Sealing, by content: walking every page of the site as every role, with every id, shows the title of a
sealed proposal (submitted to a challenge still open) or of a draft to nobody but its applicant."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from challenges.accounts.models import User
from challenges.calls import services as calls
from challenges.calls.models import Challenge, ChallengeStatus, Topic
from challenges.core.models import utcnow
from challenges.extensions import db
from challenges.funding.models import Award, Programme, ProgrammeYear
from challenges.notifications.models import MailMessage
from challenges.projects.models import Project, ProjectReport
from challenges.proposals import services as proposals
from challenges.proposals.models import Proposal, ProposalAttachment
from challenges.reviews.models import Assignment
from tests.factories import make_challenge
from tests.proposals.conftest import make_proposal, pdf

SEALED = "Sealedtitle Ultrasonic Quasar"
DRAFT_OPEN = "Drafttitle Lidar Kestrel"
DRAFT_CLOSED = "Drafttitle Closed Heron"
# What each argument of a route names, so that every id in the database is tried.
ARGUMENTS = {
    "proposal_id": Proposal,
    "challenge_id": Challenge,
    "attachment_id": ProposalAttachment,
    "award_id": Award,
    "message_id": MailMessage,
    "user_id": User,
    "programme_id": Programme,
    "year_id": ProgrammeYear,
    "topic_id": Topic,
    "project_id": Project,
    "report_id": ProjectReport,
    "assignment_id": Assignment,
}
OTHER_VALUES = {"number": [1, 2], "name": ["challenges", "scores", "projects", "results", "money"]}
SECRET_ARGUMENTS = {"token"}  # emailed links: nothing to walk
EVERYONE_BUT_THE_APPLICANTS = {SEALED, DRAFT_OPEN, DRAFT_CLOSED}
ROLES = {
    None: EVERYONE_BUT_THE_APPLICANTS,
    "owner@steel.example.com": EVERYONE_BUT_THE_APPLICANTS,
    "colleague@steel.example.com": EVERYONE_BUT_THE_APPLICANTS,
    "owner@cars.example.com": EVERYONE_BUT_THE_APPLICANTS,
    "eva@evaluators.example.com": EVERYONE_BUT_THE_APPLICANTS,
    "manager@agency.example.com": EVERYONE_BUT_THE_APPLICANTS,
    "sara@sensors.example.com": {DRAFT_OPEN, DRAFT_CLOSED},  # her own proposal is sealed from others only
    "jonas@robots.example.com": {SEALED},  # the drafts are his
}


@pytest.fixture
def sealed_world(people, drain):
    """An open challenge with Sara's submitted proposal (and its PDF) and Jonas's draft; a second
    challenge, closed, with another draft of Jonas's; every handler run (receipts, digests, reviews)."""
    open_challenge = make_challenge(people["owner"], ChallengeStatus.published)
    closing = make_challenge(people["owner"], ChallengeStatus.published, title="A challenge that has closed")
    sealed = make_proposal(people["sme"], open_challenge, title=SEALED)
    proposals.add_attachment(sealed, "plan.pdf", pdf(), by=people["sme"])
    proposals.submit_proposal(sealed, by=people["sme"])
    make_proposal(people["other_sme"], open_challenge, submit=False, title=DRAFT_OPEN)
    make_proposal(people["other_sme"], closing, submit=False, title=DRAFT_CLOSED)
    make_proposal(people["sme"], closing, title="A submitted proposal anyone allowed may read")
    closing.deadline = utcnow() - timedelta(seconds=1)
    calls.close_challenge(closing)
    db.session.commit()
    drain()


def _urls(app) -> list[str]:
    urls = []
    for rule in app.url_map.iter_rules():
        if "GET" not in rule.methods or rule.endpoint == "static" or rule.arguments & SECRET_ARGUMENTS:
            continue
        choices: list[dict] = [{}]
        for argument in sorted(rule.arguments):
            if argument in ARGUMENTS:
                values = list(db.session.scalars(sa.select(ARGUMENTS[argument].id)))
            else:
                assert argument in OTHER_VALUES, f"say which values {rule.rule}'s {argument} takes"
                values = OTHER_VALUES[argument]
            choices = [dict(c, **{argument: v}) for c in choices for v in values]
        urls += [rule.build(values, append_unknown=False)[1] for values in choices]
    return urls


@pytest.mark.parametrize("email", ROLES, ids=[e or "visitor" for e in ROLES])
def test_no_page_shows_a_sealed_or_draft_title_to_anyone_but_its_applicant(
    app, sealed_world, make_browser, email
):
    urls = _urls(app)
    assert len(urls) > 100
    browser = make_browser(email)
    leaks = []
    for url in urls:
        body = browser.get(url).get_data(as_text=True)
        leaks += [f"{url}: {title}" for title in ROLES[email] if title in body]
    assert leaks == []
