"""The programme's set-up, awards and payments, and the ledger's pages, for programme managers;
an applicant reads its own award and payment schedule."""

from __future__ import annotations

from datetime import date

import sqlalchemy as sa
from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required
from sqlalchemy.orm import selectinload

from challenges.core import formatting
from challenges.core.errors import PermissionDenied, ServiceError
from challenges.core.exports import csv_download
from challenges.core.forms import ISO_DATE, date_bounds
from challenges.core.pages import change_and_return, commit_change, manager_required
from challenges.extensions import db
from challenges.funding import forms, services
from challenges.funding.models import (
    ACCOUNT_LABELS,
    AWARD_STATUS_LABELS,
    CONDITION_LABELS,
    POSTING_LABELS,
    REFUSAL_LABELS,
    Account,
    AccountKind,
    Award,
    Instalment,
    Programme,
    ProgrammeYear,
    Transfer,
    TransferKind,
)
from challenges.proposals.models import Proposal

bp = Blueprint("funding", __name__)

CHART = (
    AccountKind.available,
    AccountKind.commitment,
    AccountKind.paid_out,
    AccountKind.admin_spent,
    AccountKind.returned,
)


@bp.record_once
def _template_globals(state) -> None:
    state.app.jinja_env.globals.update(
        ACCOUNT_LABELS=ACCOUNT_LABELS,
        AWARD_STATUS_LABELS=AWARD_STATUS_LABELS,
        REFUSAL_LABELS=REFUSAL_LABELS,
        POSTING_LABELS=POSTING_LABELS,
        CONDITION_LABELS=CONDITION_LABELS,
        AccountKind=AccountKind,
        award_box=award_box,
    )


def award_box(proposal: Proposal) -> dict:
    """For the review desk and the proposal page: its latest award (a pending or booked one is always
    the latest: no other can be made beside it)."""
    return {
        "award": db.session.scalar(
            sa.select(Award).where(Award.proposal_id == proposal.id).order_by(Award.id.desc()).limit(1)
        )
    }


def percent(basis_points: int) -> str:
    return formatting.percent(basis_points / 10000)


# --- programme set-up ----------------------------------------------------------------------------------


def year_balances(year: ProgrammeYear) -> dict[AccountKind, int]:
    rows = db.session.execute(
        sa.select(Account.kind, sa.func.sum(Account.balance_ore))
        .where(Account.programme_year_id == year.id)
        .group_by(Account.kind)
    )
    found = {kind: int(total or 0) for kind, total in rows}
    return {kind: found.get(kind, 0) for kind in AccountKind}


@bp.get("/admin/programmes")
@manager_required
def programmes():
    rows = db.session.scalars(
        sa.select(Programme).options(selectinload(Programme.years)).order_by(Programme.name)
    )
    return render_template("funding/programmes.html", programmes=rows.all(), percent=percent)


def _report_dates(text: str) -> list[date] | None:
    """The dates typed, each YYYY-MM-DD in the digits 0-9 and within the return deadline's bounds."""
    first, last = date_bounds(**forms.PROGRAMME_DATES)
    try:
        dates = [date.fromisoformat(part.strip()) for part in text.split(",") if part.strip()]
    except ValueError:
        return None
    if not all(ISO_DATE.match(part.strip()) for part in text.split(",") if part.strip()):
        return None
    return dates if all(first <= d <= last for d in dates) else None


@bp.route("/admin/programmes/<int:programme_id>", methods=["GET", "POST"])
@manager_required
def programme(programme_id: int):
    found = db.get_or_404(Programme, programme_id)
    form = forms.ProgrammeForm(
        data={
            "admin_cap": found.admin_cap_basis_points,
            "eur_rate": found.eur_rate_ore,
            "return_deadline": found.return_deadline,
            "report_dates": ", ".join(found.report_dates or []),
        }
    )
    year_form = forms.YearForm(formdata=None)
    if form.validate_on_submit():
        dates = _report_dates(form.report_dates.data or "")
        if dates is None:
            form.report_dates.errors = [_("Enter dates like 2016-10-15, separated by commas.")]
        elif commit_change(
            form,
            lambda: services.update_programme(
                found,
                admin_cap_basis_points=int(form.admin_cap.data or 0),
                eur_rate_ore=int(form.eur_rate.data or 0),
                return_deadline=form.return_deadline.data,
                report_dates=dates,
                by=current_user,
            ),
        ):
            flash(_("The programme's settings are saved."))
            return redirect(url_for("funding.programmes"), 303)
    return render_template("funding/programme.html", programme=found, form=form, year_form=year_form)


