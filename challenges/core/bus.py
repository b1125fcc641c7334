"""The event contract: the domain events each package declares, the handlers that subscribe to them,
and the queues they run on.

An event type and a handler are known by the name stored with each event (``Event.type``,
``EventHandling.handler``), given where they are declared, never derived from a class or function
name: renaming code changes nothing stored. ``tests/core/test_event_contract.py`` keeps the list of
every name, and ``docs/events.md`` the table of who handles what (:func:`event_table`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

from flask import current_app

from challenges.core.models import Event

LEDGER_QUEUE = "ledger"
WORKFLOW_QUEUE = "workflow"
NOTIFICATIONS_QUEUE = "notifications"
QUEUES = (LEDGER_QUEUE, WORKFLOW_QUEUE, NOTIFICATIONS_QUEUE)  # where event handlers run
# The periodic jobs (sweepers, deadlines, reminders, digests) have a queue of their own, taken
# right after the ledger's, so that a backlog of events never makes a deadline or reminder late.
PERIODIC_QUEUE = "periodic"
WORKER_QUEUES = (LEDGER_QUEUE, PERIODIC_QUEUE, WORKFLOW_QUEUE, NOTIFICATIONS_QUEUE)


@dataclass(frozen=True)
class DomainEvent:
    """Base class of every domain event: a past-tense fact carrying ids and values.

    Each event type names itself, ``class ProposalSubmitted(DomainEvent, type_name="ProposalSubmitted")``:
    the name is what the event log stores and what reports and the ledger's rebuild look for, so it
    never changes, whatever the class is called. A payload that changes shape gets a higher
    ``version`` and an upcaster from the one before (:meth:`EventBus.upcaster`); a name given up
    stays readable in ``aliases``. ``tests/core/test_event_contract.py`` holds every name.
    """

    type_name: ClassVar[str]
    version: ClassVar[int] = 1
    aliases: ClassVar[tuple[str, ...]] = ()

    def __init_subclass__(cls, *, type_name: str, aliases: tuple[str, ...] = (), **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.type_name = type_name
        cls.aliases = aliases

    def payload(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


HandlerFunc = Callable[[Any, Event], None]
BatchFunc = Callable[[list[tuple[Any, Event]]], None]
Upcaster = Callable[[dict[str, Any]], dict[str, Any]]


@dataclass(frozen=True)
class Fact:
    """An event as history reads it: its type's name of today (not an alias it was stored under) and
    its payload in today's shape (:meth:`EventBus.fact`)."""

    id: str
    type: str
    payload: dict[str, Any]
    occurred_at: datetime
    actor_id: int | None = None


@dataclass(frozen=True)
class Handler:
    name: str  # stored with each event it is to handle: never changes (see EventBus.subscribe)
    queue: str
    func: HandlerFunc
    # Handles many events in one transaction. Such a handler's events are not one job each: a commit
    # wakes one drain job (run_batches) that takes every waiting event in batches.
    batch: BatchFunc | None = None


