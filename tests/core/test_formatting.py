"""Stockholm wall-clock time to UTC across the clock changes; amounts and instants in the reader's language."""

from __future__ import annotations

from datetime import UTC, date, datetime, time

import pytest
from flask_babel import force_locale

from challenges.core.formatting import NonexistentLocalTime, from_local, local_datetime, sek


def test_a_time_that_happens_twice_in_autumn_means_its_first_occurrence():
    # 31 October 2027: clocks go back from 03:00 summer time to 02:00; 02:30 happens twice
    assert from_local(date(2027, 10, 31), time(2, 30)) == datetime(2027, 10, 31, 0, 30, tzinfo=UTC)


def test_a_time_skipped_in_spring_is_refused():
    with pytest.raises(NonexistentLocalTime):
        from_local(date(2027, 3, 28), time(2, 30))


def test_an_ordinary_winter_and_summer_time():
    assert from_local(date(2027, 1, 15), time(12, 0)) == datetime(2027, 1, 15, 11, 0, tzinfo=UTC)
    assert from_local(date(2027, 7, 15), time(12, 0)) == datetime(2027, 7, 15, 10, 0, tzinfo=UTC)


def test_a_kept_amount_or_instant_is_kept_for_its_own_language(app):
    """Formatted once and kept: never the Swedish text for an English reader, nor the other way round."""
    instant = datetime(2027, 3, 1, 11, 30, tzinfo=UTC)  # 12:30 in Stockholm
    with app.test_request_context():
        seen = {}
        for language in ("sv", "en", "sv", "en"):
            with force_locale(language):
                seen.setdefault(language, set()).add((sek(123_456_78), local_datetime(instant)))
    assert seen == {
        "sv": {("123\xa0456,78 kr", "1 mars 2027 12:30")},
        "en": {("123,456.78 kr", "1 Mar 2027 12:30")},
    }
