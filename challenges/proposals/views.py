"""Proposal pages: writing, attachments, submission, versions, and the lists each role may see."""

from __future__ import annotations

import logging

import sqlalchemy as sa
from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required
from sqlalchemy.orm import joinedload, selectinload

from challenges.calls.models import Challenge
from challenges.core.errors import ServiceError
from challenges.core.forms import ConfirmForm
from challenges.core.models import utcnow
from challenges.core.pages import allow, change_and_return, form_error, requires
from challenges.extensions import db
from challenges.proposals import bp, forms, rules, services, versions
from challenges.proposals.models import (
    BUDGET_LABELS,
    PARTNER_LABELS,
    PROPOSAL_STATUS_LABELS,
    BudgetLine,
    PartnerKind,
    Proposal,
    ProposalStatus,
    ProposalVersion,
)

log = logging.getLogger(__name__)


@bp.record_once
def _template_globals(state) -> None:
    state.app.jinja_env.globals.update(
        PROPOSAL_STATUS_LABELS=PROPOSAL_STATUS_LABELS,
        BUDGET_LABELS=BUDGET_LABELS,
        BudgetLine=BudgetLine,
        PARTNER_LABELS=PARTNER_LABELS,
        PartnerKind=PartnerKind,
        ProposalStatus=ProposalStatus,
        proposal_box=proposal_box,
    )


def proposal_box(challenge: Challenge) -> dict:
    """What the challenge page says about proposals to the person reading it."""
    user = current_user
    box: dict = {"own": None, "can_start": False, "counts": None, "can_list": False}
    if not user.is_authenticated or not challenge.is_public:
        return box
    if user.is_sme_member:
        box["own"] = services.proposal_of(user.organisation, challenge)
        box["can_start"] = box["own"] is None and challenge.is_open()
    if user.is_programme_manager:
        box["counts"] = services.proposal_counts(challenge)
    box["can_list"] = user.is_programme_manager or challenge.is_owned_by(user)
    return box


def _field_labels() -> dict[str, str]:
    return {
        "title": _("Title"),
        "summary": _("Summary"),
        "solution": _("Your solution"),
        "fit": _("How it meets what the challenge asks"),
        "milestones": _("Work plan"),
        "requested_ore": _("Funding requested"),
        "budget": _("Budget"),
        "team": _("Team"),
        "partners": _("Partner organisations"),
        "attachments": _("Attachments"),
    }


def _challenge(challenge_id: int) -> Challenge:
    challenge = db.session.get(Challenge, challenge_id)
    if challenge is None or not challenge.can_view(current_user):
        abort(404)
    return challenge


def load_proposal(proposal_id: int, *, for_update: bool = False) -> Proposal:
    """The proposal if *current_user* may see it; 404 otherwise, so sealed proposals stay unseen."""
    query = (
        sa.select(Proposal)
        .where(Proposal.id == proposal_id)
        .options(
            joinedload(Proposal.challenge),
            joinedload(Proposal.organisation),
            selectinload(Proposal.team),
            selectinload(Proposal.attachments),
            selectinload(Proposal.versions).joinedload(ProposalVersion.submitted_by),
        )
    )
    if for_update:
        query = query.with_for_update(of=Proposal)
    proposal = db.session.scalar(query)
    if proposal is None or not proposal.can_view(current_user):
        abort(404)
    return proposal


def proposal_form(org, proposal: Proposal | None = None, *, saved: bool = False) -> forms.ProposalForm:
    """The proposal form: as posted, or (on GET, or when *saved*) filled from the saved copy."""
    form = forms.ProposalForm(formdata=None) if saved else forms.ProposalForm()
    form.team.choices = [(u.id, f"{u.name} ({u.email})") for u in rules.team_candidates(org)]
    if proposal is not None and (saved or request.method == "GET"):
        form.load(proposal)
    elif proposal is None and request.method == "GET":
        form.team.data = [current_user.id]
    return form