@bp.post("/admin/programmes/<int:programme_id>/years")
@manager_required
def add_year(programme_id: int):
    found = db.get_or_404(Programme, programme_id)
    year_form = forms.YearForm()
    if year_form.validate_on_submit() and commit_change(
        year_form,
        lambda: services.add_year(
            found,
            year_form.year.data,
            int(year_form.allocation.data or 0),
            year_form.requisition_deadline.data,
            by=current_user,
        ),
    ):
        flash(_("The year is added and its ledger is open."))
        return redirect(url_for("funding.programmes"), 303)
    form = forms.ProgrammeForm(
        formdata=None,
        data={
            "admin_cap": found.admin_cap_basis_points,
            "eur_rate": found.eur_rate_ore,
            "return_deadline": found.return_deadline,
            "report_dates": ", ".join(found.report_dates or []),
        },
    )
    return render_template("funding/programme.html", programme=found, form=form, year_form=year_form)


# --- awards and payments ---------------------------------------------------------------------------------


def _open_years() -> list[ProgrammeYear]:
    return list(
        db.session.scalars(
            sa.select(ProgrammeYear).where(ProgrammeYear.closed_at.is_(None)).order_by(ProgrammeYear.year)
        )
    )


@bp.route("/proposals/<int:proposal_id>/award", methods=["GET", "POST"])
@manager_required
def new_award(proposal_id: int):
    proposal = db.get_or_404(Proposal, proposal_id)
    try:
        services.check_awardable(proposal, by=current_user)
    except (ServiceError, PermissionDenied):
        abort(404)  # nothing about a proposal that cannot be awarded, nor whether it exists
    form = forms.AwardForm()
    form.programme_year.choices = [
        (
            y.id,
            _(
                "%(year)d – %(amount)s available",
                year=y.year,
                amount=formatting.sek(year_balances(y)[AccountKind.available]),
            ),
        )
        for y in _open_years()
    ]
    if request.method == "GET" and proposal.versions:
        form.amount.data = min(
            proposal.versions[-1].content["requested_ore"] or 0, proposal.challenge.max_funding_ore
        )
    created: list[Award] = []
    if form.validate_on_submit():
        year = db.session.get(ProgrammeYear, form.programme_year.data)
        if year is None:
            form.programme_year.errors = [_("Choose a programme year.")]
        elif commit_change(
            form,
            lambda: created.append(
                services.award_funding(proposal, year, int(form.amount.data or 0), by=current_user)
            ),
        ):
            flash(_("The award is recorded. It shows as pending until the ledger has booked it."))
            return redirect(url_for("funding.award", award_id=created[0].id), 303)
    return render_template("funding/new_award.html", proposal=proposal, form=form)


def _award(award_id: int) -> Award:
    award = db.get_or_404(Award, award_id)
    if not (current_user.is_programme_manager or award.proposal.is_team_side(current_user)):
        abort(404)
    return award


@bp.get("/awards/<int:award_id>")
@login_required
def award(award_id: int):
    found = _award(award_id)
    transfers = (
        db.session.scalars(
            sa.select(Transfer)
            .join(Account, sa.or_(Account.id == Transfer.source_id, Account.id == Transfer.target_id))
            .where(Account.award_id == found.id)
            .order_by(Transfer.id)
        ).all()
        if current_user.is_programme_manager
        else []
    )
    return render_template(
        "funding/award.html",
        award=found,
        paid=services.paid(found),
        transfers=transfers,
        final_report_approved=services.final_report_approved(found),
        payment_form=forms.PaymentForm(formdata=None),
        reduce_form=forms.ReduceForm(formdata=None),
    )


def _award_action(award: Award, change, done: str, form=None):
    return change_and_return(change, done, url_for("funding.award", award_id=award.id), form)


@bp.post("/awards/<int:award_id>/instalments/<int:instalment_id>/approve")
@manager_required
def approve(award_id: int, instalment_id: int):
    found = db.get_or_404(Award, award_id)
    instalment = db.get_or_404(Instalment, instalment_id)
    if instalment.award_id != found.id:
        abort(404)
    form = forms.PaymentForm()
    return _award_action(
        found,
        lambda: services.approve_payment(instalment, by=current_user),
        _("The payment is approved; the ledger books it."),
        form,
    )