class EventBus:
    """The one table of who handles which event, filled by each module's ``register()``."""

    def __init__(self) -> None:
        self.event_types: dict[str, type[DomainEvent]] = {}  # by stored name, aliases included
        self.handlers: dict[str, list[Handler]] = {}  # by event type name
        self._by_name: dict[str, Handler] = {}  # by stored name, aliases included
        self._upcasters: dict[tuple[str, int], Upcaster] = {}

    def declare(self, *event_types: type[DomainEvent]) -> None:
        for cls in event_types:
            for name in (cls.type_name, *cls.aliases):
                if self.event_types.setdefault(name, cls) is not cls:
                    raise ValueError(f"two event types are called {name!r}")
            self.handlers.setdefault(cls.type_name, [])

    def subscribe(
        self,
        event_type: type[DomainEvent],
        func: HandlerFunc,
        *,
        name: str,
        queue: str,
        batch: BatchFunc | None = None,
        aliases: tuple[str, ...] = (),
    ) -> None:
        """Run *func* for each *event_type* on *queue*. *name* is stored with every event the handler
        is to handle, so that a job finds it after a restart: it never changes (a name given up stays
        in *aliases*, for the events still waiting under it). A function subscribed to several
        event types keeps one name."""
        if queue not in QUEUES:
            raise ValueError(f"unknown queue {queue!r}")
        if batch is not None and aliases:  # its drain reads its events by its one name
            raise ValueError(f"batch handler {name!r} cannot take aliases: drain it under the old name first")
        self.declare(event_type)
        handler = self._by_name.setdefault(name, Handler(name, queue, func, batch))
        if handler.func is not func or handler.batch is not batch or handler.queue != queue:
            raise ValueError(f"two handlers are called {name!r}")
        for alias in aliases:
            if self._by_name.setdefault(alias, handler) is not handler:
                raise ValueError(f"two handlers are called {alias!r}")
        self.handlers[event_type.type_name].append(handler)

    def upcaster(self, event_type: type[DomainEvent], from_version: int) -> Callable[[Upcaster], Upcaster]:
        """Register the function that turns a payload of *event_type* stored at *from_version* into
        the next version's (a decorator)."""

        def register(func: Upcaster) -> Upcaster:
            if self._upcasters.setdefault((event_type.type_name, from_version), func) is not func:
                raise ValueError(f"two upcasters from version {from_version} of {event_type.type_name}")
            return func

        return register

    def check(self) -> None:
        """Every version of every event type before its current one can be upcast (at start-up)."""
        for cls in set(self.event_types.values()):
            missing = [v for v in range(1, cls.version) if (cls.type_name, v) not in self._upcasters]
            if missing:
                raise LookupError(
                    f"{cls.type_name} is at version {cls.version} with no upcaster from {missing}"
                )

    def handler(self, name: str) -> Handler:
        return self._by_name[name]

    def handler_names(self) -> dict[str, Handler]:
        """Every stored name a handler answers to, aliases included."""
        return dict(self._by_name)

    def payload(self, record: Event) -> dict[str, Any]:
        """*record*'s payload in its event type's current shape, whatever version stored it: the one
        way history is read (handlers, reports, the ledger's rebuild)."""
        cls = self.event_types[record.type]
        payload, version = dict(record.payload), record.version
        while version < cls.version:
            payload = self._upcasters[(cls.type_name, version)](payload)
            version += 1
        return payload

    def fact(self, record: Event) -> Fact:
        return Fact(
            record.id,
            self.event_types[record.type].type_name,
            self.payload(record),
            record.occurred_at,
            record.actor_id,
        )

    def stored_names(self, *event_types: type[DomainEvent]) -> list[str]:
        """Every name events of *event_types* may be stored under (their aliases too): what a query of
        the event log asks for."""
        return [name for cls in event_types for name in (cls.type_name, *cls.aliases)]

    def same_type(self, stored: str, name: str) -> bool:
        """Whether an event stored as *stored* is of the type called *name* today."""
        known = self.event_types.get(stored)
        return known is not None and known.type_name == name

    def load(self, record: Event) -> DomainEvent:
        return self.event_types[record.type](**self.payload(record))


def get_bus() -> EventBus:
    return current_app.extensions["event_bus"]


def event_table(bus: EventBus) -> str:
    """Every event type with its version, module, and the handlers it wakes and their queues, as
    Markdown (``flask events``; ``docs/events.md`` holds it)."""
    lines = ["| Event | Version | Declared in | Handler | Queue |", "|---|---|---|---|---|"]
    for name, cls in sorted(bus.event_types.items()):
        if name != cls.type_name:
            continue  # an alias
        lead = f"| `{name}` | {cls.version} | `{cls.__module__}` "
        if not bus.handlers[name]:
            lines.append(lead + "| – | |")
        for i, handler in enumerate(bus.handlers[name]):
            lines.append((lead if i == 0 else "| | | ") + f"| `{handler.name}` | {handler.queue} |")
    return "\n".join(lines) + "\n"
