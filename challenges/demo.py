"""Demo data for a first run: the 2016–2017 programme and a few people in every role."""

from __future__ import annotations

from datetime import date, time, timedelta

import sqlalchemy as sa
from stdnum import luhn

from challenges.accounts import services as accounts
from challenges.accounts.models import MailMode, OrganisationKind, Role, User, UserRole
from challenges.calls import services as calls
from challenges.calls.models import TopicKind
from challenges.core.formatting import from_local, to_local
from challenges.core.models import utcnow
from challenges.extensions import db
from challenges.funding import services as funding
from challenges.funding.models import Programme, ProgrammeYear
from challenges.proposals import services as proposals
from challenges.reviews import services as reviews

DEMO_PASSWORD = "demo-innovation-2016"  # noqa: S105 - printed demo login, local data only
PROGRAMME_NAME = "Open innovation in industry"
SEK = 100  # öre


def _org_number(prefix: str) -> str:
    """A syntactically valid organisation number (check digit by Luhn) for a demo company."""
    digits = prefix + luhn.calc_check_digit(prefix)
    return f"{digits[:6]}-{digits[6:]}"


COMPANIES = [
    ("Nordisk Stålindustri AB", "556000001", OrganisationKind.industrial, None,
     [("Anna Lindqvist", "anna.lindqvist@nordiskstal.example.com")]),
    ("Fordonsverken Sverige AB", "556000002", OrganisationKind.industrial, None,
     [("Erik Johansson", "erik.johansson@fordonsverken.example.com")]),
    ("Sensorik Labb AB", "559000003", OrganisationKind.sme, (12, 9_500_000, 4_200_000),
     [("Sara Nilsson", "sara.nilsson@sensorik.example.com")]),
    ("Robotlogik AB", "559000004", OrganisationKind.sme, (34, 41_000_000, 18_000_000),
     [("Jonas Berg", "jonas.berg@robotlogik.example.com")]),
    ("Dataflöde Analys AB", "559000005", OrganisationKind.sme, (7, 5_200_000, 2_100_000),
     [("Maria Ek", "maria.ek@datafl.example.com")]),
]
EVALUATORS = [("Karin Holm", "karin.holm@evaluators.example.com"),
              ("Per Sandberg", "per.sandberg@evaluators.example.com")]
MANAGER = ("Lena Ström", "lena.strom@agency.example.com")


def demo_logins() -> list[tuple[str, str, str]]:
    """(role, name, email) of every demo account."""
    rows = [("programme manager", *MANAGER)]
    for org_name, _prefix, kind, _figures, people in COMPANIES:
        role = "challenge owner" if kind is OrganisationKind.industrial else "SME applicant"
        rows += [(f"{role} ({org_name})", name, email) for name, email in people]
    return rows + [("evaluator", name, email) for name, email in EVALUATORS]


def load_demo() -> bool:
    """Create the demo programme and people, once; False when they are already there."""
    if db.session.scalar(sa.select(Programme).where(Programme.name == PROGRAMME_NAME)):
        return False
    programme = Programme(name=PROGRAMME_NAME, admin_cap_basis_points=500, eur_rate_ore=935,
                          return_deadline=date(2018, 3, 31))
    programme.years = [
        ProgrammeYear(year=2016, allocation_ore=8_000_000 * SEK, requisition_deadline=date(2016, 8, 31)),
        ProgrammeYear(year=2017, allocation_ore=8_000_000 * SEK, requisition_deadline=date(2017, 3, 31)),
    ]
    db.session.add(programme)
    db.session.flush()
    for year in programme.years:  # each year's ledger opens with its allocation and admin envelope
        funding.open_year(year)

    manager = accounts.register_user(name=MANAGER[0], email=MANAGER[1], password=DEMO_PASSWORD,
                                     language="sv")
    manager.roles.append(UserRole(role=Role.programme_manager))

    for org_name, prefix, kind, figures, people in COMPANIES:
        staff, turnover, balance = figures or (None, None, None)
        new_org = accounts.NewOrganisation(
            name=org_name, org_number=_org_number(prefix), kind=kind, staff_headcount=staff,
            annual_turnover_ore=turnover * SEK if turnover is not None else None,
            balance_sheet_total_ore=balance * SEK if balance is not None else None)
        for name, email in people:
            accounts.register_user(name=name, email=email, password=DEMO_PASSWORD,
                                   language="sv", new_organisation=new_org)

    for name, email in EVALUATORS:
        user = accounts.register_user(name=name, email=email, password=DEMO_PASSWORD, language="en")
        accounts.grant_role(user, Role.evaluator, by=manager)
    # Robotlogik's Jonas takes non-essential mail (follows, questions) as one summary a day
    _person("jonas.berg@robotlogik.example.com").mail_mode = MailMode.daily
    db.session.flush()
    _demo_challenges(programme.years[0].id, manager)
    return True


