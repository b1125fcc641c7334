"""Review pages: evaluators' assignments, conflicts and scoring; the programme's review desk."""

from __future__ import annotations

import functools
from decimal import Decimal
from functools import wraps

import sqlalchemy as sa
from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required
from sqlalchemy.orm import joinedload, load_only, selectinload

from challenges.accounts.models import Role, User
from challenges.accounts.views import change_and_return, commit_change, manager_required
from challenges.calls.models import Challenge
from challenges.core.exports import csv_download
from challenges.core.formatting import to_local
from challenges.core.models import utcnow
from challenges.extensions import db
from challenges.proposals import files
from challenges.proposals.models import Proposal, ProposalAttachment
from challenges.reviews import assignments, forms, scoring, services
from challenges.reviews.conflicts import ConflictIndex
from challenges.reviews.models import (
    DECISION_LABELS,
    RELATION_LABELS,
    SCALE_LABELS,
    Assessment,
    Assignment,
    ChallengeReview,
    ConflictDeclaration,
    Decision,
    Relation,
)

bp = Blueprint("reviews", __name__)


@bp.record_once
def _template_globals(state) -> None:
    state.app.jinja_env.globals.update(
        DECISION_LABELS=DECISION_LABELS,
        RELATION_LABELS=RELATION_LABELS,
        SCALE_LABELS=SCALE_LABELS,
        Role=Role,
        review_outcome=review_outcome,
        review_open_for=review_open_for,
    )


def review_open_for(challenge: Challenge) -> bool:
    return services.review_of(challenge) is not None


def review_outcome(proposal: Proposal) -> dict:
    """What the applicant may read of its proposal's review: the screening, and the decision once published."""
    assessment = services.assessment_of(proposal)
    if assessment is None:
        return {}
    published = assessment.review.published_at is not None
    return {
        "ineligible_reason": assessment.ineligible_reason if assessment.eligible is False else None,
        "decision": assessment.decision if published else None,
        "reason": assessment.decision_reason if published else None,
        "comments": [
            a.review.comment_to_applicant for a in assessment.active_assignments if a.review is not None
        ]
        if published
        else [],
    }


def evaluator_required(view):
    @wraps(view)
    @login_required
    def wrapped(*args, **kwargs):
        if not (current_user.active and current_user.has_role(Role.evaluator)):
            abort(403)
        return view(*args, **kwargs)

    return wrapped


# --- evaluators -----------------------------------------------------------------------------------------


@bp.get("/reviews")
@evaluator_required
def mine():
    assignments = services.my_assignments(current_user)
    index = ConflictIndex.of(current_user, [a.assessment.proposal for a in assignments])
    readable = {a.id for a in assignments if scoring.can_review(a, current_user, index)}
    return render_template("reviews/mine.html", assignments=assignments, readable=readable)


@bp.route("/reviews/conflicts", methods=["GET", "POST"])
@evaluator_required
def conflicts():
    form = forms.ConflictForm()
    if form.validate_on_submit() and commit_change(
        form,
        lambda: services.declare_conflict(
            current_user,
            form.org_number.data,
            form.organisation_name.data or "",
            Relation(form.relation.data),
        ),
    ):
        flash(_("Declared. You will not be assigned proposals from or to this organisation."))
        return redirect(url_for("reviews.conflicts"), 303)
    declared = db.session.scalars(
        sa.select(ConflictDeclaration)
        .where(ConflictDeclaration.evaluator_id == current_user.id)
        .order_by(ConflictDeclaration.declared_at)
    ).all()
    return render_template("reviews/conflicts.html", form=form, declared=declared)


