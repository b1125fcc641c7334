"""The demo's history as records: the challenges of 2016 and 2017, the proposals to them, the reviews,
decisions, awards, administration costs, project reports and the programme manager's lessons, each
with the Stockholm time it happened at."""

from __future__ import annotations

from typing import NamedTuple

from challenges.demo.people import (
    SEK,
)
from challenges.projects import services as projects
from challenges.projects.models import ReportKind
from challenges.reviews.models import Decision, Relation

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
