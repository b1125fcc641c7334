"""Plain ``make_<thing>()`` functions that put rows straight into the database."""

from __future__ import annotations

import itertools
from datetime import timedelta

import sqlalchemy as sa
from stdnum import luhn

from challenges.accounts.models import (
    Membership,
    MembershipState,
    Organisation,
    OrganisationKind,
    Role,
    User,
    UserRole,
)
from challenges.calls import services
from challenges.calls.models import Challenge, ChallengeStatus, Topic
from challenges.calls.services import ChallengeContent
from challenges.calls.topics import ensure_default_topics
from challenges.core.models import utcnow
from challenges.core.security import hash_password
from challenges.extensions import db
from challenges.funding.models import Programme, ProgrammeYear

TEST_PASSWORD = "correct horse battery staple"
_seq = itertools.count(1)


def valid_org_number(n: int | None = None) -> str:
    prefix = f"55{(n if n is not None else next(_seq)) % 10_000_000:07d}"
    digits = prefix + luhn.calc_check_digit(prefix)
    return f"{digits[:6]}-{digits[6:]}"


def make_org(kind: OrganisationKind = OrganisationKind.sme, name: str | None = None) -> Organisation:
    n = next(_seq)
    org = Organisation(
        name=name or f"Company {n} AB",
        org_number=valid_org_number(n),
        kind=kind,
        staff_headcount=10 if kind is OrganisationKind.sme else None,
        annual_turnover_ore=5_000_000_00 if kind is OrganisationKind.sme else None,
        balance_sheet_total_ore=2_000_000_00 if kind is OrganisationKind.sme else None,
    )
    db.session.add(org)
    db.session.flush()
    return org


def make_user(
    email: str | None = None,
    *,
    name: str = "Test Person",
    org: Organisation | None = None,
    state: MembershipState = MembershipState.approved,
    roles: tuple[Role, ...] = (),
    password: str = TEST_PASSWORD,
    language: str = "en",
    active: bool = True,
) -> User:
    user = User(
        email=email or f"person{next(_seq)}@example.com",
        name=name,
        language=language,
        password_hash=hash_password(password),
        active=active,
    )
    db.session.add(user)
    if org is not None:
        db.session.add(Membership(user=user, organisation=org, state=state))
    for role in roles:
        user.roles.append(UserRole(role=role))
    db.session.flush()
    return user


def make_manager(email: str = "manager@agency.example.com") -> User:
    return make_user(email, name="Programme Manager", roles=(Role.programme_manager,))


# --- challenges ------------------------------------------------------------------------------


def make_year(year: int = 2026, allocation_sek: int = 8_000_000) -> ProgrammeYear:
    programme = db.session.scalar(sa.select(Programme).where(Programme.name == "Test programme"))
    if programme is None:
        programme = Programme(name="Test programme", admin_cap_basis_points=500)
        db.session.add(programme)
    row = next((y for y in programme.years if y.year == year), None)
    if row is None:
        row = ProgrammeYear(programme=programme, year=year, allocation_ore=allocation_sek * 100)
        db.session.add(row)
        db.session.flush()
    return row


def topics() -> dict[str, Topic]:
    """The default areas and themes, by English name."""
    ensure_default_topics()
    return {t.name_en: t for t in db.session.scalars(sa.select(Topic))}


def challenge_content(year: ProgrammeYear | None = None, **changes) -> ChallengeContent:
    by_name = topics()
    values = dict(
        programme_year_id=(year or make_year()).id,
        title="Detect cracks in cast parts",
        summary="Find cracks in cast parts before machining.",
        description="## Background\n\nWe cast **engine blocks**.",
        area_id=by_name["Data"].id,
        theme_ids=[by_name["Sensors"].id],
        must_demonstrate="A prototype on our parts.",
        max_funding_ore=500_000_00,
        awards_planned=2,
        deadline=utcnow() + timedelta(days=30),
        agreement="Results belong to the applicant.",
        contact_name="Anna Owner",
        contact_email="anna@industry.example.com",
        criteria=[("Relevance", 60), ("Feasibility", 40)],
        offers=["data_sets"],
        offers_details="Three years of data.",
    )
    values.update(changes)
    return ChallengeContent(**values)


def make_challenge(owner: User, status: ChallengeStatus = ChallengeStatus.published, **changes) -> Challenge:
    """A challenge taken through the real services up to *status*."""
    manager = db.session.scalar(sa.select(User).where(User.email == "factory-manager@agency.example.com"))
    manager = manager or make_manager("factory-manager@agency.example.com")
    challenge = services.create_challenge(challenge_content(**changes), by=owner)
    path = ["submit", "approve", "close", "start_review", "decide", "archive"]
    order = [
        ChallengeStatus.draft,
        ChallengeStatus.submitted,
        ChallengeStatus.published,
        ChallengeStatus.closed,
        ChallengeStatus.in_review,
        ChallengeStatus.decided,
        ChallengeStatus.archived,
    ]
    for action in path[: order.index(status)]:
        if action == "close":
            challenge.deadline = utcnow() - timedelta(seconds=1)
            services.close_challenge(challenge)
        elif action == "submit":
            services.submit_challenge(challenge, by=owner)
        else:
            services.ACTIONS[action](challenge, by=manager)
    db.session.flush()
    return challenge
