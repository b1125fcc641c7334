"""Each person's choice for non-essential mail (at once, a daily digest, or off), the messages on the
site with their unread count, closing-soon reminders, and a text missing from a translation."""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, time, timedelta

import pytest
import sqlalchemy as sa

from challenges.accounts.models import MailMode, OrganisationKind, User
from challenges.calls import jobs as call_jobs
from challenges.calls import questions
from challenges.calls import services as calls
from challenges.calls.models import Challenge, ChallengeStatus
from challenges.core.formatting import from_local, to_local
from challenges.core.models import Event, utcnow
from challenges.extensions import db
from challenges.notifications.catalogue import Notice
from challenges.notifications.jobs import compile_digests
from challenges.notifications.models import MailMessage, MessageState
from challenges.notifications.services import render_message
from challenges.proposals import services as proposals
from tests.factories import make_challenge, make_org, make_user
from tests.proposals.conftest import content, make_proposal


def _tomorrow_at(hour: int) -> datetime:
    """*hour* o'clock in Stockholm tomorrow: after every message the test writes now, whatever the
    wall clock (a fixed date would be before them once it has passed)."""
    return from_local(to_local(utcnow()).date() + timedelta(days=1), time(hour))


def _set_mode(user_id: int, mode: MailMode) -> None:
    db.session.get(User, user_id).mail_mode = mode
    db.session.commit()


def _messages(email: str) -> list[MailMessage]:
    db.session.rollback()
    return list(
        db.session.scalars(
            sa.select(MailMessage).where(MailMessage.recipient == email).order_by(MailMessage.id)
        )
    )


def _ask_and_answer(people, challenge_id: int, n: int = 2) -> None:
    for i in range(n):
        challenge = db.session.get(Challenge, challenge_id)
        question = questions.ask_question(challenge, f"Question number {i}?", by=people["sme"])
        db.session.flush()
        questions.answer_question(question, f"Answer number {i}.", by=people["owner"])
        db.session.commit()


@pytest.fixture
def open_challenge(people, drain, smtp) -> int:
    challenge = make_challenge(people["owner"], ChallengeStatus.published)
    db.session.commit()
    challenge_id = challenge.id
    drain()
    smtp.reset()
    db.session.execute(sa.delete(MailMessage))
    db.session.commit()
    return challenge_id


def test_a_daily_digest_gathers_the_days_messages_into_one_email(
    people, open_challenge, smtp, drain, make_browser
):
    owner_id, sme_email = people["owner"].id, people["sme"].email
    _set_mode(owner_id, MailMode.daily)
    _ask_and_answer(people, open_challenge)
    drain()
    held = _messages("owner@steel.example.com")
    assert [m.state for m in held] == [MessageState.held, MessageState.held]
    assert smtp.to("owner@steel.example.com") == []  # nothing yet: it waits for the digest
    assert len(smtp.to(sme_email)) == 2  # the asker chose nothing: at once

    morning = _tomorrow_at(8)
    assert compile_digests(now=_tomorrow_at(6)) == 0  # 06:00 in Stockholm: not yet
    assert compile_digests(now=morning) == 1
    assert compile_digests(now=morning + timedelta(hours=3)) == 0  # one a day
    drain()
    [digest] = smtp.to("owner@steel.example.com")
    body = digest.get_body(("plain",)).get_content()
    assert digest["Subject"] == "Your daily summary from the open innovation platform"
    assert body.count("A question about your challenge") == 2
    assert "http://localhost/messages/" in body
    rows = _messages("owner@steel.example.com")
    digest_row = next(m for m in rows if m.notice == "digest")
    owner = make_browser("owner@steel.example.com")  # on the site: the two messages, not the digest
    assert 'class="badge" aria-hidden="true">2</span>' in owner.get("/messages").get_data(as_text=True)
    assert owner.get(f"/messages/{digest_row.id}").status_code == 404
    assert {m.state for m in rows if m.notice != "digest"} == {MessageState.digested}
    assert {m.digest_id for m in rows if m.notice != "digest"} == {digest_row.id}


def test_a_disabled_account_gets_no_digest(people, open_challenge, smtp, drain):
    _set_mode(people["owner"].id, MailMode.daily)
    _ask_and_answer(people, open_challenge, n=1)
    drain()
    db.session.get(User, people["owner"].id).active = False
    db.session.commit()
    assert compile_digests(now=_tomorrow_at(8)) == 0
    assert [m.state for m in _messages("owner@steel.example.com")] == [MessageState.held]


