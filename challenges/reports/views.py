"""The programme report (managers) and the public list of funded projects (open data)."""

from __future__ import annotations

from datetime import date
from typing import cast

from flask import Blueprint, abort, flash, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from challenges.core.errors import InvalidInput
from challenges.core.exports import csv_download
from challenges.core.pages import commit_change, manager_required
from challenges.extensions import db
from challenges.programmes.models import Programme
from challenges.reports import charts, periods, services
from challenges.reports.contents import ProgrammeReport
from challenges.reports.data import PROJECT_COLUMNS, TABLES, project_row, report_data
from challenges.reports.forms import LessonsForm

bp = Blueprint("reports", __name__)


def _labels() -> dict[str, str]:
    return {"running": _("Running"), "completed": _("Completed"), "cancelled": _("Cancelled")}


def _programme(programme_id: int) -> Programme:
    return db.get_or_404(Programme, programme_id)


# --- open data: the funded projects --------------------------------------------------------------------------


@bp.get("/programmes")
def public_programmes():
    rows = db.session.scalars(db.select(Programme).order_by(Programme.name)).all()
    return render_template("reports/programmes.html", programmes=rows)


@bp.get("/programmes/<int:programme_id>")
def public_programme(programme_id: int):
    programme = _programme(programme_id)
    return render_template(
        "reports/public.html",
        programme=programme,
        funded=services.funded_projects(programme),
        status_labels=_labels(),
    )


@bp.get("/programmes/<int:programme_id>/projects.json")
def public_projects_json(programme_id: int):
    programme = _programme(programme_id)
    return jsonify(
        programme=programme.name,
        as_of=periods.today().isoformat(),
        projects=[project_row(f) for f in services.funded_projects(programme)],
    )


@bp.get("/programmes/<int:programme_id>/projects.csv")
def public_projects_csv(programme_id: int):
    programme = _programme(programme_id)
    rows = [project_row(f) for f in services.funded_projects(programme)]
    return csv_download(
        PROJECT_COLUMNS,
        ([row[c] for c in PROJECT_COLUMNS] for row in rows),
        f"funded-projects-{programme.id}.csv",
    )


# --- the programme report --------------------------------------------------------------------------------------


def _report(programme: Programme) -> tuple[ProgrammeReport | None, dict[str, str]]:
    try:
        period = periods.parse_period(programme, request.args.get("start"), request.args.get("end"))
    except InvalidInput as exc:
        return None, exc.errors
    return services.build(programme, period), {}


@bp.get("/admin/programmes/<int:programme_id>/report")
@manager_required
def report(programme_id: int):
    programme = _programme(programme_id)
    found, errors = _report(programme)
    form = LessonsForm(
        formdata=None,
        data={
            "as_of": found.period.end if found else None,
            "text": found.lessons.text if found and found.lessons else "",
        },
    )
    return _render(programme, found, errors, form)


def _render(programme: Programme, found: ProgrammeReport | None, errors: dict[str, str], form: LessonsForm):
    figures = {}
    if found is not None:
        figures = {
            "areas": charts.bars(found.funding_by("area")),
            "themes": charts.bars(found.funding_by("theme")),
            "challenges": charts.pairs(
                [(c.challenge.title, c.proposals, c.awards) for c in found.challenges]
            ),
            "budget": charts.lines(found.timeline, found.total.allocation),
        }
    status = 400 if errors or form.errors else 200
    return render_template(
        "reports/report.html",
        programme=programme,
        report=found,
        errors=errors,
        start=request.args.get("start", ""),
        end=request.args.get("end", ""),
        periods=periods.report_periods(programme),
        figures=figures,
        form=form,
        status_labels=_labels(),
    ), status


@bp.post("/admin/programmes/<int:programme_id>/report/lessons")
@manager_required
def lessons(programme_id: int):
    programme = _programme(programme_id)
    form = LessonsForm()
    if form.validate_on_submit():
        as_of = cast(date, form.as_of.data)
        if commit_change(
            form, lambda: services.save_lessons(programme, as_of, form.text.data or "", by=current_user)
        ):
            flash(_("The lessons are saved with the report as of %(day)s.", day=as_of.isoformat()))
            return redirect(
                url_for("reports.report", programme_id=programme.id, end=as_of.isoformat()) + "#lessons", 303
            )
    return _render(programme, None, {}, form)


@bp.get("/admin/programmes/<int:programme_id>/report.json")
@manager_required
def report_json(programme_id: int):
    programme = _programme(programme_id)
    found, errors = _report(programme)
    if found is None:
        return jsonify(errors=errors), 400
    return jsonify(report_data(found))


@bp.get("/admin/programmes/<int:programme_id>/report/<name>.csv")
@manager_required
def report_csv(programme_id: int, name: str):
    programme = _programme(programme_id)
    if name not in TABLES:
        abort(404)
    found, errors = _report(programme)
    if found is None:
        return jsonify(errors=errors), 400
    header, rows = TABLES[name](found)
    period = found.period
    return csv_download(header, rows, f"programme-{programme.id}-{name}-{period.start}-{period.end}.csv")
