"""Demo data for a first run: the 2016–2017 programme with its history, and a few people in every role."""

from __future__ import annotations

from datetime import time, timedelta

import sqlalchemy as sa

from challenges.accounts.models import MailMode, User
from challenges.calls import following, questions, topics
from challenges.calls import services as calls
from challenges.calls.models import Challenge, TopicKind
from challenges.core.formatting import from_local, to_local
from challenges.core.models import utcnow
from challenges.demo.history import _demo_history
from challenges.demo.people import AGREEMENT as AGREEMENT
from challenges.demo.people import CRITERIA, PROGRAMME_NAME, SEK
from challenges.demo.people import DEMO_PASSWORD as DEMO_PASSWORD
from challenges.demo.people import MANAGER as MANAGER
from challenges.demo.people import _person as _person
from challenges.demo.people import demo_logins as demo_logins
from challenges.extensions import db
from challenges.funding.models import Programme
from challenges.proposals import services as proposals
from challenges.proposals.rules import ProposalContent
from challenges.reviews import assignments, scoring
from challenges.reviews import services as reviews


def load_demo() -> bool:
    """Create the demo programme with its 2016–2017 history, then today's challenges, once; False
    when they are already there. The history commits as it goes (the ledger and the projects act
    in it); today's part is left for the caller to commit."""
    if db.session.scalar(sa.select(Programme).where(Programme.name == PROGRAMME_NAME)):
        return False
    programme, manager = _demo_history()
    # Robotlogik's Jonas takes non-essential mail (follows, questions) as one summary a day
    _person("jonas.berg@robotlogik.example.com").mail_mode = MailMode.daily
    db.session.flush()
    _demo_challenges(programme.years[0].id, manager)
    return True


CHALLENGES = [
    # (owner email, title, summary, area, themes, max SEK, days to deadline, state)
    (
        "anna.lindqvist@nordiskstal.example.com",
        "Predict roll wear in the hot strip mill",
        "Forecast work-roll wear from process data so that roll changes can be planned, not forced.",
        "Data",
        ["Machine learning and AI", "Analysis of large data sets"],
        600_000,
        30,
        "published",
    ),
    (
        "erik.johansson@fordonsverken.example.com",
        "Automated visual inspection of painted body panels",
        "Find paint defects on car body panels on a moving line, at line speed, without stopping it.",
        "Digital infrastructure and technology",
        ["Automation and robotics", "Sensors"],
        750_000,
        45,
        "published",
    ),
    (
        "anna.lindqvist@nordiskstal.example.com",
        "Wireless condition monitoring in harsh environments",
        "Monitor bearings and gearboxes where heat, dust and steel block ordinary radio links.",
        "Digital infrastructure and technology",
        ["Sensors", "Connectivity and control of equipment"],
        500_000,
        60,
        "submitted",
    ),
    (
        "erik.johansson@fordonsverken.example.com",
        "A digital twin of the final assembly line",
        "Simulate the final assembly line well enough to test changes before the line is rebuilt.",
        "Data",
        ["Simulation"],
        900_000,
        75,
        "draft",
    ),
]


def _demo_challenges(programme_year_id: int, manager: User) -> None:
    """Two open challenges, one awaiting approval, one draft, a follow, an answered question,
    a submitted proposal and a draft one."""
    topics.ensure_default_topics()
    created = []
    for email, title, summary, area, themes, max_sek, days, state in CHALLENGES:
        owner = _person(email)
        day = to_local(utcnow() + timedelta(days=days)).date()
        content = calls.ChallengeContent(
            programme_year_id=programme_year_id,
            title=title,
            summary=summary,
            description=f"## Background\n\n{summary}\n\n## What we have today\n\n"
            "Process data from the last three years, logged every second, and a team of "
            "engineers who know the equipment.\n\n- Data can be shared under the agreement\n"
            "- Site visits can be arranged",
            area_id=topics.topic_named(TopicKind.area, area).id,
            theme_ids=[topics.topic_named(TopicKind.theme, t).id for t in themes],
            must_demonstrate="A working prototype tested on our data or in our plant, with measured results.",
            max_funding_ore=max_sek * SEK,
            awards_planned=2,
            deadline=from_local(day, time(12, 0)),
            agreement=AGREEMENT,
            contact_name=owner.name,
            contact_email=owner.email,
            criteria=CRITERIA,
            offers=["data_sets", "test_environment", "mentoring"],
            offers_details="Anonymised process data, a test cell for two weeks, and a named mentor.",
        )
        challenge = calls.create_challenge(content, by=owner)
        if state in ("submitted", "published"):
            calls.submit_challenge(challenge, by=owner)
        if state == "published":
            calls.approve_challenge(challenge, by=manager)
        created.append(challenge)

    sara = _person("sara.nilsson@sensorik.example.com")
    following.set_followed_topics([topics.topic_named(TopicKind.theme, "Sensors").id], by=sara)
    question = questions.ask_question(created[1], "Can the inspection station use its own lighting?", by=sara)
    questions.answer_question(
        question,
        "Yes. The station may have its own lighting; the line has room for an enclosure of 2 × 3 metres.",
        by=_person("erik.johansson@fordonsverken.example.com"),
    )
    _demo_proposals(created)
    _demo_review(programme_year_id, manager)


