"""Shared column types and the event log (the outbox) with its per-handler tracking rows."""

from __future__ import annotations

import enum
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Mapped, mapped_column, relationship
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.types import TypeDecorator

from challenges.extensions import Model, db

T = TypeVar("T")


_frozen_now: ContextVar[datetime | None] = ContextVar("frozen_now", default=None)


def utcnow() -> datetime:
    """The current instant, timezone-aware in UTC; the instant set by :func:`clock_at` inside its block."""
    frozen = _frozen_now.get()
    return datetime.now(UTC) if frozen is None else frozen


@contextmanager
def clock_at(instant: datetime) -> Iterator[datetime]:
    """Stop the clock at *instant* for the block: every ``utcnow()`` in this context returns it.

    For telling a history that happened at other times: the demo's 2016–2017 programme, and drivers
    that replay time. Every timestamp (events, ledger transfers, reports, …) is read through
    ``utcnow()``, so all of them take the instant. Production code never sets it.
    """
    if instant.tzinfo is None:
        raise ValueError("naive datetime given; use an aware UTC instant")
    token = _frozen_now.set(instant.astimezone(UTC))
    try:
        yield instant.astimezone(UTC)
    finally:
        _frozen_now.reset(token)


class UTCDateTime(TypeDecorator):
    """A timezone-aware UTC instant on every backend; naive datetimes are refused."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; use an aware UTC instant")
        value = value.astimezone(UTC)
        # SQLite has no time zones: store UTC without an offset.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class json_rows(FunctionElement):  # noqa: N801 - used as SQL functions are
    """An aggregate: the values of each row as a JSON array, all rows as one array (NULL or ``[]``
    when there are none; in no particular order). A page that needs a short list beside one row
    reads both in one statement."""

    type = sa.JSON()
    inherit_cache = True
    name = "json_rows"


@compiles(json_rows)
def _json_rows(element, compiler, **kw) -> str:  # SQLite
    return f"json_group_array(json_array({compiler.process(element.clauses, **kw)}))"


@compiles(json_rows, "postgresql")
def _json_rows_postgresql(element, compiler, **kw) -> str:
    return f"json_agg(json_build_array({compiler.process(element.clauses, **kw)}))"


def must_get(model: type[T], key: Any) -> T:
    """The row of *model* with primary key *key*; a handler whose row is gone fails loudly (and is
    retried, then listed) rather than doing nothing."""
    row = db.session.get(model, key)
    if row is None:
        raise LookupError(f"{model.__name__} {key} not found")
    return row


def enum_column(enum_cls: type[enum.Enum], name: str) -> sa.Enum:
    """A portable enum column storing the member values, with a named CHECK constraint."""
    return sa.Enum(
        enum_cls,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=max(len(m.value) for m in enum_cls),
        values_callable=lambda cls: [m.value for m in cls],
        validate_strings=True,
    )


class HandlingState(enum.Enum):
    pending = "pending"
    done = "done"
    dead = "dead"


class Event(Model):
    """One domain event: the audit trail, and the outbox from which handlers are run."""

    __tablename__ = "event_log"

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    type: Mapped[str] = mapped_column(sa.String(80), index=True)
    version: Mapped[int] = mapped_column(sa.Integer, default=1)
    payload: Mapped[dict] = mapped_column(sa.JSON)
    actor_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("user_account.id", ondelete="SET NULL"), index=True
    )
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)

    handlings: Mapped[list[EventHandling]] = relationship(
        back_populates="event", cascade="all, delete-orphan", lazy="selectin"
    )


class EventHandling(Model):
    """Whether one handler has dealt with one event: the idempotency record."""

    __tablename__ = "event_handling"
    __table_args__ = (
        sa.Index("ix_event_handling_state_created", "state", "created_at"),
        sa.CheckConstraint("attempts >= 0", name="attempts_not_negative"),
    )

    event_id: Mapped[str] = mapped_column(sa.ForeignKey("event_log.id", ondelete="CASCADE"), primary_key=True)
    handler: Mapped[str] = mapped_column(sa.String(80), primary_key=True)
    queue: Mapped[str] = mapped_column(sa.String(20))
    state: Mapped[HandlingState] = mapped_column(
        enum_column(HandlingState, "handling_state"), default=HandlingState.pending
    )
    attempts: Mapped[int] = mapped_column(sa.Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    event: Mapped[Event] = relationship(back_populates="handlings")

    @property
    def job_id(self) -> str:
        return job_id_for(self.event_id, self.handler)


def job_id_for(event_id: str, handler: str) -> str:
    """The deterministic RQ job id of one (event, handler) pair (RQ allows [A-Za-z0-9_-])."""
    return f"ev-{event_id}-{handler}"
