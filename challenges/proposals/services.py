"""Every change to proposals: drafting, attachments, submission with eligibility, withdrawal.

Services take the acting user (``by=``), check permission and the deadline (to the
second, with ``now`` for tests), change state, record the event, flush and never commit.
"""

from __future__ import annotations

import difflib
import functools
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from flask_babel import gettext as _
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import joinedload, selectinload
from stdnum.exceptions import ValidationError as NumberError
from stdnum.se import orgnr

from challenges.accounts.models import Membership, MembershipState, Organisation, OrganisationKind, User
from challenges.calls.models import Challenge, ChallengeStatus
from challenges.core.errors import InvalidInput, PermissionDenied, ServiceError
from challenges.core.events import record
from challenges.core.formatting import local_datetime, sek
from challenges.core.models import utcnow
from challenges.core.transaction import on_rollback
from challenges.extensions import db
from challenges.proposals import events, files
from challenges.proposals.models import (
    BUDGET_LABELS,
    PARTNER_LABELS,
    BudgetLine,
    PartnerKind,
    Proposal,
    ProposalAttachment,
    ProposalStatus,
    ProposalVersion,
    proposal_member,
)

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


# --- the rules ---------------------------------------------------------------------------------


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


# --- drafting ------------------------------------------------------------------------------------


def _require_open(challenge: Challenge, now: datetime | None) -> None:
    """Refuse unless the challenge is open, holding its row (FOR SHARE on PostgreSQL) until the
    commit: the close at the deadline waits for a change in flight, so its digest sees it."""
    db.session.flush()
    db.session.execute(sa.select(Challenge.id).where(Challenge.id == challenge.id).with_for_update(read=True))
    db.session.expire(challenge)
    if not challenge.is_open(now):
        raise ServiceError(deadline_passed_message(challenge))


def _require_change(proposal: Proposal, by: User, now: datetime | None) -> None:
    if not proposal.is_team_side(by):
        raise PermissionDenied(_("Only members of the organisation that wrote this proposal can change it."))
    _require_open(proposal.challenge, now)


def _apply(proposal: Proposal, content: ProposalContent, by: User) -> None:
    proposal.title = content.title.strip()
    proposal.summary = content.summary.strip()
    proposal.solution = content.solution
    proposal.fit = content.fit
    proposal.milestones = [
        {"title": m["title"].strip(), "due": m["due"], "deliverable": m.get("deliverable", "").strip()}
        for m in content.milestones
    ]
    proposal.partners = [
        {
            "name": p["name"].strip(),
            "org_number": (orgnr.format(p["org_number"]) if p.get("org_number") else ""),
            "kind": p["kind"],
            "role": p.get("role", "").strip(),
        }
        for p in content.partners
    ]
    proposal.requested_ore = content.requested_ore
    for line in BudgetLine:
        setattr(proposal, f"budget_{line.value}_ore", content.budget.get(line.value, 0) or 0)
    proposal.team = list(db.session.scalars(sa.select(User).where(User.id.in_(content.team_ids))))
    if content.accept_agreement and proposal.agreement_accepted_at is None:
        proposal.agreement_accepted_at, proposal.agreement_accepted_by_id = utcnow(), by.id
    elif not content.accept_agreement:
        proposal.agreement_accepted_at = proposal.agreement_accepted_by_id = None


def proposal_of(org: Organisation, challenge: Challenge) -> Proposal | None:
    return db.session.scalar(
        sa.select(Proposal).where(Proposal.organisation_id == org.id, Proposal.challenge_id == challenge.id)
    )


