"""The programme's review desk: screening, assignment, the scores side by side, decisions and their publication."""

from __future__ import annotations

from decimal import Decimal

import sqlalchemy as sa
from flask import abort, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy.orm import joinedload, selectinload

from challenges.accounts.models import User
from challenges.calls.models import Challenge
from challenges.core.exports import csv_download
from challenges.core.formatting import to_local
from challenges.core.models import utcnow
from challenges.core.pages import change_and_return, commit_change, manager_required
from challenges.extensions import db
from challenges.proposals.models import Proposal
from challenges.reviews import assignments, bp, forms, scoring, services
from challenges.reviews.conflicts import ConflictIndex
from challenges.reviews.models import (
    Assessment,
    Assignment,
    ChallengeReview,
    Decision,
)

# --- the programme's review desk ----------------------------------------------------------------------------


def _desk(challenge_id: int) -> tuple[Challenge, ChallengeReview]:
    challenge = db.get_or_404(Challenge, challenge_id)
    review = db.session.scalar(
        sa.select(ChallengeReview)
        .where(ChallengeReview.challenge_id == challenge.id)
        .options(
            selectinload(ChallengeReview.assessments)
            .selectinload(Assessment.assignments)
            .selectinload(Assignment.review),
            selectinload(ChallengeReview.assessments)
            .selectinload(Assessment.assignments)
            .joinedload(Assignment.evaluator),
            selectinload(ChallengeReview.assessments)
            .joinedload(Assessment.proposal)
            .options(
                selectinload(Proposal.versions),
                joinedload(Proposal.organisation),
                joinedload(Proposal.challenge).joinedload(Challenge.organisation),
            ),
        )
    )
    if review is None:
        abort(404)
    return challenge, review


def _settings_form(review: ChallengeReview) -> forms.SettingsForm:
    """The review's settings as they are saved."""
    return forms.SettingsForm(
        formdata=None,
        data={
            "deadline_date": to_local(review.review_deadline).date(),
            "deadline_time": to_local(review.review_deadline).time(),
            "evaluators_per_proposal": review.evaluators_per_proposal,
            "max_per_evaluator": review.max_per_evaluator,
            "disagreement": Decimal(review.disagreement_tenths) / 10,
            "blind": review.blind,
            "calibration": review.calibration,
        },
    )


def _desk_page(challenge: Challenge, review: ChallengeReview, **overrides):
    pool = assignments.evaluators()
    index = ConflictIndex()
    conflicts = {a.id: {e.id: index.reasons(e, a.proposal) for e in pool} for a in review.assessments}
    per_assessment = {}
    for a in review.assessments:
        row = {
            "screen": forms.ScreenForm(formdata=None, prefix=f"a{a.id}-screen"),
            "assign": forms.AssignForm(formdata=None, prefix=f"a{a.id}-assign"),
            "decide": forms.DecisionForm(formdata=None, prefix=f"a{a.id}-decide"),
        }
        if overrides.get("failed_id") == a.id:
            row[overrides["failed_action"]] = overrides["failed_form"]
        row["assign"].evaluator.choices = [
            (
                e.id,
                e.name
                + (
                    " – " + _("conflict: %(why)s", why="; ".join(conflicts[a.id][e.id]))
                    if conflicts[a.id][e.id]
                    else ""
                ),
            )
            for e in pool
        ]
        per_assessment[a.id] = row
    return render_template(
        "reviews/desk.html",
        challenge=challenge,
        review=review,
        results=scoring.results(review),
        evaluators=pool,
        conflicts=conflicts,
        loads=assignments.loads(review),
        now=utcnow(),
        forms_for=per_assessment,
        settings_form=overrides["settings_form"] if "settings_form" in overrides else _settings_form(review),
        all_forms=[overrides["failed_form"]] if overrides.get("failed_form") else [],
    )


@bp.get("/challenges/<int:challenge_id>/review")
@manager_required
def desk(challenge_id: int):
    return _desk_page(*_desk(challenge_id))


