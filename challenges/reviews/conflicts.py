"""The conflict-of-interest rules: who may not judge between an applicant and a challenge's owner.

An evaluator has a conflict with an organisation they declared a relation with, one they are an
approved member of, or one whose members share their email domain (public mail domains aside). One
:class:`ConflictIndex` reads what the rules need once, for a page or an assignment run, and every
door asks it: the review desk, the assignment, the evaluator's pages, the worker's checks.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from typing import Any, Protocol

import sqlalchemy as sa
from flask_babel import gettext as _

from challenges.accounts.models import Membership, MembershipState, User
from challenges.extensions import db
from challenges.proposals.models import Proposal
from challenges.reviews.models import ConflictDeclaration

# Addresses at these domains say nothing about who someone works for.
PUBLIC_MAIL_DOMAINS = frozenset(
    {
        "gmail.com",
        "hotmail.com",
        "outlook.com",
        "live.com",
        "yahoo.com",
        "icloud.com",
        "me.com",
        "proton.me",
        "protonmail.com",
        "telia.com",
        "bredband.net",
    }
)


def _domain(email: str) -> str:
    return email.rsplit("@", 1)[-1].lower()  # pragma: no mutate (a stored address holds one @)


def conflict_rows(evaluators: Any = None, organisations: Any = None) -> sa.CompoundSelect:
    """Declarations (evaluator, organisation number, NULL) and approved memberships (person, address,
    organisation) in one statement; narrowed when given to the declarations of the *evaluators* and
    the memberships of those evaluators and of the *organisations* (each anything ``in_`` takes:
    values, a bound list, or columns of an enclosing statement)."""
    declarations = sa.select(
        ConflictDeclaration.evaluator_id, ConflictDeclaration.org_number, sa.cast(sa.null(), sa.Integer)
    ).correlate_except(ConflictDeclaration)
    members = (
        sa.select(User.id, User.email, Membership.organisation_id)
        .join(Membership, Membership.user_id == User.id)
        .where(Membership.state == MembershipState.approved)
        .correlate_except(User, Membership)
    )
    if evaluators is not None:
        declarations = declarations.where(ConflictDeclaration.evaluator_id.in_(evaluators))
        members = members.where(
            sa.or_(User.id.in_(evaluators), Membership.organisation_id.in_(organisations))
        )
    return sa.union_all(declarations, members)


@functools.cache
def _conflict_query(narrowed: bool) -> sa.CompoundSelect:
    """Built once; *narrowed* to the ``evaluators`` and ``organisations`` given as parameters."""
    if not narrowed:
        return conflict_rows()
    return conflict_rows(
        sa.bindparam("evaluators", expanding=True), sa.bindparam("organisations", expanding=True)
    )


class ConflictIndex:
    """What conflict checks read, loaded once per page or assignment run rather than per pair: for
    the given evaluators and organisations only, or for everyone when not narrowed; or from the
    *rows* of ``conflict_rows`` that a page's own statement read."""

    def __init__(
        self,
        evaluator_ids: Iterable[int] | None = None,
        organisation_ids: Iterable[int] | None = None,
        *,
        rows: Iterable[Sequence[Any]] | None = None,
    ) -> None:
        if evaluator_ids is not None and organisation_ids is None:
            raise ValueError(
                "narrow to evaluators and organisations together"
            )  # it must know whose conflicts
        if rows is None:
            narrowed = evaluator_ids is not None
            params = {"evaluators": list(evaluator_ids or ()), "organisations": list(organisation_ids or ())}
            rows = db.session.execute(_conflict_query(narrowed), params if narrowed else {})
        self.declared: dict[int, set[str]] = {}
        self.domains: dict[int, set[str]] = {}
        self.member_of: dict[int, int] = {}
        for person_id, text, org_id in rows:
            if org_id is None:  # a declaration: the evaluator and an organisation number
                self.declared.setdefault(person_id, set()).add(text)
            else:  # a membership: the member's address and organisation
                self.domains.setdefault(org_id, set()).add(_domain(text))
                self.member_of[person_id] = org_id

    @classmethod
    def of(cls, evaluator: User, proposals: Iterable[Proposal]) -> ConflictIndex:
        """Narrowed to one evaluator and the applicants and owners of *proposals*."""
        return cls(
            [evaluator.id],
            {org_id for p in proposals for org_id in (p.organisation_id, p.challenge.organisation_id)},
        )

    def reasons(self, evaluator: User, proposal: Proposal) -> list[str]:
        return self.reasons_about(evaluator, parties(proposal))

    def reasons_about(self, evaluator: User, organisations: Iterable[Party]) -> list[str]:
        """Why *evaluator* may not judge between *organisations* (the applicant and the challenge's owner)."""
        reasons = []
        domain = _domain(evaluator.email)
        for org in organisations:
            if org.org_number in self.declared.get(evaluator.id, set()):
                reasons.append(_("declared relation with %(org)s", org=org.name))
            if self.member_of.get(evaluator.id) == org.id:
                reasons.append(_("member of %(org)s", org=org.name))
            if domain not in PUBLIC_MAIL_DOMAINS and domain in self.domains.get(org.id, set()):
                reasons.append(_("same email domain as %(org)s (%(domain)s)", org=org.name, domain=domain))
        return reasons


class Party(Protocol):
    """An organisation as the conflict checks read it: a model, or a row of a page's statement."""

    @property
    def id(self) -> int: ...
    @property
    def org_number(self) -> str: ...
    @property
    def name(self) -> str: ...


def parties(proposal: Proposal) -> tuple[Party, Party]:
    """The applicant and the challenge's owner: the organisations an evaluator must have no tie to."""
    return proposal.organisation, proposal.challenge.organisation


def conflict_reasons(evaluator: User, proposal: Proposal, index: ConflictIndex | None = None) -> list[str]:
    """Why *evaluator* may not review *proposal*: a declared relation, membership or email domain
    shared with the applicant or the challenge owner. Empty when there is no conflict."""
    return (index or ConflictIndex.of(evaluator, [proposal])).reasons(evaluator, proposal)
