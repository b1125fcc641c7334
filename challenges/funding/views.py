"""The programme's settings, for programme managers."""

from __future__ import annotations

import sqlalchemy as sa
from flask import Blueprint, flash, redirect, render_template, url_for
from flask_babel import format_percent
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy.orm import selectinload

from challenges.accounts.views import commit_change, manager_required
from challenges.extensions import db
from challenges.funding import forms, services
from challenges.funding.models import Programme

bp = Blueprint("funding", __name__)


@bp.get("/admin/programmes")
@manager_required
def programmes():
    rows = db.session.scalars(sa.select(Programme).options(selectinload(Programme.years)).order_by(Programme.name))
    return render_template("funding/programmes.html", programmes=rows.all(),
                           percent=lambda basis_points: format_percent(basis_points / 10000, "#,##0.##%"))


@bp.route("/admin/programmes/<int:programme_id>", methods=["GET", "POST"])
@manager_required
def programme(programme_id: int):
    found = db.get_or_404(Programme, programme_id)
    form = forms.ExchangeRateForm(data={"eur_rate": found.eur_rate_ore})
    if form.validate_on_submit() and commit_change(
            form, lambda: services.set_exchange_rate(found, int(form.eur_rate.data or 0), by=current_user)):
        flash(_("The exchange rate has been saved. It applies to every submission from now on."))
        return redirect(url_for("funding.programmes"), 303)
    return render_template("funding/programme.html", programme=found, form=form)
