"""CSV downloads that a spreadsheet cannot turn against its reader."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence

from flask import send_file

_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: object) -> str:
    """A cell as text; text that starts like a formula is prefixed with a quote (a number, such as a
    negative amount, stays a number)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


def csv_download(header: Sequence[str], rows: Iterable[Sequence[object]], filename: str):
    """A UTF-8 CSV (with a byte-order mark, for spreadsheets) as an attachment, never cached."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows([csv_cell(v) for v in row] for row in rows)
    return send_file(
        io.BytesIO(out.getvalue().encode("utf-8-sig")),
        mimetype="text/csv",
        as_attachment=True,
        download_name=filename,
        max_age=0,
    )
