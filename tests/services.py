"""Real services for the tests: a private Redis server and an in-process SMTP server."""

from __future__ import annotations

import email
import threading
from email.message import EmailMessage
from email.policy import default as default_policy

from aiosmtpd.controller import Controller

from challenges.devserver import RedisServer, free_port

__all__ = ["RedisServer", "SMTPRecorder", "free_port", "start_smtp"]


class SMTPRecorder:
    """aiosmtpd handler that keeps what it receives and can be told to refuse."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        self.refuse_recipients: dict[str, str] = {}
        self.data_replies: list[str] = []
        # Faults on a recipient's first attempt only: a temporary reply, or the connection dropped.
        self.first_replies: dict[str, str] = {}
        self.drop_first: set[str] = set()
        self.always_replies: dict[str, str] = {}
        self.attempts: dict[str, int] = {}
        self.mail_from_reply: str | None = None  # e.g. "550 sender refused" for every MAIL FROM
        self.lock = threading.Lock()

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        if self.mail_from_reply:
            return self.mail_from_reply
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.lower() in self.refuse_recipients:
            return self.refuse_recipients[address.lower()]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            rcpt = envelope.rcpt_tos[0].lower() if envelope.rcpt_tos else ""
            attempt = self.attempts[rcpt] = self.attempts.get(rcpt, 0) + 1
            if rcpt in self.always_replies:
                return self.always_replies[rcpt]
            if attempt == 1 and rcpt in self.drop_first:
                server.transport.close()  # the connection drops before any reply
                return "451 4.4.2 connection dropped"
            if attempt == 1 and rcpt in self.first_replies:
                return self.first_replies[rcpt]
            if self.data_replies:
                return self.data_replies.pop(0)
            self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
            self.messages.append(
                email.message_from_bytes(envelope.content, policy=default_policy)  # type: ignore[arg-type]
            )
        return "250 Message accepted for delivery"

    def reset(self) -> None:
        with self.lock:
            self.messages.clear()
            self.envelopes.clear()
            self.refuse_recipients.clear()
            self.data_replies.clear()
            self.first_replies.clear()
            self.drop_first.clear()
            self.always_replies.clear()
            self.attempts.clear()
            self.mail_from_reply = None

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.messages if m["To"] == address]


def start_smtp() -> tuple[Controller, SMTPRecorder]:
    recorder = SMTPRecorder()
    controller = Controller(recorder, hostname="127.0.0.1", port=free_port())
    controller.start()
    return controller, recorder
