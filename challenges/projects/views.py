"""Funded projects: the company's list and page, the report form, and the programme's approval."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from challenges.core.forms import ConfirmForm
from challenges.core.pages import change_and_return, commit_change, manager_required
from challenges.extensions import db
from challenges.funding.models import CONDITION_LABELS
from challenges.projects import services
from challenges.projects.forms import ChangesForm, ReportForm
from challenges.projects.models import KIND_LABELS, STATUS_LABELS, Project, ProjectReport, ReportStatus

bp = Blueprint("projects", __name__)


@bp.record_once
def _template_globals(state) -> None:
    state.app.jinja_env.globals.update(REPORT_KIND_LABELS=KIND_LABELS, REPORT_STATUS_LABELS=STATUS_LABELS)


def _project(project_id: int) -> Project:
    project = db.get_or_404(Project, project_id)
    if not services.can_view(project, current_user):
        abort(404)
    return project


@bp.get("/projects")
@login_required
def mine():
    return render_template("projects/list.html", projects=services.projects_for(current_user))


@bp.get("/projects/<int:project_id>")
@login_required
def detail(project_id: int):
    project = _project(project_id)
    reached = {i for r in project.reports if r.status is ReportStatus.approved for i in r.milestones_reached}
    return render_template(
        "projects/detail.html", project=project, CONDITION_LABELS=CONDITION_LABELS, reached=reached
    )


@bp.route("/projects/reports/<int:report_id>", methods=["GET", "POST"])
@login_required
def report(report_id: int):
    report = db.get_or_404(ProjectReport, report_id)
    project = _project(report.project_id)
    editable = services.is_applicant(project, current_user) and report.status in (
        ReportStatus.due,
        ReportStatus.changes_requested,
    )
    form = ReportForm()
    form.set_milestones(project)
    if editable and form.validate_on_submit():
        if commit_change(form, lambda: services.submit_report(report, form.content(), by=current_user)):
            flash(_("Your report has been submitted to the programme."))
            return redirect(url_for("projects.report", report_id=report.id), 303)
    elif not form.is_submitted():
        form.fill_from(report)
    return render_template(
        "projects/report.html",
        project=project,
        report=report,
        form=form,
        editable=editable,
        changes_form=ChangesForm(),
        confirm=ConfirmForm(),
    )


@bp.post("/projects/reports/<int:report_id>/approve")
@manager_required
def approve(report_id: int):
    report = db.get_or_404(ProjectReport, report_id)
    target = url_for("projects.report", report_id=report.id)
    return change_and_return(
        lambda: services.approve_report(report, by=current_user),
        _("The report is approved."),
        target,
        ConfirmForm(),
    )


@bp.post("/projects/reports/<int:report_id>/changes")
@manager_required
def changes(report_id: int):
    report = db.get_or_404(ProjectReport, report_id)
    form = ChangesForm()
    target = url_for("projects.report", report_id=report.id)
    return change_and_return(
        lambda: services.request_changes(report, form.comment.data or "", by=current_user),
        _("The report has been sent back to the company with your comment."),
        target,
        form,
    )