def _person(email: str) -> User:
    user = accounts.user_by_email(email)
    assert user is not None
    return user


AGREEMENT = """Applicants keep the intellectual property in their own background and in the results they
create. The company gets a first right to negotiate a licence for use in its own plants.

Everything the company shares about its plants is **confidential** and may only be used to
prepare the proposal and run the project."""

CHALLENGES = [
    # (owner email, title, summary, area, themes, max SEK, days to deadline, state)
    ("anna.lindqvist@nordiskstal.example.com", "Predict roll wear in the hot strip mill",
     "Forecast work-roll wear from process data so that roll changes can be planned, not forced.",
     "Data", ["Machine learning and AI", "Analysis of large data sets"], 600_000, 30, "published"),
    ("erik.johansson@fordonsverken.example.com", "Automated visual inspection of painted body panels",
     "Find paint defects on car body panels on a moving line, at line speed, without stopping it.",
     "Digital infrastructure and technology", ["Automation and robotics", "Sensors"], 750_000, 45, "published"),
    ("anna.lindqvist@nordiskstal.example.com", "Wireless condition monitoring in harsh environments",
     "Monitor bearings and gearboxes where heat, dust and steel block ordinary radio links.",
     "Digital infrastructure and technology", ["Sensors", "Connectivity and control of equipment"], 500_000, 60,
     "submitted"),
    ("erik.johansson@fordonsverken.example.com", "A digital twin of the final assembly line",
     "Simulate the final assembly line well enough to test changes before the line is rebuilt.",
     "Data", ["Simulation"], 900_000, 75, "draft"),
]


def _demo_challenges(programme_year_id: int, manager: User) -> None:
    """Two open challenges, one awaiting approval, one draft, a follow, an answered question,
    a submitted proposal and a draft one."""
    calls.ensure_default_topics()
    criteria = [("Potential", 40), ("Team and capacity", 30), ("Feasibility of implementation", 30)]
    created = []
    for email, title, summary, area, themes, max_sek, days, state in CHALLENGES:
        owner = _person(email)
        day = to_local(utcnow() + timedelta(days=days)).date()
        content = calls.ChallengeContent(
            programme_year_id=programme_year_id, title=title, summary=summary,
            description=f"## Background\n\n{summary}\n\n## What we have today\n\n"
                        "Process data from the last three years, logged every second, and a team of "
                        "engineers who know the equipment.\n\n- Data can be shared under the agreement\n"
                        "- Site visits can be arranged",
            area_id=calls.topic_named(TopicKind.area, area).id,
            theme_ids=[calls.topic_named(TopicKind.theme, t).id for t in themes],
            must_demonstrate="A working prototype tested on our data or in our plant, with measured results.",
            max_funding_ore=max_sek * SEK, awards_planned=2, deadline=from_local(day, time(12, 0)),
            agreement=AGREEMENT, contact_name=owner.name, contact_email=owner.email, criteria=criteria,
            offers=["data_sets", "test_environment", "mentoring"],
            offers_details="Anonymised process data, a test cell for two weeks, and a named mentor.")
        challenge = calls.create_challenge(content, by=owner)
        if state in ("submitted", "published"):
            calls.submit_challenge(challenge, by=owner)
        if state == "published":
            calls.approve_challenge(challenge, by=manager)
        created.append(challenge)

    sara = _person("sara.nilsson@sensorik.example.com")
    calls.set_followed_topics([calls.topic_named(TopicKind.theme, "Sensors").id], by=sara)
    question = calls.ask_question(created[1], "Can the inspection station use its own lighting?", by=sara)
    calls.answer_question(question, "Yes. The station may have its own lighting; the line has room for "
                          "an enclosure of 2 × 3 metres.", by=_person("erik.johansson@fordonsverken.example.com"))
    _demo_proposals(created)
    _demo_review(programme_year_id, manager, criteria)


def _in_days(days: int) -> str:
    return (to_local(utcnow()).date() + timedelta(days=days)).isoformat()