def start_proposal(
    challenge: Challenge, content: ProposalContent, *, by: User, now: datetime | None = None
) -> Proposal:
    """A new draft by *by*'s organisation, which must be an SME, to an open challenge."""
    org = by.organisation
    if not (by.active and org is not None and org.kind is OrganisationKind.sme):
        raise PermissionDenied(_("Only members of a small or medium-sized enterprise can write proposals."))
    _require_open(challenge, now)
    taken = ServiceError(
        _(
            "Your organisation already has a proposal for this challenge. Continue with it "
            "from “Your proposals”."
        )
    )
    if proposal_of(org, challenge) is not None:
        raise taken
    check_content(content, challenge, org)
    proposal = Proposal(
        challenge=challenge, organisation_id=org.id, created_by_id=by.id, status=ProposalStatus.draft
    )
    _apply(proposal, content, by)
    try:
        with db.session.begin_nested():  # a colleague may have started one at the same moment
            db.session.add(proposal)
            db.session.flush()
    except IntegrityError:
        raise taken from None
    record(events.ProposalStarted(proposal_id=proposal.id, challenge_id=challenge.id), by=by)
    return proposal


def update_proposal(
    proposal: Proposal,
    content: ProposalContent,
    *,
    by: User,
    now: datetime | None = None,
    revision: int | None = None,
) -> None:
    """Change the working copy; a submitted proposal keeps its submitted version until resubmitted.

    *revision* is the one the person started editing from: if a colleague has saved since,
    the save is refused rather than silently overwriting their work.
    """
    _require_change(proposal, by, now)
    _require_not_withdrawn(proposal)
    if revision is not None and revision != proposal.revision:
        raise ServiceError(
            _(
                "Someone in your organisation saved this proposal after you opened it. Nothing has "
                "been saved: copy what you wrote, open the proposal again and add your changes."
            )
        )
    check_content(content, proposal.challenge, proposal.organisation)
    _apply(proposal, content, by)
    proposal.revision += 1
    db.session.flush()


def _require_not_withdrawn(proposal: Proposal) -> None:
    if proposal.status is ProposalStatus.withdrawn:
        raise ServiceError(_("This proposal has been withdrawn. Reopen it as a draft to change it."))


# --- submission, withdrawal ---------------------------------------------------------------------


def submit_proposal(proposal: Proposal, *, by: User, now: datetime | None = None) -> ProposalVersion:
    """Freeze the working copy as the next numbered version, if it is complete and eligible."""
    _require_change(proposal, by, now)
    _require_not_withdrawn(proposal)
    content = ProposalContent.of(proposal)
    problems: dict[str, str] = {}
    try:
        check_content(content, proposal.challenge, proposal.organisation, complete=True)
    except InvalidInput as exc:
        problems.update(exc.errors)
    problems.update(eligibility_problems(proposal.organisation, proposal.challenge, now))
    if problems:
        raise InvalidInput(problems)
    if proposal.status is ProposalStatus.submitted and not has_unsubmitted_changes(proposal):
        raise ServiceError(
            _(
                "Nothing has changed since version %(n)s, so there is nothing new to submit.",
                n=proposal.version,
            )
        )
    at = now or utcnow()
    proposal.version += 1
    proposal.status = ProposalStatus.submitted
    proposal.submitted_at = at
    proposal.withdrawn_at = None
    db.session.flush()
    row = record(
        events.ProposalSubmitted(
            proposal_id=proposal.id, challenge_id=proposal.challenge_id, number=proposal.version
        ),
        by=by,
    )
    version = ProposalVersion(
        proposal=proposal,
        number=proposal.version,
        content=snapshot(proposal),
        submitted_at=at,
        submitted_by_id=by.id,
        event_id=row.id,
    )
    db.session.add(version)
    db.session.flush()
    return version


def withdraw_proposal(proposal: Proposal, *, by: User, now: datetime | None = None) -> None:
    """Take a submitted proposal out of the competition; it can be reopened before the deadline."""
    _require_change(proposal, by, now)
    if proposal.status is not ProposalStatus.submitted:
        raise ServiceError(_("Only a submitted proposal can be withdrawn."))
    proposal.status = ProposalStatus.withdrawn
    proposal.withdrawn_at = now or utcnow()
    db.session.flush()
    record(
        events.ProposalWithdrawn(
            proposal_id=proposal.id, challenge_id=proposal.challenge_id, number=proposal.version
        ),
        by=by,
    )