def _edit_page(form: forms.ProposalForm, challenge: Challenge, proposal: Proposal | None):
    return render_template(
        "proposals/edit.html",
        form=form,
        challenge=challenge,
        proposal=proposal,
        attachment_form=forms.AttachmentForm(formdata=None),
        preview="preview" in request.form,
        now=utcnow(),
    )


def _save(form: forms.ProposalForm, challenge: Challenge, proposal: Proposal | None):
    """Preview, save, or save and submit, all or nothing; a refusal shows the page with what was typed."""
    if request.method != "POST" or "preview" in request.form or not form.validate_on_submit():
        return _edit_page(form, challenge, proposal)
    existing = proposal
    try:
        if proposal is None:
            proposal = services.start_proposal(challenge, form.content(), by=current_user)
        else:
            services.update_proposal(
                proposal, form.content(), by=current_user, revision=form.loaded_revision()
            )
        version = services.submit_proposal(proposal, by=current_user) if "submit" in request.form else None
        db.session.flush()
    except ServiceError as exc:
        form_error(form, exc)
        if "submit" in request.form:
            form.form_errors.append(
                _(
                    "Nothing has been saved. To keep your text while you put this right, "
                    "choose “Save without submitting”."
                )
            )
        return _edit_page(form, challenge, existing)
    if version is not None:
        flash(
            _(
                "Version %(n)s of your proposal has been submitted. Your team gets a receipt by email.",
                n=version.number,
            )
        )
    else:
        flash(_("Your changes have been saved. They count only once you submit them."))
    return redirect(url_for("proposals.detail", proposal_id=proposal.id), 303)


# --- writing -----------------------------------------------------------------------------------


@bp.route("/challenges/<int:challenge_id>/proposals/new", methods=["GET", "POST"])
@login_required
def new(challenge_id: int):
    challenge = _challenge(challenge_id)
    org = current_user.organisation
    allow(current_user.is_sme_member)
    existing = services.proposal_of(org, challenge)
    if existing is not None:
        return redirect(url_for("proposals.edit", proposal_id=existing.id), 303)
    if not challenge.is_open():
        flash(rules.deadline_passed_message(challenge))
        return redirect(url_for("calls.detail", challenge_id=challenge.id), 303)
    return _save(proposal_form(org), challenge, None)


@bp.route("/proposals/<int:proposal_id>/edit", methods=["GET", "POST"])
@login_required
def edit(proposal_id: int):
    proposal = load_proposal(proposal_id, for_update=request.method == "POST")
    allow(proposal.is_team_side(current_user))
    if not proposal.can_change(current_user):
        flash(rules.deadline_passed_message(proposal.challenge))
        return redirect(url_for("proposals.detail", proposal_id=proposal.id), 303)
    return _save(proposal_form(proposal.organisation, proposal), proposal.challenge, proposal)


@bp.post("/proposals/<int:proposal_id>/submit")
@login_required
def submit(proposal_id: int):
    """Submit the saved copy; if it is not ready, the edit page shows every reason."""
    proposal = load_proposal(proposal_id, for_update=True)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    try:
        version = services.submit_proposal(proposal, by=current_user)
        db.session.flush()
    except ServiceError as exc:
        db.session.rollback()
        if not proposal.can_change(current_user):
            flash(exc.message)
            return redirect(url_for("proposals.detail", proposal_id=proposal.id), 303)
        form = proposal_form(proposal.organisation, proposal, saved=True)
        form_error(form, exc)
        return _edit_page(form, proposal.challenge, proposal)
    flash(
        _(
            "Version %(n)s of your proposal has been submitted. Your team gets a receipt by email.",
            n=version.number,
        )
    )
    return redirect(url_for("proposals.detail", proposal_id=proposal.id), 303)


@bp.post("/proposals/<int:proposal_id>/<any(withdraw,reopen):action>")
@login_required
def change_state(proposal_id: int, action: str):
    proposal = load_proposal(proposal_id, for_update=True)
    if action == "withdraw":
        return change_and_return(
            lambda: services.withdraw_proposal(proposal, by=current_user),
            _("The proposal has been withdrawn. Your team gets a notice by email."),
            url_for("proposals.detail", proposal_id=proposal.id),
        )
    return change_and_return(
        lambda: services.reopen_proposal(proposal, by=current_user),
        _("The proposal is a draft again. Submit it before the deadline for it to count."),
        url_for("proposals.detail", proposal_id=proposal.id),
    )