@bp.post("/challenges/<int:challenge_id>/review/settings")
@manager_required
def settings(challenge_id: int):
    challenge, review = _desk(challenge_id)
    form = forms.SettingsForm()
    if (
        form.validate_on_submit()
        and form.deadline is not None
        and commit_change(
            form,
            lambda: services.update_settings(
                review,
                services.ReviewSettings(
                    review_deadline=form.deadline,
                    evaluators_per_proposal=form.evaluators_per_proposal.data,
                    max_per_evaluator=form.max_per_evaluator.data,
                    blind=bool(form.blind.data),
                    calibration=bool(form.calibration.data),
                    disagreement_tenths=int((form.disagreement.data or 0) * 10),
                ),
                by=current_user,
            ),
        )
    ):
        flash(_("The review settings are saved."))
        return redirect(url_for("reviews.desk", challenge_id=challenge.id), 303)
    return _desk_page(challenge, review, settings_form=form)


@bp.post("/challenges/<int:challenge_id>/review/<any(assign,publish):action>")
@manager_required
def desk_action(challenge_id: int, action: str):
    challenge, review = _desk(challenge_id)
    target = url_for("reviews.desk", challenge_id=challenge.id)
    if action == "assign":
        return change_and_return(
            lambda: assignments.assign_automatically(review, by=current_user),
            _("The evaluators are assigned; they are being told by email."),
            target,
        )
    return change_and_return(
        lambda: services.publish_decisions(review, by=current_user),
        _("The decisions are published; applicants and the challenge owner are being told."),
        target,
    )


def _assessment(assessment_id: int) -> Assessment:
    return db.get_or_404(Assessment, assessment_id)


@bp.post("/review/assessments/<int:assessment_id>/<any(screen,assign,decide):action>")
@manager_required
def assessment_action(assessment_id: int, action: str):
    assessment = _assessment(assessment_id)
    challenge, review = _desk(assessment.review.challenge_id)
    form: forms.Form
    if action == "screen":
        form = forms.ScreenForm(prefix=f"a{assessment.id}-screen")
        ok = form.validate_on_submit() and commit_change(
            form,
            lambda: services.screen_proposal(
                assessment,
                eligible=form.eligible.data == "yes",
                reason=form.reason.data or "",
                by=current_user,
            ),
        )
    elif action == "assign":
        form = forms.AssignForm(prefix=f"a{assessment.id}-assign")
        form.evaluator.choices = [(e.id, e.name) for e in assignments.evaluators()]
        chosen = db.session.get(User, form.evaluator.data) if form.validate_on_submit() else None
        ok = chosen is not None and commit_change(
            form,
            lambda: assignments.assign_by_hand(
                assessment, chosen, justification=form.justification.data or "", by=current_user
            ),
        )
    else:
        form = forms.DecisionForm(prefix=f"a{assessment.id}-decide")
        ok = form.validate_on_submit() and commit_change(
            form,
            lambda: services.decide_proposal(
                assessment,
                Decision(form.decision.data),
                form.reason.data or "",
                override=form.override.data or "",
                by=current_user,
            ),
        )
    if ok:
        flash(_("Saved."))
        return redirect(
            url_for("reviews.desk", challenge_id=challenge.id, _anchor=f"assessment-{assessment.id}"), 303
        )
    challenge, review = _desk(assessment.review.challenge_id)
    return _desk_page(challenge, review, failed_id=assessment.id, failed_form=form, failed_action=action)


@bp.post("/review/assignments/<int:assignment_id>/remove")
@manager_required
def unassign(assignment_id: int):
    assignment = db.get_or_404(Assignment, assignment_id)
    return change_and_return(
        lambda: assignments.unassign(assignment, by=current_user),
        _("The evaluator has been taken off the proposal."),
        url_for("reviews.desk", challenge_id=assignment.assessment.review.challenge_id),
    )


@bp.get("/challenges/<int:challenge_id>/review/ranking.csv")
@manager_required
def ranking_csv(challenge_id: int):
    challenge, review = _desk(challenge_id)
    rows = (
        (
            rank,
            r.assessment.proposal.title,
            r.assessment.proposal.organisation.name,
            _round(r.mean),
            _round(r.median),
            _round(r.spread),
            len(r.scores),
            "yes" if r.complete else "no",
            r.assessment.decision.value if r.assessment.decision else "",
        )
        for rank, r in enumerate(scoring.results(review), start=1)
    )
    return csv_download(
        ["rank", "proposal", "applicant", "mean", "median", "spread", "reviews", "complete", "decision"],
        rows,
        f"ranking-challenge-{challenge.id}.csv",
    )


def _round(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}"
