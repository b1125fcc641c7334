"""A published challenge's exchange with the companies: amendments (clarifications, a later
deadline), questions and answers, and follows (of a challenge, and of themes and areas)."""

from __future__ import annotations

from datetime import datetime
from typing import cast

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from challenges.calls import bp, forms, questions, services
from challenges.calls import following as follows
from challenges.calls.models import (
    Question,
)

# What the catalogue and a challenge's page show a visitor: a write to any of these renews them.
from challenges.calls.views import load_challenge, page_form, topics_by_kind
from challenges.core.pages import change_and_return, requires
from challenges.extensions import db

# --- amendments, questions, follows ----------------------------------------------------------


@bp.post("/challenges/<int:challenge_id>/clarifications")
@login_required
def clarify(challenge_id: int):
    challenge = load_challenge(challenge_id)
    form = forms.ClarificationForm()
    return page_form(
        challenge,
        form,
        "clarify_form",
        lambda: services.add_clarification(challenge, form.text.data, by=current_user),
        _("The clarification has been added and followers are being told."),
    )


@bp.post("/challenges/<int:challenge_id>/deadline")
@login_required
def extend(challenge_id: int):
    challenge = load_challenge(challenge_id)
    form = forms.ExtendDeadlineForm()
    return page_form(
        challenge,
        form,
        "extend_form",
        lambda: services.extend_deadline(
            challenge, cast(datetime, form.deadline), form.reason.data or "", by=current_user
        ),
        _("The deadline has been extended and followers are being told."),
    )


@bp.post("/challenges/<int:challenge_id>/questions")
@login_required
def ask(challenge_id: int):
    challenge = load_challenge(challenge_id)
    form = forms.QuestionForm()
    return page_form(
        challenge,
        form,
        "question_form",
        lambda: questions.ask_question(challenge, form.text.data, by=current_user),
        _("Your question has been sent. The answer will be published on this page."),
    )


@bp.post("/challenges/<int:challenge_id>/questions/<int:question_id>/answer")
@login_required
def answer(challenge_id: int, question_id: int):
    challenge = load_challenge(challenge_id)
    question = db.get_or_404(Question, question_id)
    if question.challenge_id != challenge.id:
        abort(404)
    form = forms.AnswerForm(prefix=f"q{question.id}")
    return page_form(
        challenge,
        form,
        "answer_form",
        lambda: questions.answer_question(question, form.text.data, by=current_user),
        _("The answer is published."),
    )


@bp.post("/challenges/<int:challenge_id>/<any(follow,unfollow):action>")
@login_required
def follow(challenge_id: int, action: str):
    challenge = load_challenge(challenge_id)
    target = url_for("calls.detail", challenge_id=challenge_id)
    if action == "follow":
        return change_and_return(
            lambda: follows.follow_challenge(challenge, by=current_user),
            _("Your organisation follows this challenge: you will hear of answers and changes."),
            target,
        )
    return change_and_return(
        lambda: follows.unfollow_challenge(challenge, by=current_user),
        _("Your organisation no longer follows this challenge."),
        target,
    )


@bp.route("/following", methods=["GET", "POST"])
@requires(lambda person: person.is_sme_member)
def following():
    grouped = topics_by_kind()
    form = forms.FollowTopicsForm()
    form.topics.choices = [(t.id, t.label) for kind in grouped.values() for t in kind]
    if form.validate_on_submit():
        follows.set_followed_topics(form.topics.data or [], by=current_user)
        flash(
            _(
                "Your organisation's choices have been saved. Its members get an email when a matching "
                "challenge is published."
            )
        )
        return redirect(url_for("calls.following"), 303)
    if request.method == "GET":
        form.topics.data = sorted(follows.followed_topic_ids(current_user.organisation))
    return render_template("calls/following.html", form=form, grouped=grouped)