@bp.post("/awards/<int:award_id>/reduce")
@manager_required
def reduce(award_id: int):
    found = db.get_or_404(Award, award_id)
    form = forms.ReduceForm()
    return _award_action(
        found,
        lambda: services.reduce_award(found, int(form.amount.data or 0), by=current_user),
        _("The award is reduced; the difference returns to the budget."),
        form,
    )


@bp.post("/awards/<int:award_id>/cancel")
@manager_required
def cancel(award_id: int):
    found = db.get_or_404(Award, award_id)
    return _award_action(
        found,
        lambda: services.cancel_award(found, by=current_user),
        _("The award is cancelled; what was unpaid returns to the budget."),
    )


# --- the ledger ----------------------------------------------------------------------------------------------


@bp.get("/admin/ledger")
@manager_required
def ledger_years():
    years = db.session.scalars(sa.select(ProgrammeYear).order_by(ProgrammeYear.year)).all()
    return render_template(
        "funding/ledger_years.html", years=[(y, year_balances(y)) for y in years], chart=CHART
    )


def _transfer_query(year: ProgrammeYear) -> sa.Select:
    query = sa.select(Transfer).where(Transfer.programme_year_id == year.id).order_by(Transfer.id)
    kind = request.args.get("kind", "")
    if kind in {k.value for k in TransferKind}:
        query = query.where(Transfer.kind == TransferKind(kind))
    account = request.args.get("account", "")
    if account.isdecimal() and len(account) < 10:
        query = query.where(sa.or_(Transfer.source_id == int(account), Transfer.target_id == int(account)))
    return query.options(
        selectinload(Transfer.source).joinedload(Account.award).joinedload(Award.proposal),
        selectinload(Transfer.target).joinedload(Account.award).joinedload(Award.proposal),
    )


@bp.get("/admin/ledger/<int:year_id>")
@manager_required
def ledger_year(year_id: int):
    year = db.get_or_404(ProgrammeYear, year_id)
    accounts = db.session.scalars(
        sa.select(Account)
        .where(Account.programme_year_id == year.id)
        .options(selectinload(Account.award).joinedload(Award.proposal))
        .order_by(Account.kind, Account.award_id)
    ).all()
    page = db.paginate(
        _transfer_query(year), page=request.args.get("page", 1, type=int), per_page=100, error_out=False
    )
    return render_template(
        "funding/ledger_year.html",
        year=year,
        accounts=accounts,
        page=page,
        balances=year_balances(year),
        chart=CHART,
        kinds=list(TransferKind),
        args={k: v for k, v in request.args.items() if k in ("kind", "account")},
        admin_form=forms.AdminCostForm(formdata=None),
    )


@bp.get("/admin/ledger/<int:year_id>/transfers.csv")
@manager_required
def ledger_csv(year_id: int):
    year = db.get_or_404(ProgrammeYear, year_id)
    rows = (
        (
            t.id,
            t.booked_at.isoformat(),
            t.kind.value,
            t.source.label,
            t.target.label,
            f"{t.amount_ore / 100:.2f}",
            t.event_id,
        )
        for t in db.session.scalars(_transfer_query(year))
    )
    return csv_download(
        ["id", "booked_at", "kind", "from", "to", "amount_sek", "event_id"], rows, f"ledger-{year.year}.csv"
    )


@bp.post("/admin/ledger/<int:year_id>/admin-cost")
@manager_required
def admin_cost(year_id: int):
    year = db.get_or_404(ProgrammeYear, year_id)
    form = forms.AdminCostForm()
    return change_and_return(
        lambda: services.book_admin_cost(
            year, int(form.amount.data or 0), form.memo.data or "", by=current_user
        ),
        _("The cost is recorded; the ledger books it."),
        url_for("funding.ledger_year", year_id=year.id),
        form,
    )


@bp.post("/admin/ledger/<int:year_id>/close")
@manager_required
def close(year_id: int):
    year = db.get_or_404(ProgrammeYear, year_id)
    return change_and_return(
        lambda: services.close_year(year, by=current_user),
        _("The year is closing: the ledger returns what is left and then takes no more postings."),
        url_for("funding.ledger_year", year_id=year.id),
    )
