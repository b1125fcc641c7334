"""Who hears about challenges, and the job that closes one at its deadline.

Emails go out on the ``notifications`` queue; scheduling the close runs on ``workflow``.
Email subjects never carry a challenge's title: user text stays in the body.
"""

from __future__ import annotations

from datetime import datetime

from flask_babel import lazy_gettext as _l
from rq import Queue

from challenges.accounts.models import Role
from challenges.accounts.services import people_with_role
from challenges.calls import events, services
from challenges.calls.models import Challenge, ChangeNote, Question
from challenges.core.events import EventBus
from challenges.core.models import Event
from challenges.extensions import db, get_redis
from challenges.notifications.services import deliver, recipient_for


def _challenge(challenge_id: int) -> Challenge:
    challenge = db.session.get(Challenge, challenge_id)
    if challenge is None:
        raise LookupError(f"challenge {challenge_id} not found")
    return challenge


def _to(users) -> list:
    return [recipient_for(u) for u in users]


def send_submitted(e: events.ChallengeSubmitted, record: Event) -> None:
    challenge = _challenge(e.challenge_id)
    deliver(record, "challenge_submitted", _l("A challenge is waiting for your approval"),
            _to(people_with_role(Role.programme_manager)), challenge=challenge)


def send_returned(e: events.ChallengeReturned, record: Event) -> None:
    challenge = _challenge(e.challenge_id)
    deliver(record, "challenge_returned", _l("Your challenge has been returned with a comment"),
            _to(services.owner_members(challenge)), challenge=challenge, comment=e.comment)


def send_published(e: events.ChallengePublished, record: Event) -> None:
    challenge = _challenge(e.challenge_id)
    deliver(record, "challenge_published", _l("Your challenge is published"),
            _to(services.owner_members(challenge)), challenge=challenge)


def send_match(e: events.ChallengePublished, record: Event) -> None:
    """Members of SMEs that follow the challenge's area or one of its themes."""
    challenge = _challenge(e.challenge_id)
    deliver(record, "challenge_match", _l("A new challenge matches what you follow"),
            _to(services.follower_recipients(challenge, of_challenge=False)), challenge=challenge)


def send_change(e: events.ChallengeClarified | events.DeadlineExtended, record: Event) -> None:
    challenge = _challenge(e.challenge_id)
    note = db.session.get(ChangeNote, e.note_id)
    subject = (_l("A challenge you follow has a new deadline") if isinstance(e, events.DeadlineExtended)
               else _l("A challenge you follow has a clarification"))
    deliver(record, "challenge_changed", subject, _to(services.follower_recipients(challenge)),
            challenge=challenge, note=note)


def send_question(e: events.QuestionAsked, record: Event) -> None:
    challenge = _challenge(e.challenge_id)
    deliver(record, "question_asked", _l("A question about your challenge"),
            _to(services.owner_members(challenge)), challenge=challenge,
            question=db.session.get(Question, e.question_id))


def send_answer(e: events.QuestionAnswered, record: Event) -> None:
    challenge = _challenge(e.challenge_id)
    deliver(record, "question_answered", _l("A question about a challenge you follow has been answered"),
            _to(services.follower_recipients(challenge)), challenge=challenge,
            question=db.session.get(Question, e.question_id))


def schedule_close(e: events.ChallengePublished | events.DeadlineExtended, record: Event) -> None:
    """Ask RQ's scheduler to close the challenge at its deadline, to the second.

    This is the fast path only: the periodic sweep closes every due row from the
    database, so nothing is lost if Redis forgets this job.
    """
    deadline = datetime.fromisoformat(e.new_deadline if isinstance(e, events.DeadlineExtended) else e.deadline)
    Queue("workflow", connection=get_redis()).enqueue_at(
        deadline, services.close_if_due, e.challenge_id,
        job_id=f"close-{e.challenge_id}-{int(deadline.timestamp())}", job_timeout=120)


def register(bus: EventBus) -> None:
    """Subscribe the challenge handlers."""
    bus.declare(*events.ALL)
    bus.subscribe(events.ChallengeSubmitted, send_submitted, queue="notifications")
    bus.subscribe(events.ChallengeReturned, send_returned, queue="notifications")
    bus.subscribe(events.ChallengePublished, send_published, queue="notifications")
    bus.subscribe(events.ChallengePublished, send_match, queue="notifications")
    bus.subscribe(events.ChallengePublished, schedule_close, queue="workflow")
    bus.subscribe(events.ChallengeClarified, send_change, queue="notifications")
    bus.subscribe(events.DeadlineExtended, send_change, queue="notifications")
    bus.subscribe(events.DeadlineExtended, schedule_close, queue="workflow")
    bus.subscribe(events.QuestionAsked, send_question, queue="notifications")
    bus.subscribe(events.QuestionAnswered, send_answer, queue="notifications")
