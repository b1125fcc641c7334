"""Who may do what to a challenge: every challenge route, for every kind of person.

anon = not logged in; sme = member of an SME; owner = member of the owning company;
other = member of another industrial company; evaluator; manager = programme manager.
302 = sent to the login page; 404 = may not even know the challenge exists.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from challenges.calls import questions
from challenges.calls.models import Challenge, ChallengeStatus, Follow, Question, Topic
from challenges.core.formatting import to_local
from challenges.core.models import Event, utcnow
from challenges.extensions import db
from tests.factories import make_challenge

ROLES = ["anon", "sme", "owner", "other", "evaluator", "manager"]
EMAIL = {
    "sme": "sara@sensors.example.com",
    "owner": "owner@steel.example.com",
    "other": "owner@cars.example.com",
    "evaluator": "eva@evaluators.example.com",
    "manager": "manager@agency.example.com",
}


def expect(anon=302, sme=403, owner=403, other=403, evaluator=403, manager=403) -> dict[str, int]:
    return {
        "anon": anon,
        "sme": sme,
        "owner": owner,
        "other": other,
        "evaluator": evaluator,
        "manager": manager,
    }


PUBLIC = expect(200, 200, 200, 200, 200, 200)
UNSEEN = 404  # a draft is invisible to everyone but its owner and the programme
GET_ROUTES = [
    ("published page", "/challenges/{published}", PUBLIC),
    ("closed page", "/challenges/{closed}", PUBLIC),
    ("draft page", "/challenges/{draft}", expect(UNSEEN, UNSEEN, 200, UNSEEN, UNSEEN, 200)),
    ("submitted page", "/challenges/{submitted}", expect(UNSEEN, UNSEEN, 200, UNSEEN, UNSEEN, 200)),
    ("edit a draft", "/challenges/{draft}/edit", expect(302, UNSEEN, 200, UNSEEN, UNSEEN, 403)),
    ("edit a published one", "/challenges/{published}/edit", expect(302, 403, 403, 403, 403, 403)),
    ("new", "/challenges/new", expect(owner=200, other=200)),
    ("own list", "/challenges/mine", expect(owner=200, other=200)),
    ("following", "/following", expect(sme=200)),
    ("all challenges", "/admin/challenges", expect(manager=200)),
    ("topics", "/admin/topics", expect(manager=200)),
    ("one topic", "/admin/topics/{topic}", expect(manager=200)),
    ("no such challenge", "/challenges/999999", expect(404, 404, 404, 404, 404, 404)),
]


def _deadline_later(ids) -> dict:
    later = to_local(utcnow() + timedelta(days=90))
    return {"deadline_date": later.date().isoformat(), "deadline_time": "12:00"}


POST_ROUTES = [
    # (name, url, form data, expected, what must have happened when allowed)
    (
        "submit",
        "/challenges/{draft}/submit",
        {},
        expect(302, UNSEEN, 303, UNSEEN, UNSEEN, 403),
        "ChallengeSubmitted",
    ),
    (
        "withdraw",
        "/challenges/{submitted}/withdraw",
        {},
        expect(302, UNSEEN, 303, UNSEEN, UNSEEN, 403),
        "ChallengeWithdrawn",
    ),
    (
        "approve",
        "/challenges/{submitted}/approve",
        {},
        expect(302, UNSEEN, 403, UNSEEN, UNSEEN, 303),
        "ChallengePublished",
    ),
    (
        "return",
        "/challenges/{submitted}/return",
        {"comment": "More detail."},
        expect(manager=303),
        "ChallengeReturned",
    ),
    ("start review", "/challenges/{closed}/start_review", {}, expect(manager=303), "ChallengeReviewStarted"),
    (
        "clarify",
        "/challenges/{published}/clarifications",
        {"text": "Note."},
        expect(owner=303),
        "ChallengeClarified",
    ),
    ("extend", "/challenges/{published}/deadline", _deadline_later, expect(owner=303), "DeadlineExtended"),
    ("ask", "/challenges/{published}/questions", {"text": "Why?"}, expect(sme=303), "QuestionAsked"),
    (
        "answer",
        "/challenges/{published}/questions/{question}/answer",
        lambda ids: {f"q{ids['question']}-text": "So."},
        expect(owner=303),
        "QuestionAnswered",
    ),
    (
        "edit draft",
        "/challenges/{draft}/edit",
        {"title": "x"},
        expect(302, UNSEEN, 200, UNSEEN, UNSEEN, 403),
        None,
    ),
    ("follow", "/challenges/{published}/follow", {}, expect(sme=303), "follow"),
    ("follow topics", "/following", lambda ids: {"topics": [str(ids["topic"])]}, expect(sme=303), "follow"),
    (
        "new topic",
        "/admin/topics",
        {"kind": "theme", "name_en": "Lasers", "name_sv": "Laser"},
        expect(manager=303),
        None,
    ),
]


@pytest.fixture
def ids(people):
    owner = people["owner"]
    made = {
        status.value: make_challenge(owner, status, title=f"A {status.value} one").id
        for status in (
            ChallengeStatus.draft,
            ChallengeStatus.submitted,
            ChallengeStatus.published,
            ChallengeStatus.closed,
        )
    }
    published = db.session.get(Challenge, made["published"])
    made["question"] = questions.ask_question(published, "What size?", by=people["other_sme"]).id
    made["topic"] = db.session.scalar(sa.select(Topic.id).order_by(Topic.id))
    db.session.query(Follow).delete()
    db.session.commit()
    return made


def _browser(make_browser, role):
    b = make_browser()
    if role != "anon":
        assert b.login(EMAIL[role]).status_code == 303
    return b


@pytest.mark.parametrize("role", ROLES)
def test_get_routes(ids, make_browser, role):
    b = _browser(make_browser, role)
    for name, url, expected in GET_ROUTES:
        assert b.get(url.format(**ids)).status_code == expected[role], (name, role)


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize(
    ("name", "url", "data", "expected", "effect"), POST_ROUTES, ids=[r[0] for r in POST_ROUTES]
)
def test_post_routes(ids, make_browser, role, name, url, data, expected, effect):
    b = _browser(make_browser, role)
    url = url.format(**ids)
    data = data(ids) if callable(data) else data
    token = b.csrf("/challenges") if role != "anon" else b.csrf("/login")
    events_before = db.session.scalar(sa.select(sa.func.count()).select_from(Event))
    response = b.client.post(
        url, data={**data, "csrf_token": token}, headers={"Referer": "https://localhost/"}
    )
    assert response.status_code == expected[role], (name, role, response.get_data(as_text=True)[:3000])
    db.session.rollback()
    events_after = db.session.scalar(sa.select(sa.func.count()).select_from(Event))
    follows = db.session.scalar(sa.select(sa.func.count()).select_from(Follow))
    if expected[role] != 303:
        assert events_after == events_before, (name, role)
        assert follows == 0
    elif effect == "follow":
        assert follows == 1
    elif effect:
        assert db.session.scalar(sa.select(Event.type).order_by(Event.occurred_at.desc()).limit(1)) == effect


def test_unanswered_questions_are_for_the_owner_only(ids, make_browser):
    text = "What size?"
    for role in ROLES:
        page = _browser(make_browser, role).get(f"/challenges/{ids['published']}").get_data(as_text=True)
        assert (text in page) == (role in ("owner", "manager")), role
    assert db.session.get(Question, ids["question"]).answer is None
