"""Demo data for a first run: the 2016–2017 programme and a few people in every role."""

from __future__ import annotations

from datetime import date

import sqlalchemy as sa
from stdnum import luhn

from challenges.accounts import services as accounts
from challenges.accounts.models import OrganisationKind, Role, UserRole
from challenges.extensions import db
from challenges.funding.models import Programme, ProgrammeYear

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
    programme = Programme(name=PROGRAMME_NAME, admin_cap_basis_points=500,
                          return_deadline=date(2018, 3, 31))
    programme.years = [
        ProgrammeYear(year=2016, allocation_ore=8_000_000 * SEK, requisition_deadline=date(2016, 8, 31)),
        ProgrammeYear(year=2017, allocation_ore=8_000_000 * SEK, requisition_deadline=date(2017, 3, 31)),
    ]
    db.session.add(programme)

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
    db.session.flush()
    return True
