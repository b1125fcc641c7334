"""The event contract: every name ever stored with an event stays known (``event_names.txt``), a payload
stored at an old version is read in today's shape, and docs/events.md is the table the bus holds."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from challenges.core.bus import DomainEvent, EventBus, event_table
from challenges.core.models import Event

SNAPSHOT = Path(__file__).with_name("event_names.txt")
DOCS = Path(__file__).resolve().parents[2] / "docs" / "events.md"


def _snapshot() -> list[str]:
    return [line for line in SNAPSHOT.read_text().splitlines() if line and not line.startswith("#")]


def _names(bus: EventBus) -> set[str]:
    events = {f"event {name} {cls.version}" for name, cls in bus.event_types.items()}
    return events | {f"handler {name}" for name in bus.handler_names()}


def contract_breaks(bus: EventBus, snapshot: list[str]) -> list[str]:
    """What the snapshot names that *bus* no longer knows: a stored event or job it could not read."""
    breaks = []
    for line in snapshot:
        kind, name, *version = line.split()
        if kind == "handler" and name not in bus.handler_names():
            breaks.append(f"handler {name} is gone: give its new name aliases=({name!r},)")
        elif kind == "event" and name not in bus.event_types:
            breaks.append(f"event type {name} is gone: give its new class aliases=({name!r},)")
        elif kind == "event" and bus.event_types[name].version < int(version[0]):
            breaks.append(f"event type {name} went back from version {version[0]}")
    return breaks


def test_every_name_stored_with_an_event_is_still_known(app):
    assert contract_breaks(app.extensions["event_bus"], _snapshot()) == []


def test_every_name_in_use_is_in_the_snapshot(app):
    new = _names(app.extensions["event_bus"]) - set(_snapshot())
    assert not new, f"add to {SNAPSHOT.name}: {sorted(new)}"


def _handle(e: DomainEvent, record: Event) -> None:
    pass


def _bus(event_type: type[DomainEvent], handler: str, **subscribe) -> EventBus:
    bus = EventBus()
    bus.subscribe(event_type, _handle, name=handler, queue="workflow", **subscribe)
    bus.check()
    return bus


@dataclass(frozen=True)
class Sent(DomainEvent, type_name="Sent"):
    x: int


@dataclass(frozen=True)
class Renamed(DomainEvent, type_name="Renamed"):
    x: int


@dataclass(frozen=True)
class RenamedKeepingTheOld(DomainEvent, type_name="Renamed", aliases=("Sent",)):
    x: int


def test_a_renamed_event_type_or_handler_breaks_the_contract_unless_the_old_name_stays_as_an_alias():
    snapshot = ["event Sent 1", "handler old_handler"]
    assert contract_breaks(_bus(Sent, "old_handler"), snapshot) == []
    assert contract_breaks(_bus(Renamed, "old_handler"), snapshot) == [
        "event type Sent is gone: give its new class aliases=('Sent',)"
    ]
    assert contract_breaks(_bus(Sent, "new_handler"), snapshot) == [
        "handler old_handler is gone: give its new name aliases=('old_handler',)"
    ]
    kept = _bus(RenamedKeepingTheOld, "new_handler", aliases=("old_handler",))
    assert contract_breaks(kept, snapshot) == []
    # an event stored under the old name is read as the new class, and its job finds the new handler
    assert kept.load(Event(type="Sent", version=1, payload={"x": 3})) == RenamedKeepingTheOld(x=3)
    assert kept.handler("old_handler").name == "new_handler"


@dataclass(frozen=True)
class Measured(DomainEvent, type_name="Measured"):
    """Version 1 stored a length in metres as "m"; version 2 in millimetres as "mm"; version 3 adds a unit."""

    version = 3
    mm: int
    unit: str


def test_a_payload_stored_at_an_old_version_is_read_in_todays_shape():
    bus = EventBus()
    bus.declare(Measured)
    with pytest.raises(LookupError, match="Measured is at version 3 with no upcaster from \\[1, 2\\]"):
        bus.check()

    @bus.upcaster(Measured, 1)
    def _metres(payload: dict) -> dict:
        return {"mm": payload["m"] * 1000}

    with pytest.raises(LookupError, match="no upcaster from \\[2\\]"):
        bus.check()

    @bus.upcaster(Measured, 2)
    def _unit(payload: dict) -> dict:
        return {**payload, "unit": "mm"}

    bus.check()
    assert bus.load(Event(type="Measured", version=1, payload={"m": 2})) == Measured(mm=2000, unit="mm")
    assert bus.payload(Event(type="Measured", version=2, payload={"mm": 5})) == {"mm": 5, "unit": "mm"}
    assert bus.load(Event(type="Measured", version=3, payload={"mm": 7, "unit": "in"})) == Measured(
        mm=7, unit="in"
    )


def test_two_event_types_or_handlers_cannot_share_a_name():
    bus = _bus(Sent, "a_handler")
    with pytest.raises(ValueError, match="two event types are called 'Sent'"):
        bus.declare(RenamedKeepingTheOld)  # its alias is another's name
    with pytest.raises(ValueError, match="two handlers are called 'a_handler'"):
        bus.subscribe(Sent, lambda e, record: None, name="a_handler", queue="workflow")
    with pytest.raises(ValueError, match="unknown queue"):
        bus.subscribe(Sent, _handle, name="b_handler", queue="elsewhere")
    with pytest.raises(ValueError, match="batch handler 'c_handler' cannot take aliases"):
        bus.subscribe(
            Sent, _handle, name="c_handler", queue="workflow", batch=lambda batch: None, aliases=("old",)
        )


def test_the_docs_table_of_events_is_the_one_the_bus_holds(app):
    table = event_table(app.extensions["event_bus"])
    assert table in DOCS.read_text(), "docs/events.md is behind: paste the output of `flask events` into it"
