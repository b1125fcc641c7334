"""Demo data for a first run: the 2016–2017 programme with its history, and a few people in every role."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime, time, timedelta
from typing import NamedTuple

import sqlalchemy as sa
from stdnum import luhn

from challenges.accounts import services as accounts
from challenges.accounts.models import MailMode, Organisation, OrganisationKind, Role, User, UserRole
from challenges.calls import services as calls
from challenges.calls.models import Challenge, TopicKind
from challenges.core.events import handle_pending
from challenges.core.formatting import from_local, to_local
from challenges.core.models import clock_at, utcnow
from challenges.extensions import db
from challenges.funding import services as funding
from challenges.funding.models import InstalmentCondition, Programme, ProgrammeYear
from challenges.projects import services as projects
from challenges.projects.models import Project, ProjectReport, ReportKind
from challenges.proposals import services as proposals
from challenges.proposals.models import Proposal
from challenges.proposals.rules import ProposalContent
from challenges.reports import services as reports
from challenges.reviews import services as reviews
from challenges.reviews.models import Assessment, ChallengeReview, Decision, Relation

DEMO_PASSWORD = "demo-innovation-2016"  # noqa: S105 - printed demo login, local data only
PROGRAMME_NAME = "Open innovation in industry"
SEK = 100  # öre


def _org_number(prefix: str) -> str:
    """A syntactically valid organisation number (check digit by Luhn) for a demo company."""
    digits = prefix + luhn.calc_check_digit(prefix)
    return f"{digits[:6]}-{digits[6:]}"


COMPANIES = [
    (
        "Nordisk Stålindustri AB",
        "556000001",
        OrganisationKind.industrial,
        None,
        [("Anna Lindqvist", "anna.lindqvist@nordiskstal.example.com")],
    ),
    (
        "Fordonsverken Sverige AB",
        "556000002",
        OrganisationKind.industrial,
        None,
        [("Erik Johansson", "erik.johansson@fordonsverken.example.com")],
    ),
    (
        "Sensorik Labb AB",
        "559000003",
        OrganisationKind.sme,
        (12, 9_500_000, 4_200_000),
        [("Sara Nilsson", "sara.nilsson@sensorik.example.com")],
    ),
    (
        "Robotlogik AB",
        "559000004",
        OrganisationKind.sme,
        (34, 41_000_000, 18_000_000),
        [("Jonas Berg", "jonas.berg@robotlogik.example.com")],
    ),
    (
        "Dataflöde Analys AB",
        "559000005",
        OrganisationKind.sme,
        (7, 5_200_000, 2_100_000),
        [("Maria Ek", "maria.ek@datafl.example.com")],
    ),
]
EVALUATORS = [
    ("Karin Holm", "karin.holm@evaluators.example.com"),
    ("Per Sandberg", "per.sandberg@evaluators.example.com"),
]
MANAGER = ("Lena Ström", "lena.strom@agency.example.com")


def demo_logins() -> list[tuple[str, str, str]]:
    """(role, name, email) of every demo account."""
    rows = [("programme manager", *MANAGER)]
    for org_name, _prefix, kind, _figures, people in COMPANIES:
        role = "challenge owner" if kind is OrganisationKind.industrial else "SME applicant"
        rows += [(f"{role} ({org_name})", name, email) for name, email in people]
    return rows + [("evaluator", name, email) for name, email in EVALUATORS]


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


def _person(email: str) -> User:
    user = accounts.user_by_email(email)
    assert user is not None
    return user


AGREEMENT = """Applicants keep the intellectual property in their own background and in the results they
create. The company gets a first right to negotiate a licence for use in its own plants.

