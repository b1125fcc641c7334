"""A proposal's attachments: adding a PDF, removing one from the working copy, and reading one."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from challenges.core.errors import ServiceError
from challenges.core.forms import ConfirmForm
from challenges.core.models import utcnow
from challenges.core.pages import allow, form_error
from challenges.extensions import db
from challenges.proposals import bp, files, forms, rules, services
from challenges.proposals.models import (
    Proposal,
    ProposalAttachment,
    ProposalStatus,
)
from challenges.proposals.views import load_proposal, proposal_form

# --- attachments -----------------------------------------------------------------------------------


@bp.post("/proposals/<int:proposal_id>/attachments")
@login_required
def upload(proposal_id: int):
    proposal = load_proposal(proposal_id, for_update=True)
    allow(proposal.is_team_side(current_user))
    attachment_form = forms.AttachmentForm()
    if attachment_form.validate_on_submit():
        upload = attachment_form.file.data
        data = upload.stream.read(files.MAX_BYTES + 1)
        try:
            attachment = services.add_attachment(proposal, upload.filename or "", data, by=current_user)
        except ServiceError as exc:
            form_error(attachment_form, exc)
        else:
            flash(
                _(
                    "%(name)s has been attached. Submit the proposal again for it to count.",
                    name=attachment.filename,
                )
                if proposal.status is ProposalStatus.submitted
                else _("%(name)s has been attached.", name=attachment.filename)
            )
            return redirect(url_for("proposals.edit", proposal_id=proposal.id, _anchor="attachments"), 303)
    if not proposal.can_change(current_user):
        flash(rules.deadline_passed_message(proposal.challenge))
        return redirect(url_for("proposals.detail", proposal_id=proposal.id), 303)
    return render_template(
        "proposals/edit.html",
        form=proposal_form(proposal.organisation, proposal, saved=True),
        challenge=proposal.challenge,
        proposal=proposal,
        attachment_form=attachment_form,
        preview=False,
        now=utcnow(),
    )


@bp.post("/proposals/<int:proposal_id>/attachments/<int:attachment_id>/remove")
@login_required
def remove_attachment(proposal_id: int, attachment_id: int):
    proposal = load_proposal(proposal_id, for_update=True)
    attachment = _attachment(proposal, attachment_id)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    try:
        services.remove_attachment(attachment, by=current_user)
        db.session.flush()
    except ServiceError as exc:
        db.session.rollback()
        flash(exc.message)
        return redirect(url_for("proposals.detail", proposal_id=proposal.id), 303)
    flash(_("%(name)s has been removed from the proposal.", name=attachment.filename))
    return redirect(url_for("proposals.edit", proposal_id=proposal.id, _anchor="attachments"), 303)


def _attachment(proposal: Proposal, attachment_id: int) -> ProposalAttachment:
    attachment = db.session.get(ProposalAttachment, attachment_id)
    if attachment is None or attachment.proposal_id != proposal.id:
        abort(404)
    return attachment


@bp.get("/proposals/<int:proposal_id>/attachments/<int:attachment_id>")
@login_required
def download(proposal_id: int, attachment_id: int):
    """Always as a download, never shown inline; only to people who may see it."""
    proposal = load_proposal(proposal_id)
    attachment = _attachment(proposal, attachment_id)
    if not services.can_download(attachment, current_user):
        abort(404)
    return files.send(attachment.storage_name, attachment.filename)
