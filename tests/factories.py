"""Plain ``make_<thing>()`` functions that put rows straight into the database."""

from __future__ import annotations

import itertools

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
from challenges.core.security import hash_password
from challenges.extensions import db

TEST_PASSWORD = "correct horse battery staple"
_seq = itertools.count(1)


def valid_org_number(n: int | None = None) -> str:
    prefix = f"55{(n if n is not None else next(_seq)) % 10_000_000:07d}"
    digits = prefix + luhn.calc_check_digit(prefix)
    return f"{digits[:6]}-{digits[6:]}"


def make_org(kind: OrganisationKind = OrganisationKind.sme, name: str | None = None) -> Organisation:
    n = next(_seq)
    org = Organisation(
        name=name or f"Company {n} AB", org_number=valid_org_number(n), kind=kind,
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
    user = User(email=email or f"person{next(_seq)}@example.com", name=name, language=language,
                password_hash=hash_password(password), active=active)
    db.session.add(user)
    if org is not None:
        db.session.add(Membership(user=user, organisation=org, state=state))
    for role in roles:
        user.roles.append(UserRole(role=role))
    db.session.flush()
    return user


def make_manager(email: str = "manager@agency.example.com") -> User:
    return make_user(email, name="Programme Manager", roles=(Role.programme_manager,))
