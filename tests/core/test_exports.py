"""CSV cells that a spreadsheet would run as formulas are neutralised."""

from __future__ import annotations

import pytest

from challenges.core.exports import csv_cell


@pytest.mark.parametrize("start", ["=", "+", "-", "@", "\t", "\r"])
def test_formula_starts_are_quoted(start):
    assert csv_cell(f"{start}SUM(A1)") == f"'{start}SUM(A1)"


def test_other_cells_are_left_as_they_are():
    assert [csv_cell(v) for v in ("Sensors AB", 12, None, "a=b")] == ["Sensors AB", "12", "", "a=b"]


def test_a_negative_number_stays_a_number_but_text_that_looks_like_one_is_quoted():
    assert [csv_cell(v) for v in (-500_000, -0.5, "-500000", True)] == ["-500000", "-0.5", "'-500000", "True"]
