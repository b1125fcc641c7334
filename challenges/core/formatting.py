"""Money and time for people: kronor from öre, instants shown and entered in Stockholm time."""

from __future__ import annotations

import functools
import re
from datetime import UTC, date, datetime, time, tzinfo
from decimal import Decimal
from zoneinfo import ZoneInfo

from babel import Locale, dates, numbers
from flask import Flask
from flask_babel import format_decimal, format_percent, get_locale, get_timezone

from challenges.core import markdown

STOCKHOLM = ZoneInfo("Europe/Stockholm")


class NonexistentLocalTime(ValueError):
    """The clocks jump over this local time (the spring change to summer time)."""


def from_local(day: date, clock: time) -> datetime:
    """The UTC instant of a wall-clock time in Stockholm.

    A time skipped by the change to summer time is refused; a time that happens twice
    (the autumn change) means its first occurrence.
    """
    local = datetime.combine(day, clock.replace(second=0, microsecond=0), STOCKHOLM)
    instant = local.astimezone(UTC)
    if instant.astimezone(STOCKHOLM).replace(tzinfo=None) != local.replace(tzinfo=None):
        raise NonexistentLocalTime(local.isoformat())
    return instant


def to_local(instant: datetime) -> datetime:
    return instant.astimezone(STOCKHOLM)


def local_day(instant: datetime) -> date:
    """The day *instant* falls on in Stockholm."""
    return to_local(instant).date()


# Pages show the same amounts and instants again and again (a catalogue page twenty deadlines and
# maximums): each is formatted once per language and kept, as Babel takes tens of microseconds a call.
_FORMATTED = 8192


def sek(ore: int | None) -> str:
    """An amount in öre as kronor, with öre only when there are any: "500 000 kr"."""
    if ore is None:
        return ""
    return _sek(ore, get_locale())


@functools.lru_cache(maxsize=_FORMATTED)
def _sek(ore: int, locale: Locale) -> str:
    return f"{numbers.format_decimal(Decimal(ore).scaleb(-2), format='#,##0.##', locale=locale)} kr"


def local_datetime(instant: datetime | None, style: str = "medium") -> str:
    """An instant in Stockholm time, in the page's language (Flask-Babel's time zone)."""
    if instant is None:
        return ""
    pattern = {"medium": "d MMM y HH:mm", "long": "EEEE d MMMM y HH:mm", "date": "d MMM y"}[style]
    return _datetime(instant, pattern, get_locale(), get_timezone())


@functools.lru_cache(maxsize=_FORMATTED)
def _datetime(instant: datetime, pattern: str, locale: Locale, zone: tzinfo) -> str:
    return dates.format_datetime(instant, pattern, tzinfo=zone, locale=locale)


def score(value: float | None) -> str:
    """A mean score with two decimals, in the page's language ("5,10" in Swedish); a dash for none."""
    return "–" if value is None else format_decimal(value, format="0.00")


def percent(fraction: float) -> str:
    """A share as a percentage with up to two decimals, in the page's language ("4,25 %")."""
    return format_percent(fraction, "#,##0.##%")


def warm(app: Flask) -> None:
    """Load Babel's data for each language and the time zone's rules now, not in a worker's first job
    (a published challenge's first notices waited a third of a second for them)."""
    zone = ZoneInfo(app.config["BABEL_DEFAULT_TIMEZONE"])
    for language in app.config["LANGUAGES"]:
        locale = Locale.parse(language)
        for pattern in ("d MMM y HH:mm", "EEEE d MMMM y HH:mm"):
            dates.format_datetime(datetime.now(UTC), pattern, tzinfo=zone, locale=locale)
        _sek(100, locale)


def init_app(app: Flask) -> None:
    app.jinja_env.filters["sek"] = sek
    app.jinja_env.filters["percent"] = percent
    app.jinja_env.filters["score"] = score
    app.jinja_env.filters["local_datetime"] = local_datetime
    app.jinja_env.filters["markdown"] = markdown.render
    app.jinja_env.filters["xml_text"] = xml_text


_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def xml_text(value: object) -> str:
    """Text that XML 1.0 can carry: control characters removed (escaping is the template's)."""
    return _XML_INVALID.sub("", str(value))