def reopen_proposal(proposal: Proposal, *, by: User, now: datetime | None = None) -> None:
    """A withdrawn proposal becomes a draft again (its versions stay); submit it to compete."""
    _require_change(proposal, by, now)
    if proposal.status is not ProposalStatus.withdrawn:
        raise ServiceError(_("Only a withdrawn proposal can be reopened."))
    proposal.status = ProposalStatus.draft
    db.session.flush()
    record(events.ProposalReopened(proposal_id=proposal.id, challenge_id=proposal.challenge_id), by=by)


# --- attachments ---------------------------------------------------------------------------------


def add_attachment(
    proposal: Proposal, filename: str, data: bytes, *, by: User, now: datetime | None = None
) -> ProposalAttachment:
    """Check *data* is a PDF within the limits and keep it. The file is written before the row, and
    discarded if the transaction does not commit."""
    _require_change(proposal, by, now)
    _require_not_withdrawn(proposal)
    if len(proposal.current_attachments) >= files.MAX_FILES:
        raise ServiceError(
            _(
                "A proposal can have at most %(n)s attachments. Remove one before adding another.",
                n=files.MAX_FILES,
            ),
            "file",
        )
    if not data:
        raise ServiceError(_("The file is empty. Choose the PDF again."), "file")
    if len(data) > files.MAX_BYTES:
        raise ServiceError(
            _(
                "The file is larger than 10 MB. Make it smaller, for example by reducing the "
                "resolution of its images, or split it in two."
            ),
            "file",
        )
    if not files.looks_like_pdf(data):
        raise ServiceError(
            _("This file is not a PDF, whatever its name says. Save or export it as PDF and upload that."),
            "file",
        )
    storage_name, digest = files.store(data)
    on_rollback(lambda: files.discard(storage_name))
    attachment = ProposalAttachment(
        proposal=proposal,
        storage_name=storage_name,
        filename=files.display_name(filename),
        size=len(data),
        sha256=digest,
        uploaded_by_id=by.id,
    )
    db.session.add(attachment)
    db.session.flush()
    record(events.AttachmentAdded(proposal_id=proposal.id, attachment_id=attachment.id, sha256=digest), by=by)
    return attachment


def remove_attachment(attachment: ProposalAttachment, *, by: User, now: datetime | None = None) -> None:
    """Take the file off the working copy; submitted versions that list it keep it."""
    proposal = attachment.proposal
    _require_change(proposal, by, now)
    _require_not_withdrawn(proposal)
    if attachment.removed_at is None:
        attachment.removed_at = now or utcnow()
        db.session.flush()
        record(events.AttachmentRemoved(proposal_id=proposal.id, attachment_id=attachment.id), by=by)


def can_download(attachment: ProposalAttachment, user: User, now: datetime | None = None) -> bool:
    """The applicant, any of its files; others, only the files of the latest submitted version."""
    proposal = attachment.proposal
    if proposal.is_team_side(user):
        return True
    latest = proposal.latest_version
    return (
        proposal.can_view(user, now)
        and latest is not None
        and attachment.id in {a["id"] for a in latest.content["attachments"]}
    )


# --- versions and their differences -----------------------------------------------------------------


def _written(proposal: Proposal) -> dict[str, Any]:
    """What the applicant writes in the proposal's own fields."""
    return {
        "title": proposal.title,
        "summary": proposal.summary,
        "solution": proposal.solution,
        "fit": proposal.fit,
        "milestones": [dict(m) for m in proposal.milestones],
        "requested_ore": proposal.requested_ore,
        "budget": {line.value: ore for line, ore in proposal.budget().items()},
        "partners": [dict(p) for p in proposal.partners],
    }


def _person(user_id: int, name: str, email: str) -> dict[str, Any]:
    return {"id": user_id, "name": name, "email": email}


def _file(attachment_id: int, filename: str, size: int, sha256: str) -> dict[str, Any]:
    return {"id": attachment_id, "filename": filename, "size": size, "sha256": sha256}


