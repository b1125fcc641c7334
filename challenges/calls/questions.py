"""Questions and answers on a published challenge: an SME asks, the owner answers in public."""

from __future__ import annotations

from flask_babel import gettext as _

from challenges.accounts.models import User
from challenges.calls import events
from challenges.calls.following import ensure_following
from challenges.calls.models import (
    Challenge,
    Question,
)
from challenges.core.errors import PermissionDenied, ServiceError
from challenges.core.events import record
from challenges.core.models import utcnow
from challenges.extensions import db


def ask_question(challenge: Challenge, text: str, *, by: User) -> Question:
    """An SME member asks; the asker's organisation follows the challenge to hear the answer."""
    if not challenge.can_ask(by):
        if not challenge.is_open():
            raise ServiceError(_("The challenge is closed, so questions can no longer be asked."))
        raise PermissionDenied(_("Only members of a small or medium-sized enterprise can ask questions."))
    if not text.strip():
        raise ServiceError(_("Write your question."), "text")
    question = Question(challenge_id=challenge.id, asked_by_id=by.id, text=text.strip())
    db.session.add(question)
    ensure_following(by.organisation, challenge_id=challenge.id)
    db.session.flush()
    record(events.QuestionAsked(challenge_id=challenge.id, question_id=question.id), by=by)
    return question


def answer_question(question: Question, text: str, *, by: User) -> None:
    """The owner answers; the question and answer become public, without the asker's name."""
    challenge = question.challenge
    if not challenge.can_answer(by):
        raise PermissionDenied(_("Only the organisation that owns this challenge can answer its questions."))
    if question.answer is not None:
        raise ServiceError(_("This question has already been answered."))
    if not text.strip():
        raise ServiceError(_("Write the answer."), "text")
    question.answer = text.strip()
    question.answered_at = utcnow()
    question.answered_by_id = by.id
    db.session.flush()
    record(events.QuestionAnswered(challenge_id=challenge.id, question_id=question.id), by=by)
