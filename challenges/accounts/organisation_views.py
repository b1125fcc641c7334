"""The organisation's pages: its members, requests to join and their decisions, its figures; and
accepting an emailed invitation."""

from __future__ import annotations

import sqlalchemy as sa
from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from challenges.accounts import bp, forms, links, people, services, sessions
from challenges.accounts.models import (
    Membership,
    MembershipState,
    OrganisationKind,
    TokenKind,
)
from challenges.accounts.views import log_in
from challenges.core.errors import ServiceError
from challenges.core.pages import commit_change, deny, form_error
from challenges.extensions import db

# --- organisation membership ----------------------------------------------------------------


@bp.route("/organisation", methods=["GET", "POST"])
@login_required
def organisation():
    org = current_user.organisation
    figures = forms.OrganisationFiguresForm(obj=org) if org and org.kind is OrganisationKind.sme else None
    if figures is not None and request.method == "GET":
        figures.annual_turnover.data = org.annual_turnover_ore
        figures.balance_sheet_total.data = org.balance_sheet_total_ore
    if request.method == "POST":
        if figures is None:
            deny()
        if figures.validate_on_submit() and commit_change(
            figures,
            lambda: services.update_organisation_figures(
                org,
                org_number=figures.org_number.data,
                staff_headcount=figures.staff_headcount.data,
                annual_turnover_ore=int(figures.annual_turnover.data or 0),
                balance_sheet_total_ore=int(figures.balance_sheet_total.data or 0),
                by=current_user,
            ),
        ):
            flash(_("The organisation's details have been saved."))
            return redirect(url_for("accounts.organisation"), 303)
    pending = current_user.membership if current_user.membership and not org else None
    requests: list[Membership] = []
    if org is not None:
        requests = list(
            db.session.scalars(
                sa.select(Membership)
                .where(Membership.organisation_id == org.id, Membership.state == MembershipState.pending)
                .options(sa.orm.joinedload(Membership.user))
            )
        )
    return render_template(
        "accounts/organisation.html",
        org=org,
        pending=pending,
        requests=requests,
        form=forms.ConfirmForm(),
        figures=figures,
    )


@bp.post("/organisation/requests/<int:membership_id>/<any(approve,reject):decision>")
@login_required
def decide_membership(membership_id: int, decision: str):
    membership = db.get_or_404(Membership, membership_id)
    if not forms.ConfirmForm().validate_on_submit():
        abort(400)
    services.decide_membership(membership, approve=decision == "approve", by=current_user)
    flash(
        _("%(name)s has been approved.", name=membership.user.name)
        if decision == "approve"
        else _("The request from %(name)s has been rejected.", name=membership.user.name)
    )
    return redirect(url_for("accounts.organisation"), 303)


# --- invitations -----------------------------------------------------------------------------


@bp.route("/invitation/<token>", methods=["GET", "POST"])
def accept_invitation(token: str):
    try:
        invitation = links.find_token(token, TokenKind.invitation)
    except ServiceError as exc:
        return render_template("accounts/link_invalid.html", message=exc.message), 410
    existing = people.user_by_email(invitation.email or "")
    form = forms.AcceptInvitationExistingForm() if existing else forms.AcceptInvitationNewForm()
    form.person = (invitation.email or "",)  # not in a new password
    if form.validate_on_submit():
        try:
            user = services.accept_invitation(
                token, name=getattr(form, "name", None) and form.name.data, password=form.password.data
            )
            session_token = sessions.start_session(user)
            db.session.flush()
        except ServiceError as exc:
            form_error(form, exc)
        else:
            log_in(user, session_token)
            flash(_("Welcome! You are now an evaluator."))
            return redirect(url_for("core.home"), 303)
    return render_template(
        "accounts/accept_invitation.html", form=form, invitation=invitation, existing=existing
    )