def _demo_proposals(challenges: list) -> None:
    """Sensorik Labb has submitted to the inspection challenge; Robotlogik is drafting for roll wear."""
    sara, jonas = _person("sara.nilsson@sensorik.example.com"), _person("jonas.berg@robotlogik.example.com")
    inspection = proposals.start_proposal(challenges[1], proposals.ProposalContent(
        title="Line-speed paint inspection with polarised light",
        summary="A camera bar with polarised lighting finds paint defects on moving panels.",
        solution="## Approach\n\nFour line-scan cameras and **polarised lighting** in an enclosure; "
                 "a defect model trained on your images.\n\n## Why it works\n\nPolarisation separates "
                 "gloss from colour, so runs and craters stand out.",
        fit="Inspects every panel at line speed without stopping the line, and fits the 2 × 3 m enclosure.",
        milestones=[{"title": "Prototype in the lab", "due": _in_days(120), "deliverable": "Detection report"},
                    {"title": "Pilot on the line", "due": _in_days(270), "deliverable": "Pilot results"}],
        requested_ore=700_000 * SEK,
        budget={"personnel": 450_000 * SEK, "equipment": 180_000 * SEK, "services": 50_000 * SEK,
                "other": 20_000 * SEK},
        team_ids=[sara.id],
        partners=[{"name": "Chalmers tekniska högskola", "org_number": "556479-5598", "kind": "university",
                   "role": "Optics and image analysis"}],
        accept_agreement=True), by=sara)
    proposals.submit_proposal(inspection, by=sara)
    proposals.start_proposal(challenges[0], proposals.ProposalContent(
        title="Roll wear forecasts from mill data", summary="Gradient-boosted models on the mill's process data.",
        team_ids=[jonas.id]), by=jonas)


def _demo_review(programme_year_id: int, manager: User, criteria: list[tuple[str, int]]) -> None:
    """A challenge that closed yesterday: two proposals, screened, assigned to both evaluators,
    one review in (Karin's), so that Per can score and then read hers."""
    anna = _person("anna.lindqvist@nordiskstal.example.com")
    content = calls.ChallengeContent(
        programme_year_id=programme_year_id, title="Smarter control of reheating furnaces",
        summary="Cut the gas used to reheat slabs without more scale or uneven temperatures.",
        description="## Background\n\nOur walking-beam furnaces reheat slabs to 1 250 °C.",
        area_id=calls.topic_named(TopicKind.area, "Data").id,
        theme_ids=[calls.topic_named(TopicKind.theme, "Machine learning and AI").id],
        must_demonstrate="Lower gas use per tonne in a two-week trial.", max_funding_ore=500_000 * SEK,
        awards_planned=1, deadline=utcnow() + timedelta(days=2), agreement=AGREEMENT, contact_name=anna.name,
        contact_email=anna.email, criteria=criteria)
    challenge = calls.create_challenge(content, by=anna)
    calls.submit_challenge(challenge, by=anna)
    calls.approve_challenge(challenge, by=manager)
    for email, title, kronor in (("sara.nilsson@sensorik.example.com", "Slab temperature from acoustic sensors", 450_000),
                                 ("maria.ek@datafl.example.com", "A learned furnace model for set-points", 480_000)):
        person = _person(email)
        proposal = proposals.start_proposal(challenge, proposals.ProposalContent(
            title=title, summary=f"{title}, tested on one furnace.", solution="## Approach\n\nMeasure, model, adjust.",
            fit="A two-week trial on furnace 2.", milestones=[{"title": "Trial", "due": _in_days(60), "deliverable": ""}],
            requested_ore=kronor * SEK, budget={"personnel": kronor * SEK}, team_ids=[person.id],
            accept_agreement=True), by=person)
        proposals.submit_proposal(proposal, by=person)
    challenge.deadline = utcnow() - timedelta(days=1)
    calls.close_challenge(challenge)
    review = reviews.open_review(challenge)
    review.evaluators_per_proposal = 2
    for assessment in review.assessments:
        reviews.screen_proposal(assessment, eligible=True, reason="", by=manager)
    reviews.assign_automatically(review, by=manager)
    karin = _person("karin.holm@evaluators.example.com")
    first = next(a for a in review.assessments[0].assignments if a.evaluator_id == karin.id)
    reviews.submit_review(first, {c.id: score for c, score in zip(challenge.criteria, (6, 5, 5), strict=False)},
                          "Convincing measurements; the trial plan needs a fallback.", "", by=karin)
