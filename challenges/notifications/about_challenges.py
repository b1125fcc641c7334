"""Who hears about challenges, and what they are told. Each handler runs on the ``notifications``
queue, once per event; the names are those the handlers were first stored with, in the calls package.
Subjects come from the catalogue and never carry a challenge's title: user text stays in the body.
"""

from __future__ import annotations

from challenges.accounts.models import Role, User
from challenges.accounts.people import people_with_role
from challenges.calls import events, following
from challenges.calls.models import Challenge, Question
from challenges.core.bus import NOTIFICATIONS_QUEUE, EventBus
from challenges.core.models import Event, must_get
from challenges.extensions import db
from challenges.notifications.services import notify, recipient_for, recipients_for, recipients_of


def send_submitted(e: events.ChallengeSubmitted, record: Event) -> None:
    notify(
        record,
        "challenge_submitted",
        recipients_for(people_with_role(Role.programme_manager)),
        challenge=must_get(Challenge, e.challenge_id),
    )


def send_returned(e: events.ChallengeReturned, record: Event) -> None:
    challenge = must_get(Challenge, e.challenge_id)
    notify(
        record,
        "challenge_returned",
        recipients_for(following.owner_members(challenge)),
        challenge=challenge,
        comment=e.comment,
    )


def send_published(e: events.ChallengePublished, record: Event) -> None:
    challenge = must_get(Challenge, e.challenge_id)
    notify(
        record, "challenge_published", recipients_for(following.owner_members(challenge)), challenge=challenge
    )


def send_match(e: events.ChallengePublished, record: Event) -> None:
    """Members of SMEs that follow the challenge's area or one of its themes."""
    challenge = must_get(Challenge, e.challenge_id)
    notify(
        record,
        "challenge_match",
        recipients_of(following.followers(challenge, of_challenge=False)),
        challenge=challenge,
        in_parts=True,
    )


def send_question(e: events.QuestionAsked, record: Event) -> None:
    challenge = must_get(Challenge, e.challenge_id)
    notify(
        record,
        "question_asked",
        recipients_for(following.owner_members(challenge)),
        challenge=challenge,
        question=must_get(Question, e.question_id),
    )


def send_answer(e: events.QuestionAnswered, record: Event) -> None:
    """The asker (if still active), then the followers."""
    challenge = must_get(Challenge, e.challenge_id)
    question = must_get(Question, e.question_id)
    asker = db.session.get(User, question.asked_by_id) if question.asked_by_id else None
    if asker is not None and asker.active:
        notify(
            record,
            "question_answered",
            [recipient_for(asker)],
            challenge=challenge,
            question=question,
            asker=True,
        )
    notify(
        record,
        "question_answered",
        recipients_of(following.followers(challenge)),
        challenge=challenge,
        question=question,
        asker=False,
        in_parts=True,
    )


def register(bus: EventBus) -> None:
    """Subscribe the handlers that tell people about challenges."""
    bus.subscribe(
        events.ChallengeSubmitted, send_submitted, name="calls_send_submitted", queue=NOTIFICATIONS_QUEUE
    )
    bus.subscribe(
        events.ChallengeReturned, send_returned, name="calls_send_returned", queue=NOTIFICATIONS_QUEUE
    )
    bus.subscribe(
        events.ChallengePublished, send_published, name="calls_send_published", queue=NOTIFICATIONS_QUEUE
    )
    bus.subscribe(events.ChallengePublished, send_match, name="calls_send_match", queue=NOTIFICATIONS_QUEUE)
    bus.subscribe(events.QuestionAsked, send_question, name="calls_send_question", queue=NOTIFICATIONS_QUEUE)
    bus.subscribe(events.QuestionAnswered, send_answer, name="calls_send_answer", queue=NOTIFICATIONS_QUEUE)
