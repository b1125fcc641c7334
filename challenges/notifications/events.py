"""Events of the notifications module."""

from __future__ import annotations

from dataclasses import dataclass, field

from challenges.core.bus import DomainEvent


@dataclass(frozen=True)
class DigestCompiled(DomainEvent, type_name="DigestCompiled"):
    """A person's held messages were gathered into the day's digest."""

    user_id: int
    day: str  # ISO date, Stockholm time
    message_ids: list[int] = field(default_factory=list)


ALL: tuple[type[DomainEvent], ...] = (DigestCompiled,)
