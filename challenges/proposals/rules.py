"""What a proposal must be: the limits of each field, the checks of its content as a whole, the rules
of eligibility (the EU's definition of an SME among them), and who is on a proposal's team. Pure
reads: nothing here changes state."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

import sqlalchemy as sa
from flask_babel import gettext as _
from sqlalchemy.orm import joinedload, selectinload
from stdnum.exceptions import ValidationError as NumberError
from stdnum.se import orgnr

from challenges.accounts.models import Membership, MembershipState, Organisation, OrganisationKind, User
from challenges.calls.models import Challenge, ChallengeStatus
from challenges.core.errors import InvalidInput
from challenges.core.formatting import local_datetime, sek
from challenges.extensions import db
from challenges.proposals.models import (
    BudgetLine,
    PartnerKind,
    Proposal,
    ProposalStatus,
    ProposalVersion,
)
from challenges.proposals.versions import unsubmitted_changes

# The longest text each field takes (forms use the same numbers).
LIMITS = {
    "title": 200,
    "summary": 500,
    "solution": 20000,
    "fit": 10000,
    "milestone": 200,
    "deliverable": 1000,
    "partner": 200,
    "role": 500,
}


MAX_MILESTONES = 8


MAX_PARTNERS = 4


# The EU definition of a small or medium-sized enterprise (Recommendation 2003/361/EC).
SME_MAX_STAFF = 250  # fewer than


SME_MAX_TURNOVER_EUR = 50_000_000


SME_MAX_BALANCE_EUR = 43_000_000


@dataclass
class ProposalContent:
    """Everything an applicant writes in a proposal; checked as a whole by ``check_content``.

    Milestones are ``{"title", "due" (ISO date), "deliverable"}``; partners are
    ``{"name", "org_number", "kind", "role"}``; money is integer öre.
    """

    title: str
    summary: str = ""
    solution: str = ""
    fit: str = ""
    milestones: list[dict[str, str]] = field(default_factory=list)
    requested_ore: int | None = None
    budget: dict[str, int] = field(default_factory=dict)
    team_ids: list[int] = field(default_factory=list)
    partners: list[dict[str, str]] = field(default_factory=list)
    accept_agreement: bool = False

    @classmethod
    def of(cls, proposal: Proposal) -> ProposalContent:
        return cls(
            title=proposal.title,
            summary=proposal.summary,
            solution=proposal.solution,
            fit=proposal.fit,
            milestones=[dict(m) for m in proposal.milestones],
            requested_ore=proposal.requested_ore,
            budget={line.value: ore for line, ore in proposal.budget().items()},
            team_ids=[u.id for u in proposal.team],
            partners=[dict(p) for p in proposal.partners],
            accept_agreement=proposal.agreement_accepted_at is not None,
        )


def working_teams(challenge: Challenge, *, unsubmitted_only: bool) -> list[User]:
    """The current teams of the proposals to *challenge* that are not withdrawn (or, with
    *unsubmitted_only*, that are drafts or have changes not yet submitted), less anyone no
    longer an active member of the organisation."""
    proposals = db.session.scalars(
        sa.select(Proposal)
        .where(Proposal.challenge_id == challenge.id, Proposal.status != ProposalStatus.withdrawn)
        .order_by(Proposal.id)
        .options(joinedload(Proposal.organisation), selectinload(Proposal.team))
    ).all()
    changed = unsubmitted_changes(proposals) if unsubmitted_only else set()
    people: dict[int, User] = {}
    members: dict[int, set[int]] = {}  # per organisation, asked once
    for proposal in proposals:
        if unsubmitted_only and proposal.status is not ProposalStatus.draft and proposal.id not in changed:
            continue
        if proposal.organisation_id not in members:
            members[proposal.organisation_id] = {u.id for u in team_candidates(proposal.organisation)}
        people.update((u.id, u) for u in proposal.team if u.id in members[proposal.organisation_id])
    return list(people.values())


def applicant_team(proposal: Proposal, version: ProposalVersion | None = None) -> list[User]:
    """The team of *version* (by default the latest submitted one; the current team of a draft),
    less anyone no longer an active member of the organisation."""
    members = {u.id: u for u in team_candidates(proposal.organisation)}
    version = version or proposal.latest_version
    ids = [p["id"] for p in version.content["team"]] if version is not None else [u.id for u in proposal.team]
    return [members[i] for i in ids if i in members]


def team_candidates(org: Organisation) -> list[User]:
    """The people who can be on a proposal of *org*: its active, approved members."""
    return list(
        db.session.scalars(
            sa.select(User)
            .join(Membership, Membership.user_id == User.id)
            .where(
                Membership.organisation_id == org.id,
                Membership.state == MembershipState.approved,
                User.active.is_(True),
            )
            .order_by(User.name)
        )
    )


def check_content(
    content: ProposalContent, challenge: Challenge, org: Organisation, *, complete: bool = False
) -> None:
    """Raise InvalidInput naming every field that breaks a rule.

    A draft may be incomplete; *complete* adds what a submission needs.
    """
    errors: dict[str, str] = {}
    title = content.title.strip()
    if not title:
        errors["title"] = _("Enter a title.")
    for name in ("title", "summary", "solution", "fit"):
        if len(getattr(content, name)) > LIMITS[name]:
            errors[name] = _("Use at most %(n)s characters.", n=LIMITS[name])
    if complete:
        for name, message in (
            ("summary", _("Write a short summary of the proposal.")),
            ("solution", _("Describe your solution.")),
            ("fit", _("Say how the solution meets what the challenge asks.")),
        ):
            if name not in errors and not getattr(content, name).strip():
                errors[name] = message
    if (problem := _money_problem(content, challenge, complete)) is not None:
        errors[problem[0]] = problem[1]
    if (message := _milestones_problem(content.milestones, complete)) is not None:
        errors["milestones"] = message
    if (message := _partners_problem(content.partners)) is not None:
        errors["partners"] = message
    members = {u.id for u in team_candidates(org)}
    if not content.team_ids:
        errors["team"] = _("Choose at least one person from your organisation for the team.")
    elif not set(content.team_ids) <= members:
        errors["team"] = _("Choose team members from your organisation's members.")
    if complete and not content.accept_agreement:
        errors["accept_agreement"] = _(
            "Accept the challenge agreement to submit: every applicant to this challenge accepts it."
        )
    if errors:
        raise InvalidInput(errors)


def _money_problem(content: ProposalContent, challenge: Challenge, complete: bool) -> tuple[str, str] | None:
    requested = content.requested_ore
    lines = {line: content.budget.get(line.value, 0) or 0 for line in BudgetLine}
    if requested is not None and requested < 0:
        return "requested", _("The requested funding cannot be negative.")
    if requested is not None and requested > challenge.max_funding_ore:
        return "requested", _(
            "You can request at most %(max)s, the challenge's maximum per proposal.",
            max=sek(challenge.max_funding_ore),
        )
    for line, ore in lines.items():
        if ore < 0:
            return f"budget_{line.value}", _("A budget line cannot be negative.")
    if complete and not requested:
        return "requested", _("Enter the funding you request, in kronor.")
    total = sum(lines.values())
    if (requested or 0) != total:
        return "requested", _(
            "The budget lines add up to %(total)s but you request %(requested)s. Make them add up to the "
            "request.",
            total=sek(total),
            requested=sek(requested or 0),
        )
    return None


def _milestones_problem(milestones: list[dict[str, str]], complete: bool) -> str | None:
    if len(milestones) > MAX_MILESTONES:
        return _("Give at most %(n)s milestones.", n=MAX_MILESTONES)
    for row, m in enumerate(milestones, start=1):
        if not m.get("title", "").strip() or not m.get("due"):
            return _("Milestone %(row)s: give both a name and a date.", row=row)
        if len(m["title"]) > LIMITS["milestone"] or len(m.get("deliverable", "")) > LIMITS["deliverable"]:
            return _(
                "Milestone %(row)s: use at most %(n)s characters for the name and %(d)s for the deliverable.",
                row=row,
                n=LIMITS["milestone"],
                d=LIMITS["deliverable"],
            )
        try:
            date.fromisoformat(m["due"])
        except ValueError:
            return _("Milestone %(row)s: enter a real date, for example 2026-03-31.", row=row)
    if complete and not milestones:
        return _("Give at least one milestone with its date: the work plan.")
    return None


def _partners_problem(partners: list[dict[str, str]]) -> str | None:
    if len(partners) > MAX_PARTNERS:
        return _("Give at most %(n)s partner organisations.", n=MAX_PARTNERS)
    for row, p in enumerate(partners, start=1):
        if not p.get("name", "").strip():
            return _("Partner %(row)s: give the organisation's name.", row=row)
        if len(p["name"]) > LIMITS["partner"] or len(p.get("role", "")) > LIMITS["role"]:
            return _(
                "Partner %(row)s: use at most %(n)s characters for the name and %(r)s for the role.",
                row=row,
                n=LIMITS["partner"],
                r=LIMITS["role"],
            )
        if p.get("kind") not in {k.value for k in PartnerKind}:
            return _("Partner %(row)s: choose what kind of organisation it is.", row=row)
        if p.get("org_number") and not orgnr.is_valid(p["org_number"]):
            return _(
                "The organisation number of %(name)s is not valid. Check it, or leave it empty.",
                name=p["name"],
            )
    return None


def deadline_passed_message(challenge: Challenge) -> str:
    if challenge.status in (ChallengeStatus.draft, ChallengeStatus.submitted):
        return _("This challenge is not open for proposals.")
    return _(
        "The deadline for this challenge passed at %(deadline)s (Swedish time). Proposals can no "
        "longer be submitted or changed.",
        deadline=local_datetime(challenge.deadline),
    )


def eligibility_problems(
    org: Organisation, challenge: Challenge, now: datetime | None = None
) -> dict[str, str]:
    """Why *org* may not submit to *challenge* now: each rule that fails, and what to change."""
    problems: dict[str, str] = {}
    if not challenge.is_open(now):
        problems["eligibility.open"] = deadline_passed_message(challenge)
    if org.kind is not OrganisationKind.sme:
        problems["eligibility.kind"] = _("Only small and medium-sized enterprises can submit proposals.")
        return problems
    try:
        orgnr.validate(org.org_number)
    except NumberError:
        problems["eligibility.org_number"] = _(
            "Your organisation number %(number)s is not a valid Swedish organisation number. Correct it on "
            "your organisation page.",
            number=org.org_number,
        )
    rate = challenge.programme_year.programme.eur_rate_ore
    staff = org.staff_headcount or 0
    if staff >= SME_MAX_STAFF:
        problems["eligibility.staff"] = _(
            "Under the EU definition an SME has fewer than 250 staff; your organisation reports %(n)s. If that "
            "figure is out of date, correct it on your organisation page.",
            n=staff,
        )
    turnover_cap, balance_cap = SME_MAX_TURNOVER_EUR * rate, SME_MAX_BALANCE_EUR * rate
    if (org.annual_turnover_ore or 0) > turnover_cap and (org.balance_sheet_total_ore or 0) > balance_cap:
        problems["eligibility.finances"] = _(
            "Under the EU definition an SME has an annual turnover of at most €50 million (%(turnover_cap)s "
            "at the programme's rate of %(rate)s per euro) or a balance-sheet total of at most €43 million "
            "(%(balance_cap)s); your organisation reports %(turnover)s and %(balance)s. If these figures are "
            "out of date, correct them on your organisation page.",
            turnover_cap=sek(turnover_cap),
            balance_cap=sek(balance_cap),
            rate=sek(rate),
            turnover=sek(org.annual_turnover_ore),
            balance=sek(org.balance_sheet_total_ore),
        )
    return problems
