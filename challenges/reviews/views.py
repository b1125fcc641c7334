"""Review pages: evaluators' assignments, conflicts and scoring; the programme's review desk."""

from __future__ import annotations

import functools

import sqlalchemy as sa
from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy.orm import joinedload, load_only

from challenges.accounts.models import Role
from challenges.calls.models import Challenge
from challenges.core.pages import commit_change, requires
from challenges.extensions import db
from challenges.proposals import files
from challenges.proposals.models import Proposal, ProposalAttachment
from challenges.reviews import assignments, bp, forms, scoring, services
from challenges.reviews.conflicts import ConflictIndex
from challenges.reviews.models import (
    DECISION_LABELS,
    RELATION_LABELS,
    SCALE_LABELS,
    Assessment,
    Assignment,
    ChallengeReview,
    ConflictDeclaration,
    Relation,
)


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


evaluator_required = requires(lambda person: person.active and person.has_role(Role.evaluator))


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
