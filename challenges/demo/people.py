"""The demo's people and companies, the one password they share, and the terms its challenges use."""

from __future__ import annotations

from stdnum import luhn

from challenges.accounts.models import OrganisationKind, User
from challenges.accounts.people import user_by_email

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


def _person(email: str) -> User:
    user = user_by_email(email)
    assert user is not None
    return user


AGREEMENT = """Applicants keep the intellectual property in their own background and in the results they
create. The company gets a first right to negotiate a licence for use in its own plants.

Everything the company shares about its plants is **confidential** and may only be used to
prepare the proposal and run the project."""

CRITERIA = [("Potential", 40), ("Team and capacity", 30), ("Feasibility of implementation", 30)]
