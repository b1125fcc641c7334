"""Facts about the programme and its money. Each fires in the service named in its docstring."""

from __future__ import annotations

from dataclasses import dataclass

from challenges.core.events import DomainEvent


@dataclass(frozen=True)
class ExchangeRateSet(DomainEvent):
    """A programme manager set the SEK/EUR rate used for the EU SME thresholds (``set_exchange_rate``)."""

    programme_id: int
    eur_rate_ore: int


ALL: tuple[type[DomainEvent], ...] = (ExchangeRateSet,)
