"""The periods a programme report covers: the programme's own report dates, or any period a manager
sets, each day counted in Stockholm time."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from flask_babel import gettext as _

from challenges.core.errors import InvalidInput
from challenges.core.formatting import from_local, local_day
from challenges.core.models import utcnow
from challenges.funding.models import (
    Programme,
)


def today() -> date:
    return local_day(utcnow())


@dataclass(frozen=True)
class Period:
    """From the first day to the last (the date the report is *as of*), both whole days in Stockholm."""

    start: date
    end: date

    @functools.cached_property
    def start_at(self) -> datetime:
        return from_local(self.start, time(0))

    @functools.cached_property
    def end_at(self) -> datetime:
        return from_local(self.end + timedelta(days=1), time(0))

    def holds(self, instant: datetime) -> bool:
        return self.start_at <= instant < self.end_at


def programme_start(programme: Programme) -> date:
    """The programme runs from 1 January of its first year."""
    first = min((y.year for y in programme.years), default=today().year)
    return date(first, 1, 1)


def report_periods(programme: Programme) -> list[Period]:
    """The reports the programme owes whose day has come, each from the day after the one before (the
    first from the start)."""
    periods, start = [], programme_start(programme)
    for text in sorted(programme.report_dates or []):
        end = date.fromisoformat(text)
        if start <= end <= today():
            periods.append(Period(start, end))
            start = end + timedelta(days=1)
    return periods


def parse_period(programme: Programme, start_text: str | None, end_text: str | None) -> Period:
    """The period asked for, or InvalidInput naming what is wrong; empty fields mean the programme's
    start and today."""
    first, now = programme_start(programme), today()
    errors: dict[str, str] = {}
    days: dict[str, date] = {}
    for name, text, default in (("start", start_text, first), ("end", end_text, now)):
        text = (text or "").strip()
        try:
            days[name] = date.fromisoformat(text) if text else default
        except ValueError:
            errors[name] = _("Enter a date like 2016-10-15.")
            continue
        if days[name] < first:
            errors[name] = _(
                "The programme starts on %(day)s; choose a date from then on.", day=first.isoformat()
            )
        elif days[name] > now:
            errors[name] = _(
                "A report can only be made as of a day that has begun (today is %(day)s).",
                day=now.isoformat(),
            )
    if not errors and days["end"] < days["start"]:
        errors["end"] = _("The period ends before it starts.")
    if errors:
        raise InvalidInput(errors)
    return Period(days["start"], days["end"])
