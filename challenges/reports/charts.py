"""Geometry for the report's SVG charts (drawn by templates/reports/_charts.html, no script).

Each function returns plain numbers in a fixed view box; the template draws them and labels every
bar and line with its value, so the chart reads the same in print and to a screen reader.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

WIDTH = 720
LABEL = 300  # room for the labels left of the bars (templates truncate them to 40 characters)
ROW = 26


@dataclass(frozen=True)
class Bar:
    label: str
    value: int
    y: int
    length: float


def bars(rows: list[tuple[str, int]]) -> dict:
    """Horizontal bars, longest to scale."""
    top = max((value for _, value in rows), default=0) or 1
    room = WIDTH - LABEL - 130
    items = [
        Bar(label, value, i * ROW, round(room * value / top, 1)) for i, (label, value) in enumerate(rows)
    ]
    return {"items": items, "height": max(len(rows) * ROW, ROW), "width": WIDTH, "left": LABEL}


def pairs(rows: list[tuple[str, int, int]]) -> dict:
    """Two thin bars per row (for example proposals and awards per challenge), on one scale."""
    top = max((max(a, b) for _, a, b in rows), default=0) or 1
    room = WIDTH - LABEL - 60
    items = [
        (
            label,
            Bar(label, a, i * ROW * 2, round(room * a / top, 1)),
            Bar(label, b, i * ROW * 2 + ROW - 6, round(room * b / top, 1)),
        )
        for i, (label, a, b) in enumerate(rows)
    ]
    return {"items": items, "height": max(len(rows) * ROW * 2, ROW), "width": WIDTH, "left": LABEL}


def lines(points: list[tuple[date, int, int, int]], ceiling: int) -> dict:
    """Cumulative series over time (one polyline per series), against a ceiling such as the allocation;
    with each series' last value, for the legend."""
    height, left, right, bottom = 260, 40, WIDTH - 40, 230
    top = max([ceiling, *(max(p[1:]) for p in points)]) or 1
    span = max(len(points) - 1, 1)

    def xy(i: int, value: int) -> str:
        return f"{left + (right - left) * i / span:.1f},{bottom - (bottom - 20) * value / top:.1f}"

    columns = list(zip(*((p[1], p[2], p[3]) for p in points), strict=True)) if points else [(0,), (0,), (0,)]
    series = [" ".join(xy(i, value) for i, value in enumerate(column)) for column in columns]
    ceiling_y = round(bottom - (bottom - 20) * ceiling / top, 1)
    ticks = [
        (left + (right - left) * i / span, p[0])
        for i, p in enumerate(points)
        if i == 0 or i == len(points) - 1 or p[0].month in (1, 7)
    ]
    return {
        "series": series,
        "last": [column[-1] for column in columns],
        "ceiling": ceiling,
        "ceiling_y": ceiling_y,
        "ticks": ticks,
        "height": height,
        "width": WIDTH,
        "bottom": bottom,
        "left": left,
        "right": right,
    }