def _in_days(days: int) -> str:
    return (to_local(utcnow()).date() + timedelta(days=days)).isoformat()


def _demo_proposals(challenges: list) -> None:
    """Sensorik Labb has submitted to the inspection challenge; Robotlogik is drafting for roll wear."""
    sara, jonas = _person("sara.nilsson@sensorik.example.com"), _person("jonas.berg@robotlogik.example.com")
    inspection = proposals.start_proposal(
        challenges[1],
        ProposalContent(
            title="Line-speed paint inspection with polarised light",
            summary="A camera bar with polarised lighting finds paint defects on moving panels.",
            solution="## Approach\n\nFour line-scan cameras and **polarised lighting** in an enclosure; "
            "a defect model trained on your images.\n\n## Why it works\n\nPolarisation separates "
            "gloss from colour, so runs and craters stand out.",
            fit="Inspects every panel at line speed without stopping the line, and fits the 2 × 3 m enclosure.",
            milestones=[
                {"title": "Prototype in the lab", "due": _in_days(120), "deliverable": "Detection report"},
                {"title": "Pilot on the line", "due": _in_days(270), "deliverable": "Pilot results"},
            ],
            requested_ore=700_000 * SEK,
            budget={
                "personnel": 450_000 * SEK,
                "equipment": 180_000 * SEK,
                "services": 50_000 * SEK,
                "other": 20_000 * SEK,
            },
            team_ids=[sara.id],
            partners=[
                {
                    "name": "Chalmers tekniska högskola",
                    "org_number": "556479-5598",
                    "kind": "university",
                    "role": "Optics and image analysis",
                }
            ],
            accept_agreement=True,
        ),
        by=sara,
    )
    proposals.submit_proposal(inspection, by=sara)
    proposals.start_proposal(
        challenges[0],
        ProposalContent(
            title="Roll wear forecasts from mill data",
            summary="Gradient-boosted models on the mill's process data.",
            team_ids=[jonas.id],
        ),
        by=jonas,
    )


def _furnace_challenge(programme_year_id: int, manager: User) -> Challenge:
    """Anna's challenge, drafted, submitted and approved."""
    anna = _person("anna.lindqvist@nordiskstal.example.com")
    content = calls.ChallengeContent(
        programme_year_id=programme_year_id,
        title="Smarter control of reheating furnaces",
        summary="Cut the gas used to reheat slabs without more scale or uneven temperatures.",
        description="## Background\n\nOur walking-beam furnaces reheat slabs to 1 250 °C.",
        area_id=topics.topic_named(TopicKind.area, "Data").id,
        theme_ids=[topics.topic_named(TopicKind.theme, "Machine learning and AI").id],
        must_demonstrate="Lower gas use per tonne in a two-week trial.",
        max_funding_ore=500_000 * SEK,
        awards_planned=1,
        deadline=utcnow() + timedelta(days=2),
        agreement=AGREEMENT,
        contact_name=anna.name,
        contact_email=anna.email,
        criteria=CRITERIA,
    )
    challenge = calls.create_challenge(content, by=anna)
    calls.submit_challenge(challenge, by=anna)
    calls.approve_challenge(challenge, by=manager)
    return challenge


def _demo_review(programme_year_id: int, manager: User) -> None:
    """A challenge that closed yesterday: two proposals, screened, assigned to both evaluators,
    one review in (Karin's), so that Per can score and then read hers."""
    challenge = _furnace_challenge(programme_year_id, manager)
    for email, title, kronor in (
        ("sara.nilsson@sensorik.example.com", "Slab temperature from acoustic sensors", 450_000),
        ("maria.ek@datafl.example.com", "A learned furnace model for set-points", 480_000),
    ):
        person = _person(email)
        proposal = proposals.start_proposal(
            challenge,
            ProposalContent(
                title=title,
                summary=f"{title}, tested on one furnace.",
                solution="## Approach\n\nMeasure, model, adjust.",
                fit="A two-week trial on furnace 2.",
                milestones=[{"title": "Trial", "due": _in_days(60), "deliverable": ""}],
                requested_ore=kronor * SEK,
                budget={"personnel": kronor * SEK},
                team_ids=[person.id],
                accept_agreement=True,
            ),
            by=person,
        )
        proposals.submit_proposal(proposal, by=person)
    challenge.deadline = utcnow() - timedelta(days=1)
    calls.close_challenge(challenge)
    review = reviews.open_review(challenge)
    review.evaluators_per_proposal = 2
    for assessment in review.assessments:
        reviews.screen_proposal(assessment, eligible=True, reason="", by=manager)
    assignments.assign_automatically(review, by=manager)
    karin = _person("karin.holm@evaluators.example.com")
    first = next(a for a in review.assessments[0].assignments if a.evaluator_id == karin.id)
    scoring.submit_review(
        first,
        {c.id: score for c, score in zip(challenge.criteria, (6, 5, 5), strict=False)},
        "Convincing measurements; the trial plan needs a fallback.",
        "",
        by=karin,
    )