# --- reading ---------------------------------------------------------------------------------------


@bp.get("/proposals/<int:proposal_id>")
@login_required
def detail(proposal_id: int):
    """The applicant reads its working copy; everyone else reads the latest submitted version."""
    proposal = load_proposal(proposal_id)
    latest = proposal.latest_version
    if proposal.is_team_side(current_user):
        content = versions.snapshot(proposal)
    else:
        assert latest is not None  # only submitted proposals are shown outside the applicant
        content = latest.content
    return _show(proposal, content, None)


def _show(proposal: Proposal, content: dict, version: ProposalVersion | None):
    """The proposal page: the working copy or latest version (*version* None), or one version."""
    team_side = proposal.is_team_side(current_user) and version is None
    return render_template(
        "proposals/detail.html",
        proposal=proposal,
        content=content,
        version=version,
        team_side=proposal.is_team_side(current_user),
        can_change=team_side and proposal.can_change(current_user),
        unsubmitted=team_side and versions.has_unsubmitted_changes(proposal),
        eligibility=rules.eligibility_problems(proposal.organisation, proposal.challenge)
        if team_side
        else {},
        now=utcnow(),
    )


def _version(proposal: Proposal, number: int) -> ProposalVersion:
    version = next((v for v in proposal.versions if v.number == number), None)
    if version is None:
        abort(404)
    return version


def _load_history(proposal_id: int) -> Proposal:
    """Earlier versions are the applicant's: others read only the version that counts."""
    proposal = load_proposal(proposal_id)
    if not proposal.is_team_side(current_user):
        abort(404)
    return proposal


@bp.get("/proposals/<int:proposal_id>/versions/<int:number>")
@login_required
def version(proposal_id: int, number: int):
    proposal = _load_history(proposal_id)
    shown = _version(proposal, number)
    return _show(proposal, shown.content, shown)


@bp.get("/proposals/<int:proposal_id>/changes")
@login_required
def changes(proposal_id: int):
    """What changed between two versions (by default the last two)."""
    proposal = _load_history(proposal_id)
    numbers = [v.number for v in proposal.versions]
    if len(numbers) < 2:
        flash(_("There is only one version, so there is nothing to compare yet."))
        return redirect(url_for("proposals.detail", proposal_id=proposal.id), 303)
    new = request.args.get("to", type=int)
    new = new if new in numbers else numbers[-1]
    old = request.args.get("from", type=int)
    old = old if old in numbers and old != new else (new - 1 if new - 1 in numbers else numbers[0])
    if old == new:
        old = numbers[-2]
    before, after = _version(proposal, old), _version(proposal, new)
    diff = versions.diff_versions(before.content, after.content, _field_labels())
    return render_template(
        "proposals/changes.html", proposal=proposal, before=before, after=after, diff=diff, numbers=numbers
    )


@bp.get("/proposals")
@requires(lambda person: person.is_sme_member)
def mine():
    """Every proposal of the person's organisation, with its state."""
    proposals = services.organisation_proposals(current_user.organisation)
    return render_template(
        "proposals/mine.html",
        proposals=proposals,
        now=utcnow(),
        unsubmitted=versions.unsubmitted_changes(proposals),
    )


@bp.get("/challenges/<int:challenge_id>/proposals")
@login_required
def for_challenge(challenge_id: int):
    """The owner and the programme: counts while the challenge is open, the proposals after."""
    challenge = _challenge(challenge_id)
    manager = current_user.is_programme_manager
    allow(manager or challenge.is_owned_by(current_user))
    sealed = challenge.is_open()
    counts = services.proposal_counts(challenge) if manager else None
    proposals = [] if sealed else services.submitted_proposals(challenge)
    return render_template(
        "proposals/for_challenge.html",
        challenge=challenge,
        sealed=sealed,
        counts=counts,
        proposals=proposals,
        now=utcnow(),
    )