def test_an_empty_digest_is_never_sent(people, open_challenge, smtp, drain):
    _set_mode(people["owner"].id, MailMode.daily)
    assert compile_digests(now=_tomorrow_at(8)) == 0
    drain()
    assert smtp.messages == []
    assert (
        db.session.scalar(sa.select(sa.func.count()).select_from(Event).where(Event.type == "DigestCompiled"))
        == 0
    )


def test_essential_messages_go_at_once_whatever_the_choice(people, open_challenge, smtp, drain):
    _set_mode(people["owner"].id, MailMode.off)
    _ask_and_answer(people, open_challenge, n=1)
    challenge = db.session.get(Challenge, open_challenge)
    calls.extend_deadline(
        challenge, challenge.deadline + timedelta(days=3), "More time.", by=people["colleague"]
    )
    db.session.commit()
    drain()
    rows = {m.notice: m.state for m in _messages("owner@steel.example.com")}
    assert rows == {"question_asked": MessageState.muted}  # the owner does not follow its own challenge
    assert smtp.to("owner@steel.example.com") == []
    # Sara follows it (she asked) and hears of the deadline at once, whatever she chose for questions
    _set_mode(people["sme"].id, MailMode.off)
    challenge = db.session.get(Challenge, open_challenge)
    calls.extend_deadline(
        challenge, challenge.deadline + timedelta(days=3), "Even more time.", by=people["owner"]
    )
    db.session.commit()
    drain()
    assert [m["Subject"] for m in smtp.to("sara@sensors.example.com")][-1] == "A challenge has a new deadline"


def test_the_choice_is_made_on_the_account_page(people, make_browser):
    sara = make_browser("sara@sensors.example.com")
    page = sara.get("/account").get_data(as_text=True)
    assert "One summary a day" in page and "always emailed at once" in page
    response = sara.submit(
        "/account", {"name": "Sara", "language": "en", "mail_mode": "daily"}, page_url="/account"
    )
    assert response.status_code == 303
    db.session.rollback()
    assert db.session.get(User, people["sme"].id).mail_mode is MailMode.daily
    bad = sara.submit(
        "/account", {"name": "Sara", "language": "en", "mail_mode": "hourly"}, page_url="/account"
    )
    assert bad.status_code == 200 and "Not a valid choice" in bad.get_data(as_text=True)
    db.session.rollback()
    assert db.session.get(User, people["sme"].id).mail_mode is MailMode.daily


def test_messages_on_the_site_with_an_unread_count(people, open_challenge, smtp, drain, make_browser):
    _set_mode(people["owner"].id, MailMode.off)  # not emailed, still on the site
    _ask_and_answer(people, open_challenge)
    drain()
    owner = make_browser("owner@steel.example.com")
    home = owner.get("/").get_data(as_text=True)
    assert 'class="badge" aria-hidden="true">2</span>' in home and "2 unread" in home
    listing = owner.get("/messages").get_data(as_text=True)
    assert listing.count("A question about your challenge") == 2 and "Not emailed (turned off)" in listing
    first = _messages("owner@steel.example.com")[0].id
    page = owner.get(f"/messages/{first}").get_data(as_text=True)
    assert "Question number 0?" in page
    assert 'aria-hidden="true">1</span>' in page  # the count read with the login session is read again
    assert 'aria-hidden="true">1</span>' in owner.get("/").get_data(as_text=True)
    assert owner.submit("/messages/read", {}, page_url="/messages").status_code == 303
    assert 'class="badge"' not in owner.get("/").get_data(as_text=True)
    # someone else's message is not there for them
    other = make_browser("owner@cars.example.com")
    assert other.get(f"/messages/{first}").status_code == 404


def test_the_outbox_searches_by_recipient_event_and_state(people, open_challenge, smtp, drain, make_browser):
    _ask_and_answer(people, open_challenge, n=1)
    drain()
    pm = make_browser("manager@agency.example.com")
    by_event = pm.get("/admin/outbox?event=QuestionAnswered").get_data(as_text=True)
    assert "sara@sensors.example.com" in by_event and "owner@steel.example.com" not in by_event
    by_recipient = pm.get("/admin/outbox?q=steel").get_data(as_text=True)
    assert "owner@steel.example.com" in by_recipient and "sara@sensors" not in by_recipient
    assert "sara@sensors" not in pm.get("/admin/outbox?state=dead").get_data(as_text=True)
    sent = pm.get("/admin/outbox?state=sent&event=QuestionAsked").get_data(as_text=True)
    assert "owner@steel.example.com" in sent and ">Sent<" in sent
    # unknown filters are ignored, not errors
    assert pm.get("/admin/outbox?state=bogus&event=Nope").status_code == 200
    message = _messages("owner@steel.example.com")[0]
    page = pm.get(f"/admin/outbox/{message.id}").get_data(as_text=True)
    assert "QuestionAsked" in page, page[page.find("<main") :][:3000]
    assert "Question number 0?" in page, page[page.find("<main") :][:3000]
    assert "QuestionAsked · the owner's members" in page