@functools.cache
def _assignment_query() -> sa.Select:
    """An assignment with what a change to it reads, in one statement (built once): the version under
    review (not every version), the applicant and the challenge's owner (for the conflict check), the
    challenge's title and criteria. Neither the proposal's draft nor the challenge's texts. The page
    itself is read as plain values (``scoring.review_sheet``)."""
    assessment = joinedload(Assignment.assessment)
    return (
        sa.select(Assignment)
        .where(Assignment.id == sa.bindparam("assignment_id"))
        .options(
            assessment.joinedload(Assessment.proposal).options(
                load_only(Proposal.challenge_id, Proposal.organisation_id, Proposal.status, Proposal.version),
                joinedload(Proposal.organisation),
            ),
            assessment.joinedload(Assessment.assessed_version),
            assessment.joinedload(Assessment.review)
            .joinedload(ChallengeReview.challenge)
            .options(
                load_only(Challenge.organisation_id, Challenge.title, Challenge.status, Challenge.deadline),
                joinedload(Challenge.organisation),
                joinedload(Challenge.criteria),
            ),
            joinedload(Assignment.review),
        )
    )


def _assignment(assignment_id: int) -> Assignment:
    """The evaluator's own assignment, readable only while allowed: never with an unjustified conflict."""
    assignment = (
        db.session.scalars(_assignment_query(), {"assignment_id": assignment_id}).unique().one_or_none()
    )
    if assignment is None or not scoring.can_review(assignment, current_user):
        abort(404)
    return assignment


def _review_page(assignment_id: int, score_form=None, recuse_form=None):
    """The page of the evaluator's own assignment, read as plain values (see ``ReviewSheet``): never
    with an unjustified conflict."""
    sheet = scoring.review_sheet(assignment_id)
    if sheet is None or not scoring.can_review(sheet, current_user):
        abort(404)
    return render_template(
        "reviews/review.html",
        sheet=sheet,
        content=sheet.content,
        criteria=sheet.criteria,
        form=score_form or forms.score_form(sheet.criteria, formdata={}),
        recuse_form=recuse_form or forms.RecuseForm(formdata=None),
        others=services.others_reviews(sheet),
    )


@bp.route("/reviews/<int:assignment_id>", methods=["GET", "POST"])
@evaluator_required
def review(assignment_id: int):
    if request.method == "GET":
        return _review_page(assignment_id)
    assignment = _assignment(assignment_id)
    criteria = assignment.assessment.review.challenge.criteria
    form = forms.score_form(criteria)
    if form.validate_on_submit() and commit_change(
        form,
        lambda: scoring.submit_review(
            assignment,
            forms.scores_from(form, criteria),
            form.comment_to_applicant.data or "",
            form.comment_to_programme.data or "",
            by=current_user,
        ),
    ):
        flash(_("Your review is submitted. You can now read the other evaluators' reviews."))
        return redirect(url_for("reviews.review", assignment_id=assignment.id), 303)
    return _review_page(assignment_id, score_form=form)


@bp.post("/reviews/<int:assignment_id>/recuse")
@evaluator_required
def recuse(assignment_id: int):
    assignment = _assignment(assignment_id)
    form = forms.RecuseForm()
    if form.validate_on_submit() and commit_change(
        form, lambda: assignments.recuse(assignment, form.reason.data or "", by=current_user)
    ):
        flash(_("You have recused from this proposal. Another evaluator will take it over."))
        return redirect(url_for("reviews.mine"), 303)
    return _review_page(assignment_id, recuse_form=form)


@bp.get("/reviews/<int:assignment_id>/attachments/<int:attachment_id>")
@evaluator_required
def attachment(assignment_id: int, attachment_id: int):
    assignment = _assignment(assignment_id)
    version = assignment.assessment.assessed_version
    row = db.session.get(ProposalAttachment, attachment_id)
    if row is None or row.id not in {a["id"] for a in version.content["attachments"]}:
        abort(404)
    name = row.filename
    if assignment.assessment.review.blind:  # a file name can say who wrote it
        name = f"attachment-{[a['id'] for a in version.content['attachments']].index(row.id) + 1}.pdf"
    return files.send(row.storage_name, name)


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


def _desk_page(challenge: Challenge, review: ChallengeReview, **overrides):
    settings = forms.SettingsForm(
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
        settings_form=overrides.get("settings_form", settings),
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
