"""The programme managers' administration of accounts: people, their roles, disabling, invitations."""

from __future__ import annotations

import sqlalchemy as sa
from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from challenges.accounts import bp, forms, services
from challenges.accounts.models import (
    Membership,
    Role,
    User,
)
from challenges.core.errors import ServiceError
from challenges.core.pages import change_and_return, form_error, manager_required
from challenges.core.views import page_arg
from challenges.extensions import db

# --- administration (programme managers) --------------------------------------------------------

PAGE_SIZE = 50


@bp.get("/admin/users")
@manager_required
def admin_users():
    q = (request.args.get("q") or "").strip()[:100]
    page = page_arg()
    query = (
        sa.select(User)
        .order_by(User.name, User.id)
        .options(sa.orm.selectinload(User.membership).joinedload(Membership.organisation))
    )
    if q:
        like = f"%{q.lower()}%"
        query = query.where(sa.or_(sa.func.lower(User.name).like(like), User.email.like(like)))
    users = db.paginate(query, page=page, per_page=PAGE_SIZE, error_out=False)
    return render_template("admin/users.html", users=users, q=q)


@bp.route("/admin/users/<int:user_id>", methods=["GET", "POST"])
@manager_required
def admin_user(user_id: int):
    user = db.get_or_404(User, user_id)
    role_form = forms.RoleForm()
    if role_form.validate_on_submit():
        try:
            services.grant_role(user, Role(role_form.role.data), by=current_user)
            db.session.flush()
        except ServiceError as exc:
            form_error(role_form, exc)
        else:
            flash(_("The role has been granted."))
            return redirect(url_for("accounts.admin_user", user_id=user.id), 303)
    return render_template("admin/user.html", user=user, role_form=role_form, form=forms.ConfirmForm())


def _admin_change(user: User, change, done: str):
    """Run one confirmed change to *user* and go back to their page; a refusal is flashed."""
    return change_and_return(change, done, url_for("accounts.admin_user", user_id=user.id))


@bp.post("/admin/users/<int:user_id>/<any(disable,enable):action>")
@manager_required
def admin_set_active(user_id: int, action: str):
    user = db.get_or_404(User, user_id)
    if action == "disable":
        return _admin_change(
            user,
            lambda: services.disable_account(user, by=current_user),
            _("The account has been disabled and logged out everywhere."),
        )
    return _admin_change(
        user, lambda: services.enable_account(user, by=current_user), _("The account has been enabled.")
    )


@bp.post("/admin/users/<int:user_id>/roles/<any(programme_manager,evaluator):role>/revoke")
@manager_required
def admin_revoke_role(user_id: int, role: str):
    user = db.get_or_404(User, user_id)
    return _admin_change(
        user, lambda: services.revoke_role(user, Role(role), by=current_user), _("The role has been removed.")
    )


@bp.route("/admin/invitations", methods=["GET", "POST"])
@manager_required
def admin_invite():
    form = forms.InviteForm()
    if form.validate_on_submit():
        try:
            services.invite_evaluator(form.email.data, form.language.data, by=current_user)
            db.session.flush()
        except ServiceError as exc:
            form_error(form, exc)
        else:
            flash(_("The invitation has been sent to %(email)s.", email=form.email.data))
            return redirect(url_for("accounts.admin_invite"), 303)
    return render_template("admin/invite.html", form=form)