def test_closing_reminders_go_to_unsubmitted_proposals_three_days_and_one_day_before(people, smtp, drain):
    challenge = make_challenge(people["owner"], ChallengeStatus.published)
    make_proposal(people["sme"], challenge, submit=False)  # a draft
    make_proposal(people["other_sme"], challenge, submit=True)  # submitted: nothing to remind
    edited_by = make_user("ada@edits.example.com", org=make_org(OrganisationKind.sme))
    edited = make_proposal(edited_by, challenge, submit=True)
    proposals.update_proposal(edited, content(edited_by, title="Changed after submitting"), by=edited_by)
    db.session.commit()
    challenge_id, deadline = challenge.id, challenge.deadline
    drain()
    smtp.reset()
    assert call_jobs.send_closing_reminders(now=deadline - timedelta(days=4)) == 0
    assert call_jobs.send_closing_reminders(now=deadline - timedelta(days=2, hours=12)) == 1
    assert call_jobs.send_closing_reminders(now=deadline - timedelta(days=2)) == 0  # once
    drain()
    assert [m["Subject"] for m in smtp.to("sara@sensors.example.com")] == [
        "Reminder: a challenge closes in three days"
    ]
    assert [m["Subject"] for m in smtp.to("ada@edits.example.com")] == [
        "Reminder: a challenge closes in three days"
    ]
    assert smtp.to("jonas@robots.example.com") == []
    assert call_jobs.send_closing_reminders(now=deadline - timedelta(hours=12)) == 1
    drain()
    assert [m["Subject"] for m in smtp.to("sara@sensors.example.com")][
        -1
    ] == "Reminder: a challenge closes tomorrow"
    # a later deadline gets its own reminders
    challenge = db.session.get(Challenge, challenge_id)
    calls.extend_deadline(challenge, deadline + timedelta(days=7), "More time.", by=people["owner"])
    db.session.commit()
    assert call_jobs.send_closing_reminders(now=deadline - timedelta(hours=11)) == 0
    assert call_jobs.send_closing_reminders(now=deadline + timedelta(days=5)) == 1
    # the reminder is sealed in the outbox like the proposal it is about
    reminder = next(m for m in _messages("sara@sensors.example.com") if m.notice == "closing_in_three_days")
    assert reminder.sealed_challenge_id == challenge_id


def test_a_text_missing_from_the_translation_is_written_in_english_and_logged(app, ctx, caplog):
    from flask_babel import lazy_gettext as _l

    # a text of its own: each missing text is logged once per process, and a process may run the suite twice
    missing = f"A subject that no catalogue has ({uuid.uuid4().hex[:8]})"
    notice = Notice("test", "UserRegistered", "x", "welcome", _l(missing))
    user = User(name="Sara", email="sara@example.com", language="sv")
    with caplog.at_level(logging.WARNING, logger="challenges.core.translation"):
        subject, text, html = render_message(notice, "sv", {"user": user})
    assert subject == missing
    assert "Hej Sara" in text  # the rest is Swedish
    assert any(f"no sv translation for {missing!r}" in r.getMessage() for r in caplog.records)


def test_a_language_without_templates_falls_back_to_english(app, ctx, smtp, drain, caplog):
    from challenges.notifications.services import Recipient, notify

    event = Event(id=str(uuid.uuid4()), type="UserRegistered", version=1, payload={}, occurred_at=utcnow())
    db.session.add(event)
    with caplog.at_level(logging.WARNING):
        [message_id] = notify(
            event,
            "welcome",
            [Recipient(email="kurt@example.com", language="de")],
            user=User(name="Kurt", email="kurt@example.com"),
        )
    message = db.session.get(MailMessage, message_id)
    assert message.language == "en" and message.subject == "Welcome to the open innovation platform"
    assert "Hello Kurt" in message.body_text
    assert any("no templates in language 'de'" in r.getMessage() for r in caplog.records)
    db.session.rollback()
