"""CSV downloads for the analytics tables: one place that neutralises spreadsheet formulas.

A cell that starts with = + - @ (or a tab / carriage return) is run as a formula by Excel and
LibreOffice (CSV injection). Azure-supplied strings (runbook, group, exception text) are untrusted,
so every string cell that starts with one of those gets a leading apostrophe. Numbers are written
as numbers (a negative number stays a number).
"""
from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from django.http import StreamingHttpResponse

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_SAFE_FILENAME = re.compile(r"[^A-Za-z0-9._-]+")


def neutralise(value: Any) -> Any:
    """One CSV cell: datetimes as ISO 8601 UTC, None as empty, formula-looking strings defused."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, datetime):
        return value.isoformat()
    text = str(value)
    if text.startswith(_FORMULA_START):
        return "'" + text
    return text


class _Echo:
    def write(self, value: str) -> str:
        return value


def csv_response(filename: str, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> StreamingHttpResponse:
    """Stream ``rows`` as an attachment named ``filename`` (sanitised), every cell neutralised."""
    writer = csv.writer(_Echo())

    def lines() -> Iterable[str]:
        yield writer.writerow([neutralise(h) for h in header])
        for row in rows:
            yield writer.writerow([neutralise(cell) for cell in row])

    safe = _SAFE_FILENAME.sub("-", filename).strip("-") or "export.csv"
    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{safe}"'
    response["X-Content-Type-Options"] = "nosniff"
    return response
