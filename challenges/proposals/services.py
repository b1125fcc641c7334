"""Every change to proposals: drafting, attachments, submission with eligibility, withdrawal.

Services take the acting user (``by=``), check permission and the deadline (to the
second, with ``now`` for tests), change state, record the event, flush and never commit.
"""

from __future__ import annotations

import functools
from datetime import datetime

import sqlalchemy as sa
from flask_babel import gettext as _
from sqlalchemy.exc import IntegrityError
from stdnum.se import orgnr

from challenges.accounts.models import Organisation, OrganisationKind, User
from challenges.calls.models import Challenge
from challenges.core.errors import InvalidInput, PermissionDenied, ServiceError
from challenges.core.events import record
from challenges.core.models import utcnow
from challenges.core.transaction import on_rollback
from challenges.extensions import db
from challenges.proposals import events, files
from challenges.proposals.models import (
    BudgetLine,
    Proposal,
    ProposalAttachment,
    ProposalStatus,
    ProposalVersion,
)
from challenges.proposals.rules import (
    ProposalContent,
    check_content,
    deadline_passed_message,
    eligibility_problems,
)
from challenges.proposals.versions import has_unsubmitted_changes, snapshot

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