Everything the company shares about its plants is **confidential** and may only be used to
prepare the proposal and run the project."""

CRITERIA = [("Potential", 40), ("Team and capacity", 30), ("Feasibility of implementation", 30)]

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
    calls.ensure_default_topics()
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
            area_id=calls.topic_named(TopicKind.area, area).id,
            theme_ids=[calls.topic_named(TopicKind.theme, t).id for t in themes],
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
    calls.set_followed_topics([calls.topic_named(TopicKind.theme, "Sensors").id], by=sara)
    question = calls.ask_question(created[1], "Can the inspection station use its own lighting?", by=sara)
    calls.answer_question(
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


def _demo_review(programme_year_id: int, manager: User) -> None:
    """A challenge that closed yesterday: two proposals, screened, assigned to both evaluators,
    one review in (Karin's), so that Per can score and then read hers."""
    anna = _person("anna.lindqvist@nordiskstal.example.com")
    content = calls.ChallengeContent(
        programme_year_id=programme_year_id,
        title="Smarter control of reheating furnaces",
        summary="Cut the gas used to reheat slabs without more scale or uneven temperatures.",
        description="## Background\n\nOur walking-beam furnaces reheat slabs to 1 250 °C.",
        area_id=calls.topic_named(TopicKind.area, "Data").id,
        theme_ids=[calls.topic_named(TopicKind.theme, "Machine learning and AI").id],
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
    reviews.assign_automatically(review, by=manager)
    karin = _person("karin.holm@evaluators.example.com")
    first = next(a for a in review.assessments[0].assignments if a.evaluator_id == karin.id)
    reviews.submit_review(
        first,
        {c.id: score for c, score in zip(challenge.criteria, (6, 5, 5), strict=False)},
        "Convincing measurements; the trial plan needs a fallback.",
        "",
        by=karin,
    )


# --- the history: what the programme did in 2016 and 2017 ------------------------------------------
#
# Each step runs under clock_at() at its Stockholm wall-clock time, through the same services as the
# site, and handle_pending() then runs what the workers would have done at that moment: the ledger
# books, projects start, mail is written. Everything in it is past and settled (or, for one final
# report, waiting for the programme manager), so no periodic job has anything to do for it today.

REPORT_DATES = ["2016-10-15", "2017-03-31", "2018-03-31"]
# The programme manager's lessons in the two partial reports (the final one is still to be written).
HISTORY_LESSONS = {
    "2016-10-15": (
        "2016-10-14 15:00",
        """Two challenges drew four proposals from three companies. Ten weeks from
publication to deadline was enough for the companies that already knew the problem, but too short
for a company to find a partner at the university.

**Plan for the coming year:** publish the 2017 challenges before the summer, hold an open question
session in the first week, and ask owners to say in the challenge what data they can share.""",
    ),
    "2017-03-31": (
        "2017-03-29 11:00",
        """The first project has reported its results: the cranes' sensors reached
TRL 7 and Nordisk Stål equips all forty cranes, a follow-on sale of the kind the programme exists
for. Screening caught a proposal that spent most of its budget on production equipment; the
challenge text now says what the money may pay for.

Administration has used about half of one per cent of the allocations, well below the five per cent cap.""",
    ),
}


class HistoryChallenge(NamedTuple):
    key: str
    owner: str  # email
    title: str
    summary: str
    area: str
    themes: list[str]
    max_sek: int
    deadline: str  # Stockholm, "YYYY-MM-DD HH:MM"


HISTORY_CHALLENGES = [
    HistoryChallenge(
        "cranes",
        "anna.lindqvist@nordiskstal.example.com",
        "Predictive maintenance of overhead cranes",
        "Know when a crane's hoist or travel drive needs service before it stops the slab yard.",
        "Digital infrastructure and technology",
        ["Sensors", "Connectivity and control of equipment"],
        600_000,
        "2016-04-15 12:00",
    ),
    HistoryChallenge(
        "welds",
        "erik.johansson@fordonsverken.example.com",
        "Predict spot-weld quality in the body shop",
        "Tell good spot welds from bad ones from the robots' own data, so that fewer bodies are torn apart "
        "for testing.",
        "Data",
        ["Machine learning and AI", "Analysis of large data sets"],
        800_000,
        "2016-04-15 12:00",
    ),
]


class HistoryProposal(NamedTuple):
    key: str
    challenge: str  # HistoryChallenge.key
    applicant: str  # email
    submitted: str  # Stockholm, "YYYY-MM-DD HH:MM"
    title: str
    summary: str
    budget_sek: dict[str, int]  # the request is their sum
    milestones: list[tuple[str, str, str]]  # (due, title, deliverable)
    partner: tuple[str, str, str] | None  # (university, organisation number, role)


HISTORY_PROPOSALS = [
    HistoryProposal(
        "crane_sensors",
        "cranes",
        "sara.nilsson@sensorik.example.com",
        "2016-03-21 14:10",
        "Wireless vibration sensing on crane drives",
        "Battery-powered vibration sensors on the hoist and travel drives, linked by a mesh radio that copes "
        "with the steel hall, and a wear model that warns weeks ahead.",
        {"personnel": 380_000, "equipment": 120_000, "services": 45_000, "other": 15_000},
        [
            ("2016-08-31", "Sensors on two crane drives", "Installation report"),
            ("2016-11-30", "Three months of data and a wear model", "Model report"),
            ("2017-02-15", "Alarms in the maintenance system", "Final report and hand-over"),
        ],
        ("Luleå tekniska universitet", "202100-2841", "Condition monitoring and signal analysis"),
    ),
    HistoryProposal(
        "crane_currents",
        "cranes",
        "jonas.berg@robotlogik.example.com",
        "2016-04-11 16:45",
        "Crane health from drive currents",
        "Find wear in the hoist gearboxes from the motor currents that the drives already measure, without "
        "new sensors.",
        {"personnel": 420_000, "services": 60_000},
        [
            ("2016-09-30", "Current logging on one crane", "Data set and logging report"),
            ("2017-01-31", "Fault signatures validated", "Validation report"),
        ],
        None,
    ),
    HistoryProposal(
        "weld_model",
        "welds",
        "maria.ek@datafl.example.com",
        "2016-04-08 11:20",
        "Weld quality predicted from robot data",
        "A model that flags suspect spot welds from the weld controllers' current and force curves, checked "
        "against the body shop's destructive tests.",
        {"personnel": 560_000, "equipment": 40_000, "services": 120_000, "other": 30_000},
        [
            ("2016-09-15", "Data pipeline from the weld controllers", "Pipeline in operation"),
            ("2016-12-15", "Quality model validated against destructive tests", "Validation report"),
            ("2017-03-15", "Pilot on body-shop line 2", "Pilot results"),
        ],
        ("KTH Kungliga Tekniska högskolan", "202100-3054", "Machine learning for process data"),
    ),
    HistoryProposal(
        "weld_tracking",
        "welds",
        "jonas.berg@robotlogik.example.com",
        "2016-04-13 09:05",
        "Vision-guided seam tracking for new weld robots",
        "A camera on the robot's tool follows the seam, so that new arc-welding robots need less programming.",
        {"personnel": 300_000, "equipment": 500_000},
        [("2016-10-31", "Seam tracking on a test robot", "Test report")],
        None,
    ),
]

INELIGIBLE = {
    "weld_tracking": "The proposal offers seam tracking for new arc-welding robots, while the challenge asks for "
    "predicting the quality of the body shop's existing spot welds from its data. More than half "
    "of the budget would also buy production equipment, which the programme does not fund.",
}
# (proposal, evaluator, submitted, scores for CRITERIA, comment to the applicant)
HISTORY_REVIEWS = [
    (
        "crane_sensors",
        "karin.holm@evaluators.example.com",
        "2016-04-26 10:30",
        (6, 6, 5),
        "A credible plan with the right academic partner. Show early that the radio link holds in the hall.",
    ),
    (
        "crane_currents",
        "karin.holm@evaluators.example.com",
        "2016-04-27 15:00",
        (4, 5, 3),
        "An attractive idea, but the drives log currents too seldom to see gearbox faults, and the plan does not "
        "say how to get faster data.",
    ),
    (
        "crane_sensors",
        "per.sandberg@evaluators.example.com",
        "2016-04-28 09:15",
        (7, 5, 6),
        "Strong potential across the mill's forty cranes. The team is small for the installation work.",
    ),
    (
        "weld_model",
        "karin.holm@evaluators.example.com",
        "2016-04-29 13:45",
        (6, 5, 6),
        "Well argued and well grounded in the body shop's data; the validation plan is convincing.",
    ),
    (
        "weld_model",
        "per.sandberg@evaluators.example.com",
        "2016-05-02 11:00",
        (5, 6, 5),
        "A capable team. The pilot needs the body shop's time, which should be agreed at the start.",
    ),
]
# Per Sandberg has a contract with Robotlogik: he declares it once the review has begun, and steps
# back from its proposal; nobody else is free to take it, so Karin Holm's review stands alone.
CONFLICT = ("per.sandberg@evaluators.example.com", "Robotlogik AB", Relation.contracts, "2016-04-19 16:20")
DECISIONS = {
    "crane_sensors": (
        Decision.recommend,
        "The highest scores, and a clear plan with the mill's maintenance team.",
    ),
    "crane_currents": (
        Decision.reject,
        "Ranked below the recommended proposal; the evaluator doubts that the drives' data are rich enough.",
    ),
    "weld_model": (Decision.recommend, "Strong potential to cut destructive testing, with a feasible plan."),
}
HISTORY_AWARDS = {"crane_sensors": 560_000, "weld_model": 720_000}  # SEK, from the year 2016
HISTORY_ADMIN_COSTS = {  # year: (SEK, what for)
    2016: (48_000, "Evaluators' fees for the spring 2016 review (five reviews)"),
    2017: (36_000, "Follow-up of the funded projects and the partial report of 31 March 2017"),
}
# What the companies reported, and their indicators.
HISTORY_REPORTS = {
    ("crane_sensors", ReportKind.progress): projects.ReportContent(
        text="Sensors run on the hoist and travel drives of cranes 4 and 7 since August. The mesh radio loses "
        "under 0,5 % of the readings since a second repeater was put up near the furnace wall.",
        milestones_reached=[0],
        trl=5,
        pilot_with_owner=True,
        follow_on_with_owner=False,
        other_customers=0,
        private_cofunding_ore=120_000 * SEK,
        jobs_created=1,
    ),
    ("weld_model", ReportKind.progress): projects.ReportContent(
        text="The current and force curves of every weld on line 2 reach the model within a minute. A first "
        "model picks out the welds that later failed the chisel test, with few false alarms.",
        milestones_reached=[0],
        trl=4,
        pilot_with_owner=False,
        follow_on_with_owner=False,
        other_customers=0,
        private_cofunding_ore=80_000 * SEK,
        jobs_created=1,
    ),
    ("crane_sensors", ReportKind.final): projects.ReportContent(
        text="Alarms from the wear model reach the mill's maintenance system. Two bearing failures were found "
        "three and five weeks before they would have stopped a crane; Nordisk Stål equips all forty cranes "
        "in 2017.",
        milestones_reached=[0, 1, 2],
        trl=7,
        pilot_with_owner=True,
        follow_on_with_owner=True,
        other_customers=2,
        private_cofunding_ore=350_000 * SEK,
        jobs_created=2,
    ),
    ("weld_model", ReportKind.final): projects.ReportContent(
        text="The model ran beside the destructive tests on line 2 for ten weeks and flagged 19 of the 21 bad "
        "welds. Fordonsverken halves the tear-down tests on line 2 from April and considers lines 1 and 3.",
        milestones_reached=[0, 1, 2],
        trl=6,
        pilot_with_owner=True,
        follow_on_with_owner=False,
        other_customers=1,
        private_cofunding_ore=150_000 * SEK,
        jobs_created=1,
    ),
}


def _at(when: str) -> datetime:
    """The UTC instant of a Stockholm wall-clock time, "YYYY-MM-DD HH:MM"."""
    day, clock = when.split()
    return from_local(date.fromisoformat(day), time.fromisoformat(clock))


@contextmanager
def _step(when: str) -> Iterator[None]:
    """One moment of the history: the services run at *when*, then what the workers would have done."""
    with clock_at(_at(when)):
        yield
        handle_pending()


def _demo_history() -> tuple[Programme, User]:
    """The programme's 2016–2017: two challenges, four proposals, a review with a conflict of
    interest, two funded projects with their payments and reports, and administration costs."""
    with _step("2016-01-11 09:00"):
        programme, manager = _demo_programme()
    year_2016, year_2017 = programme.years
    with _step("2016-02-01 10:00"):
        calls.ensure_default_topics()
        challenges = {c.key: _history_challenge(c, year_2016.id) for c in HISTORY_CHALLENGES}
    with _step("2016-02-03 14:00"):
        for challenge in challenges.values():
            calls.approve_challenge(challenge, by=manager)
    proposals_by_key = {}
    for p in sorted(HISTORY_PROPOSALS, key=lambda p: p.submitted):
        with _step(p.submitted):
            proposals_by_key[p.key] = _history_proposal(p, challenges[p.challenge])
    _history_review(challenges, proposals_by_key, manager)

    with _step("2016-06-01 10:00"):  # the ledger books the awards, and the projects start
        for key, kronor in HISTORY_AWARDS.items():
            funding.award_funding(proposals_by_key[key], year_2016, kronor * SEK, by=manager)
    with _step("2016-06-08 11:00"):
        for key in HISTORY_AWARDS:
            _pay_start(proposals_by_key[key], manager)
    with _step("2016-06-30 14:00"):
        _book_admin_cost(year_2016, manager)
    with _step("2016-10-03 09:40"):
        _file_report(proposals_by_key, "crane_sensors", ReportKind.progress)
    with _step("2016-10-05 14:00"):
        projects.approve_report(_report(proposals_by_key["crane_sensors"], ReportKind.progress), by=manager)
    with _step("2016-10-10 11:15"):
        _file_report(proposals_by_key, "weld_model", ReportKind.progress)
    with _step("2016-10-12 09:30"):
        projects.approve_report(_report(proposals_by_key["weld_model"], ReportKind.progress), by=manager)

    with _step("2017-01-09 09:00"):
        funding.open_year(year_2017, by=manager)
    with _step("2017-02-13 15:30"):
        _file_report(proposals_by_key, "crane_sensors", ReportKind.final)
    with _step("2017-02-20 10:00"):  # releases and pays the final instalment
        projects.approve_report(_report(proposals_by_key["crane_sensors"], ReportKind.final), by=manager)
    with _step("2017-03-06 10:00"):
        _book_admin_cost(year_2017, manager)
    with _step("2017-03-14 16:00"):  # left for the programme manager to approve in the demo
        _file_report(proposals_by_key, "weld_model", ReportKind.final)
    for as_of, (written, text) in HISTORY_LESSONS.items():
        with _step(written):
            reports.save_lessons(programme, date.fromisoformat(as_of), text, by=manager)
    return programme, manager


def _demo_programme() -> tuple[Programme, User]:
    """The programme with its two years (the ledger of 2016 opens now, 2017's next January) and
    every demo person."""
    programme = Programme(
        name=PROGRAMME_NAME,
        admin_cap_basis_points=500,
        eur_rate_ore=935,
        return_deadline=date(2018, 3, 31),
        report_dates=REPORT_DATES,
    )
    programme.years = [
        ProgrammeYear(year=2016, allocation_ore=8_000_000 * SEK, requisition_deadline=date(2016, 8, 31)),
        ProgrammeYear(year=2017, allocation_ore=8_000_000 * SEK, requisition_deadline=date(2017, 3, 31)),
    ]
    db.session.add(programme)
    db.session.flush()

    manager = accounts.register_user(name=MANAGER[0], email=MANAGER[1], password=DEMO_PASSWORD, language="sv")
    manager.roles.append(UserRole(role=Role.programme_manager))
    funding.open_year(programme.years[0], by=manager)  # the allocation and the admin envelope

    for org_name, prefix, kind, figures, people in COMPANIES:
        staff, turnover, balance = figures or (None, None, None)
        new_org = accounts.NewOrganisation(
            name=org_name,
            org_number=_org_number(prefix),
            kind=kind,
            staff_headcount=staff,
            annual_turnover_ore=turnover * SEK if turnover is not None else None,
            balance_sheet_total_ore=balance * SEK if balance is not None else None,
        )
        for name, email in people:
            accounts.register_user(
                name=name, email=email, password=DEMO_PASSWORD, language="sv", new_organisation=new_org
            )

    for name, email in EVALUATORS:
        user = accounts.register_user(name=name, email=email, password=DEMO_PASSWORD, language="en")
        accounts.grant_role(user, Role.evaluator, by=manager)
    db.session.flush()
    return programme, manager


def _history_challenge(c: HistoryChallenge, programme_year_id: int) -> Challenge:
    """Drafted and submitted for approval by its owner."""
    owner = _person(c.owner)
    challenge = calls.create_challenge(
        calls.ChallengeContent(
            programme_year_id=programme_year_id,
            title=c.title,
            summary=c.summary,
            description=f"## Background\n\n{c.summary}\n\n## What we have today\n\n"
            "Maintenance and process records from the last five years, and engineers who know the "
            "equipment.\n\n- Data can be shared under the agreement\n- Site visits can be arranged",
            area_id=calls.topic_named(TopicKind.area, c.area).id,
            theme_ids=[calls.topic_named(TopicKind.theme, t).id for t in c.themes],
            must_demonstrate="A working prototype tested in our plant, with measured results.",
            max_funding_ore=c.max_sek * SEK,
            awards_planned=1,
            deadline=_at(c.deadline),
            agreement=AGREEMENT,
            contact_name=owner.name,
            contact_email=owner.email,
            criteria=CRITERIA,
            offers=["data_sets", "test_environment", "mentoring"],
            offers_details="Data from the plant, time on the line for a pilot, and a named mentor.",
        ),
        by=owner,
    )
    calls.submit_challenge(challenge, by=owner)
    return challenge


def _history_proposal(p: HistoryProposal, challenge: Challenge) -> Proposal:
    """Started and submitted by its SME."""
    person = _person(p.applicant)
    partners = []
    if p.partner is not None:
        name, number, role = p.partner
        partners.append({"name": name, "org_number": number, "kind": "university", "role": role})
    proposal = proposals.start_proposal(
        challenge,
        ProposalContent(
            title=p.title,
            summary=p.summary,
            solution=f"## Approach\n\n{p.summary}\n\n## Work plan\n\n"
            + "\n".join(f"- {title} ({due})" for due, title, _d in p.milestones),
            fit=f"Answers “{challenge.title}” with a pilot in the company's own plant.",
            milestones=[
                {"title": title, "due": due, "deliverable": deliverable}
                for due, title, deliverable in p.milestones
            ],
            requested_ore=sum(p.budget_sek.values()) * SEK,
            budget={line: kronor * SEK for line, kronor in p.budget_sek.items()},
            team_ids=[person.id],
            partners=partners,
            accept_agreement=True,
        ),
        by=person,
    )
    proposals.submit_proposal(proposal, by=person)
    return proposal


def _history_review(challenges: dict[str, Challenge], by_key: dict[str, Proposal], manager: User) -> None:
    """The deadline closes both challenges and the worker opens their reviews; screening, two
    evaluators per proposal, a conflict of interest, the reviews, the decisions."""
    with _step("2016-04-15 12:00"):
        for challenge in challenges.values():
            calls.close_challenge(challenge)
    keys = {proposal.id: key for key, proposal in by_key.items()}
    with _step("2016-04-18 09:30"):
        for challenge in challenges.values():
            review = _review(challenge)
            reviews.update_settings(
                review,
                reviews.ReviewSettings(
                    review_deadline=review.review_deadline,
                    evaluators_per_proposal=2,
                    max_per_evaluator=review.max_per_evaluator,
                    blind=review.blind,
                    calibration=review.calibration,
                    disagreement_tenths=review.disagreement_tenths,
                ),
                by=manager,
            )
            for assessment in review.assessments:
                key = keys[assessment.proposal_id]
                reviews.screen_proposal(
                    assessment, eligible=key not in INELIGIBLE, reason=INELIGIBLE.get(key, ""), by=manager
                )
            reviews.assign_automatically(review, by=manager)
    evaluator, org_name, relation, when = CONFLICT
    with _step(when):  # the worker steps the evaluator back and finds nobody else free
        org = db.session.scalar(sa.select(Organisation).where(Organisation.name == org_name))
        assert org is not None
        reviews.declare_conflict(_person(evaluator), org.org_number, "", relation)
    for key, email, when, scores, comment in HISTORY_REVIEWS:
        with _step(when):
            person = _person(email)
            assessment = _assessment(by_key[key])
            assignment = next(a for a in assessment.active_assignments if a.evaluator_id == person.id)
            criteria = assessment.review.challenge.criteria
            reviews.submit_review(
                assignment, {c.id: s for c, s in zip(criteria, scores, strict=True)}, comment, "", by=person
            )
    with _step("2016-05-16 15:00"):
        for key, (decision, reason) in DECISIONS.items():
            reviews.decide_proposal(_assessment(by_key[key]), decision, reason, by=manager)
        for challenge in challenges.values():
            reviews.publish_decisions(_review(challenge), by=manager)


def _review(challenge: Challenge) -> ChallengeReview:
    review = reviews.review_of(challenge)
    assert review is not None
    return review


def _assessment(proposal: Proposal) -> Assessment:
    assessment = reviews.assessment_of(proposal)
    assert assessment is not None
    return assessment


def _pay_start(proposal: Proposal, manager: User) -> None:
    award = funding.current_award(proposal)
    assert award is not None
    for instalment in award.instalments:
        if instalment.condition is InstalmentCondition.start:
            funding.approve_payment(instalment, by=manager)


def _book_admin_cost(year: ProgrammeYear, manager: User) -> None:
    kronor, memo = HISTORY_ADMIN_COSTS[year.year]
    funding.book_admin_cost(year, kronor * SEK, memo, by=manager)


def _report(proposal: Proposal, kind: ReportKind) -> ProjectReport:
    award = funding.current_award(proposal)
    assert award is not None
    report = db.session.scalar(
        sa.select(ProjectReport).join(Project).where(Project.award_id == award.id, ProjectReport.kind == kind)
    )
    assert report is not None
    return report


def _file_report(by_key: dict[str, Proposal], key: str, kind: ReportKind) -> None:
    applicant = _person(next(p.applicant for p in HISTORY_PROPOSALS if p.key == key))
    projects.submit_report(_report(by_key[key], kind), HISTORY_REPORTS[key, kind], by=applicant)