def snapshot(proposal: Proposal) -> dict[str, Any]:
    """Everything the applicant sends, as plain data: what a version keeps and the pages show."""
    org = proposal.organisation
    return {
        **_written(proposal),
        "team": [_person(u.id, u.name, u.email) for u in proposal.team],
        "attachments": [_file(a.id, a.filename, a.size, a.sha256) for a in proposal.current_attachments],
        "agreement_accepted": proposal.agreement_accepted_at is not None,
        "organisation": {
            "name": org.name,
            "org_number": org.org_number,
            "staff": org.staff_headcount,
            "turnover_ore": org.annual_turnover_ore,
            "balance_ore": org.balance_sheet_total_ore,
            "eur_rate_ore": proposal.challenge.programme_year.programme.eur_rate_ore,
        },
    }


_COMPARED = (
    "title",
    "summary",
    "solution",
    "fit",
    "milestones",
    "requested_ore",
    "budget",
    "team",
    "partners",
    "attachments",
)


def _differs(now: dict[str, Any], submitted: dict[str, Any]) -> bool:
    """Whether the applicant changed what they send. The team is a set of people: a version keeps it in
    the order the proposal held it then, which a later reading may not repeat."""

    def by_id(team: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
        return sorted(team or [], key=lambda person: person["id"])

    return by_id(now["team"]) != by_id(submitted.get("team")) or any(
        now[k] != submitted.get(k) for k in _COMPARED if k != "team"
    )


def has_unsubmitted_changes(proposal: Proposal) -> bool:
    latest = proposal.latest_version
    return latest is None or _differs(snapshot(proposal), latest.content)


@functools.cache
def _unsubmitted_query() -> sa.Select:
    """(part, proposal, id, two texts, a size, content) for the team members, current files and latest
    versions of the proposals given as ``ids``, in one statement (built once)."""
    ids: sa.BindParameter[list[int]] = sa.bindparam("ids", expanding=True)
    text, number, data = (
        sa.cast(sa.null(), sa.String),
        sa.cast(sa.null(), sa.Integer),
        sa.cast(sa.null(), sa.JSON),
    )
    team = (
        sa.select(
            sa.literal(0).label("part"),
            proposal_member.c.proposal_id.label("proposal_id"),
            User.id.label("id"),
            User.name.label("first"),
            User.email.label("second"),
            number.label("size"),
            data.label("content"),
        )
        .join(User, User.id == proposal_member.c.user_id)
        .where(proposal_member.c.proposal_id.in_(ids))
    )
    files = sa.select(
        sa.literal(1),
        ProposalAttachment.proposal_id,
        ProposalAttachment.id,
        ProposalAttachment.filename,
        ProposalAttachment.sha256,
        ProposalAttachment.size,
        data,
    ).where(ProposalAttachment.proposal_id.in_(ids), ProposalAttachment.removed_at.is_(None))
    latest = (
        sa.select(
            sa.literal(2),
            ProposalVersion.proposal_id,
            ProposalVersion.number,
            text,
            text,
            number,
            ProposalVersion.content,
        )
        .join(
            Proposal,
            sa.and_(Proposal.id == ProposalVersion.proposal_id, Proposal.version == ProposalVersion.number),
        )
        .where(Proposal.id.in_(ids))
    )
    union = sa.union_all(team, files, latest).subquery()
    return sa.select(union).order_by(union.c.part, union.c.proposal_id, union.c.id)


def unsubmitted_changes(proposals: Iterable[Proposal]) -> set[int]:
    """The ids of the submitted *proposals* changed since their latest version (as
    :func:`has_unsubmitted_changes` says of one), in one statement for them all: their teams' names
    and addresses, their current files and their latest versions, not whole people, files and every
    version."""
    submitted = {p.id: p for p in proposals if p.status is ProposalStatus.submitted}
    if not submitted:
        return set()
    ids = list(submitted)
    rows = db.session.execute(_unsubmitted_query(), {"ids": ids})
    people: dict[int, list[dict[str, Any]]] = {i: [] for i in ids}
    kept: dict[int, list[dict[str, Any]]] = {i: [] for i in ids}
    versions: dict[int, dict[str, Any]] = {}
    for part, proposal_id, key, first, second, size, content in rows:
        if part == 0:
            people[proposal_id].append(_person(key, first, second))
        elif part == 1:
            kept[proposal_id].append(_file(key, first, size, second))
        else:
            versions[proposal_id] = content
    return {
        i
        for i, p in submitted.items()
        if i not in versions
        or _differs({**_written(p), "team": people[i], "attachments": kept[i]}, versions[i])
    }


@dataclass(frozen=True)
class FieldDiff:
    label: str
    lines: list[tuple[str, str]]  # (" " | "+" | "-" | "…", text)


def _lines(content: dict[str, Any], key: str) -> list[str]:
    """A field as lines of text that people can compare."""
    value = content.get(key)
    if key == "milestones":
        return [
            f"{m['due']} · {m['title']}" + (f" — {m['deliverable']}" if m.get("deliverable") else "")
            for m in value or []
        ]
    if key == "requested_ore":
        return [sek(value)] if value is not None else []
    if key == "budget":
        return [f"{BUDGET_LABELS[line]}: {sek((value or {}).get(line.value, 0))}" for line in BudgetLine]
    if key == "team":
        return [f"{p['name']} <{p['email']}>" for p in value or []]
    if key == "partners":
        return [
            f"{p['name']} ({PARTNER_LABELS[PartnerKind(p['kind'])]})"
            + (f" {p['org_number']}" if p.get("org_number") else "")
            + (f" — {p['role']}" if p.get("role") else "")
            for p in value or []
        ]
    if key == "attachments":
        return [f"{a['filename']} ({a['sha256'][:12]})" for a in value or []]
    return str(value or "").splitlines()


def diff_versions(old: dict[str, Any], new: dict[str, Any], labels: dict[str, str]) -> list[FieldDiff]:
    """The fields that changed from *old* to *new*, each as a line diff with two lines of context."""
    changes = []
    for key in _COMPARED:
        before, after = _lines(old, key), _lines(new, key)
        if before == after:
            continue
        lines: list[tuple[str, str]] = []
        for line in list(difflib.unified_diff(before, after, lineterm="", n=2))[2:]:
            if line.startswith("@@"):
                if lines:
                    lines.append(("…", ""))
                continue
            lines.append((line[0], line[1:]))
        changes.append(FieldDiff(labels[key], lines))
    return changes


# --- what each person sees --------------------------------------------------------------------------


@functools.cache
def _organisation_proposals_query() -> sa.Select:
    return (
        sa.select(Proposal)
        .where(Proposal.organisation_id == sa.bindparam("org_id"))
        .options(sa.orm.joinedload(Proposal.challenge))
        .order_by(Proposal.updated_at.desc())
    )


def organisation_proposals(org: Organisation) -> list[Proposal]:
    return list(db.session.scalars(_organisation_proposals_query(), {"org_id": org.id}))


def proposal_counts(challenge: Challenge) -> dict[ProposalStatus, int]:
    """How many proposals are in each state: all the programme sees while the challenge is open."""
    rows = db.session.execute(
        sa.select(Proposal.status, sa.func.count())
        .where(Proposal.challenge_id == challenge.id)
        .group_by(Proposal.status)
    )
    counts = {status: 0 for status in ProposalStatus}
    counts.update({status: n for status, n in rows})
    return counts


def submitted_proposals(challenge: Challenge) -> list[Proposal]:
    return list(
        db.session.scalars(
            sa.select(Proposal)
            .where(Proposal.challenge_id == challenge.id, Proposal.status == ProposalStatus.submitted)
            .options(sa.orm.joinedload(Proposal.organisation), sa.orm.selectinload(Proposal.versions))
            .order_by(Proposal.submitted_at)
        )
    )
