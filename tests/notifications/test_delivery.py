"""Mail: once per (event, recipient), refusals recorded, nothing of the user's in a header."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from challenges.accounts import passwords
from challenges.accounts import services as accounts
from challenges.accounts.models import Role
from challenges.core.models import EventHandling, HandlingState
from challenges.core.security import is_header_safe
from challenges.extensions import db
from challenges.notifications.models import MailContent, MailMessage, MessageState
from challenges.notifications.sending import build_email
from challenges.notifications.services import message_id_for
from tests.factories import TEST_PASSWORD, make_user


def _register(email="sara@example.com", language="en"):
    user = accounts.register_user(name="Sara", email=email, password=TEST_PASSWORD, language=language)
    db.session.commit()
    return user


def test_message_has_a_message_id_from_event_and_recipient(app, ctx, smtp, drain):
    _register()
    drain()
    [message] = smtp.to("sara@example.com")
    row = db.session.scalar(sa.select(MailMessage))
    assert (
        message["Message-ID"] == row.message_id == message_id_for(row.event_id, "welcome", "sara@example.com")
    )
    assert row.state is MessageState.sent
    assert message.get_body(("html",)) is not None
    assert "http://localhost/login" in message.get_body(("plain",)).get_content()


def test_permanent_refusal_is_recorded_and_not_retried(app, ctx, smtp, drain):
    smtp.refuse_recipients["sara@example.com"] = "550 5.1.1 no such user"
    _register()
    drain()
    row = db.session.scalar(sa.select(MailMessage))
    assert row.state is MessageState.dead and row.last_reply.startswith("550") and row.attempts == 1
    assert db.session.scalar(sa.select(EventHandling)).state is HandlingState.done


def test_temporary_refusal_is_retried_and_sent_once(app, ctx, smtp, drain, monkeypatch):
    monkeypatch.setitem(app.config, "MAIL_RETRY_DELAYS", [0, 0, 0, 0, 0])
    smtp.data_replies.append("451 4.3.0 try again later")
    _register()
    drain()
    assert len(smtp.to("sara@example.com")) == 1
    row = db.session.scalar(sa.select(MailMessage))
    assert (row.state, row.attempts) == (MessageState.sent, 2)


def test_without_smtp_mail_stays_in_the_local_outbox(app, ctx, smtp, drain, monkeypatch, make_browser):
    monkeypatch.setitem(app.config, "SMTP_HOST", "")
    _register()
    drain()
    assert smtp.messages == []
    row = db.session.scalar(sa.select(MailMessage))
    assert row.state is MessageState.stored
    make_user("pm@example.com", roles=(Role.programme_manager,))
    db.session.commit()
    pm = make_browser()
    pm.login("pm@example.com")
    assert "Welcome to the open innovation platform" in pm.get("/admin/outbox?q=sara").get_data(as_text=True)
    page = pm.get(f"/admin/outbox/{row.id}").get_data(as_text=True)
    assert "Your account on the open innovation platform is ready" in page
    body = pm.get(f"/admin/outbox/{row.id}/body")
    assert "sandbox" in body.headers["Content-Security-Policy"]


def test_mail_is_written_in_the_recipients_language(app, ctx, smtp, drain):
    _register(language="sv")
    drain()
    [message] = smtp.to("sara@example.com")
    assert message["Subject"] == "Välkommen till plattformen för öppen innovation"


INJECTIONS = [
    "x\r\nBcc: evil@example.com",
    "x\nBcc: evil@example.com",
    "x\rBcc: evil@example.com",
    "=?UTF-8?Q?=0A?=Bcc: evil@example.com",
    "x\x00y",
    "x\u2028Bcc: evil@example.com",
]


@pytest.mark.parametrize("value", INJECTIONS)
def test_header_unsafe_text_is_detected(value):
    assert not is_header_safe(value)


@pytest.mark.parametrize("value", INJECTIONS)
def test_mail_builder_refuses_unsafe_headers(app, ctx, value):
    message = MailMessage(
        recipient="sara@example.com",
        message_id="<a@b>",
        language="en",
        content=MailContent(subject=value, body_text="t", body_html="<p>t</p>"),
        created_at=__import__("datetime").datetime.now(__import__("datetime").UTC),
    )
    with pytest.raises(ValueError):
        build_email(message)


def test_user_text_never_reaches_a_header(app, ctx, smtp, drain):
    user = make_user(
        "sara@example.com", name="Sara =?UTF-8?Q?=0A?="
    )  # a name saved before validation existed
    db.session.commit()
    passwords.request_password_reset(user.email)
    db.session.commit()
    drain()
    [message] = smtp.to("sara@example.com")
    assert sorted(message.keys()) == sorted(
        [
            "From",
            "To",
            "Subject",
            "Date",
            "Message-ID",
            "Content-Language",
            "Auto-Submitted",
            "Content-Type",
            "MIME-Version",
        ]
    )
    assert smtp.envelopes[-1][1] == ["sara@example.com"]
    assert re.fullmatch(r"Reset your password", message["Subject"])


def _loaded(ids: list[int]) -> list[MailMessage]:
    return [db.session.get(MailMessage, i) for i in ids]


def test_a_notice_to_many_is_rendered_once_per_language_unless_its_template_names_the_recipient(
    app, ctx, monkeypatch
):
    from jinja2 import ChoiceLoader, DictLoader

    from challenges.core.models import Event
    from challenges.notifications import services as mail

    user = _register()
    event = db.session.scalar(sa.select(Event).where(Event.type == "UserRegistered"))
    rendered = []
    render = mail.render_message

    def counted(notice, language, context, subject_args=None):
        rendered.append(language)
        return render(notice, language, context, subject_args)

    monkeypatch.setattr(mail, "render_message", counted)
    people = [mail.Recipient(email=f"p{i}@example.com", language=("sv", "en")[i % 2]) for i in range(6)]
    messages = _loaded(mail.notify(event, "welcome", people, user=user))
    assert sorted(rendered) == ["en", "sv"]
    swedish = [m for m in messages if m.language == "sv"]
    assert len({(m.subject, m.body_text, m.body_html) for m in swedish}) == 1 and len(swedish) == 3
    assert messages[0].body_text != messages[1].body_text  # the languages differ
    # and stored once per language, not once per recipient
    assert len({m.content_id for m in swedish}) == 1 and len({m.content_id for m in messages}) == 2

    monkeypatch.setattr(
        app.jinja_env,
        "loader",
        ChoiceLoader(
            [
                DictLoader(
                    {"email/welcome.txt": "Hello {{ recipient.email }}\n{% include 'email/_footer.txt' %}"}
                ),
                app.jinja_env.loader,
            ]
        ),
    )
    mail._names_recipient.cache_clear()
    rendered.clear()
    try:
        people = [mail.Recipient(email=f"q{i}@example.com", language="en") for i in range(3)]
        messages = _loaded(mail.notify(event, "welcome", people, user=user))
    finally:
        mail._names_recipient.cache_clear()
    assert len(rendered) == 3
    assert [m.body_text.splitlines()[0] for m in messages] == [f"Hello q{i}@example.com" for i in range(3)]
    assert len({m.content_id for m in messages}) == 3


def test_a_batch_composes_each_content_once_and_each_message_reads_as_built_alone(app, ctx):
    """The sending path reuses the encoded content of a notice for all its recipients; what each
    recipient gets must be the very message build_email() makes for them."""
    from email import message_from_bytes
    from email.policy import default

    from challenges.notifications.sending import _Composer

    when = __import__("datetime").datetime(2026, 12, 3, 9, 30, tzinfo=__import__("datetime").UTC)
    messages = [
        MailMessage(
            recipient=f"p{i}@example.com",
            message_id=f"<m{i}@challenges.localhost>",
            language=("sv", "en")[i % 2],
            content=MailContent(
                subject=("Välkommen", "Welcome")[i % 2],
                body_text=("Hej och välkommen!", "Hello!")[i % 2] + "\n" + "x" * 200,
                body_html=("<p>Hej och välkommen!</p>", "<p>Hello!</p>")[i % 2],
            ),
            created_at=when,
            resent_count=1 if i == 3 else 0,
        )
        for i in range(4)
    ]
    composer = _Composer()
    for message in messages:
        got = message_from_bytes(composer.bytes_of(message), policy=default)
        want = message_from_bytes(build_email(message).as_bytes(), policy=default)  # what send_message sends
        assert sorted((k, str(v)) for k, v in got.items() if k != "Content-Type") == sorted(
            (k, str(v)) for k, v in want.items() if k != "Content-Type"
        )  # the boundary is random
        for kind in ("plain", "html"):
            assert got.get_body((kind,)).get_content() == want.get_body((kind,)).get_content()
        assert got["To"] == message.recipient
    assert len(composer.contents) == 2  # one per language
    assert message_from_bytes(composer.bytes_of(messages[3]))["References"] == "<m3@challenges.localhost>"


def test_messages_written_before_contents_were_shared_keep_their_words(app, ctx):
    """The migration that shares contents stores each distinct subject and bodies once, and points every
    message written before it at its own words; undone, it gives each message its words back."""
    from datetime import UTC, datetime

    from flask_migrate import downgrade, upgrade

    said = [("A", "a", "<p>a</p>"), ("A", "a", "<p>a</p>"), ("B", "b", "<p>b</p>"), ("A", "a2", "<p>a</p>")]
    db.session.remove()
    downgrade(revision="9b5d3f7e2a48")
    try:
        now = datetime.now(UTC)
        event = sa.table("event_log", *map(sa.column, ("id", "type", "version", "payload", "occurred_at")))
        message = sa.table(
            "mail_message",
            *map(
                sa.column,
                ("event_id", "recipient", "notice", "language", "message_id", "subject", "body_text")
                + ("body_html", "state", "attempts", "created_at", "resent_count"),
            ),
        )
        with db.engine.begin() as conn:
            conn.execute(
                event.insert().values(
                    id="e1", type="UserRegistered", version=1, payload="{}", occurred_at=now
                )
            )
            for i, (subject, text, html) in enumerate(said):
                conn.execute(
                    message.insert().values(
                        event_id="e1",
                        recipient=f"p{i}@example.com",
                        notice="welcome",
                        language="en",
                        message_id=f"<m{i}@example.com>",
                        subject=subject,
                        body_text=text,
                        body_html=html,
                        state="sent",
                        attempts=1,
                        created_at=now,
                        resent_count=0,
                    )
                )
    finally:
        upgrade()
    messages = db.session.scalars(sa.select(MailMessage).order_by(MailMessage.recipient)).all()
    assert [(m.subject, m.body_text, m.body_html) for m in messages] == said
    assert db.session.scalar(sa.select(sa.func.count()).select_from(MailContent)) == 3
    assert messages[0].content_id == messages[1].content_id != messages[2].content_id
    db.session.remove()
    downgrade(revision="9b5d3f7e2a48")  # and back: each message holds its own words again
    try:
        with db.engine.connect() as conn:
            back = conn.execute(
                sa.select(message.c.subject, message.c.body_text, message.c.body_html).order_by(
                    message.c.recipient
                )
            ).all()
    finally:
        upgrade()
    assert [tuple(row) for row in back] == said
