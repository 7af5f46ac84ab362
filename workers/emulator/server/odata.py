"""A small strict parser for the jobs ``$filter`` that Azure Automation accepts.

Grammar (OData subset, clauses joined with `` and ``)::

    clause   := field op value
    field    := properties/creationTime | properties/lastModifiedTime | properties/startTime
              | properties/endTime | properties/status | properties/runOn | properties/runbook/name
    op       := eq | ne | ge | gt | le | lt          (ordering ops only on datetimes)
    value    := '<string with '' for a quote>' | <ISO 8601 datetime with Z or an offset>

Anything else raises ``FilterError``; nothing is ever evaluated as code.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

DATETIME_FIELDS = {
    "properties/creationtime": "creationTime",
    "properties/lastmodifiedtime": "lastModifiedTime",
    "properties/starttime": "startTime",
    "properties/endtime": "endTime",
}
STRING_FIELDS = {
    "properties/status": "status",
    "properties/runon": "runOn",
    "properties/runbook/name": "runbook",
}
ORDER_OPS = {"ge", "gt", "le", "lt"}
STRING_OPS = {"eq", "ne"}

_FIELD = re.compile(r"properties(?:/[A-Za-z]+)+")
_OP = re.compile(r"(eq|ne|ge|gt|le|lt)\b", re.IGNORECASE)
_STRING = re.compile(r"'((?:[^']|'')*)'")
_DATETIME = re.compile(
    r"(?:datetime')?(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,7})?)?(?:Z|[+-]\d{2}:\d{2}))'?"
)
_AND = re.compile(r"\s+and\s+", re.IGNORECASE)


class FilterError(ValueError):
    """The ``$filter`` text is not in the supported grammar."""


@dataclass(frozen=True)
class Clause:
    field: str  # canonical name: creationTime, lastModifiedTime, startTime, endTime, status, runOn, runbook
    op: str
    value: str | datetime


def parse_datetime(text: str) -> datetime:
    """ISO 8601 with up to 7 fractional digits (.NET ``O`` format) and a Z or +hh:mm offset."""
    m = re.fullmatch(r"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2})?)(?:\.(\d{1,7}))?(Z|[+-]\d{2}:\d{2})", text)
    if not m:
        raise FilterError(f"not a datetime: {text!r}")
    base, frac, tz = m.groups()
    if len(base) == 16:
        base += ":00"
    frac = (frac or "0")[:6].ljust(6, "0")
    tz = "+00:00" if tz == "Z" else tz
    try:
        return datetime.fromisoformat(f"{base}.{frac}{tz}")
    except ValueError as exc:
        raise FilterError(f"not a datetime: {text!r}") from exc


def parse_job_filter(text: str) -> list[Clause]:
    """Parse a jobs ``$filter``; an empty string means no filter."""
    text = text.strip()
    if not text:
        return []
    clauses: list[Clause] = []
    pos = 0
    while True:
        m = _FIELD.match(text, pos)
        if not m:
            raise FilterError(f"expected a property path at position {pos}")
        raw_field = m.group(0).lower()
        pos = m.end()
        if not text.startswith(" ", pos):
            raise FilterError(f"expected a space after {m.group(0)!r}")
        pos += 1
        om = _OP.match(text, pos)
        if not om:
            raise FilterError(f"expected an operator (eq, ne, ge, gt, le, lt) at position {pos}")
        op = om.group(1).lower()
        pos = om.end()
        if not text.startswith(" ", pos):
            raise FilterError(f"expected a space after {op!r}")
        pos += 1
        if raw_field in DATETIME_FIELDS:
            if op not in ORDER_OPS | {"eq"}:
                raise FilterError(f"operator {op!r} is not supported on {m.group(0)!r}")
            dm = _DATETIME.match(text, pos)
            if not dm:
                raise FilterError(f"expected a datetime at position {pos}")
            value: str | datetime = parse_datetime(dm.group(1))
            pos = dm.end()
            clauses.append(Clause(DATETIME_FIELDS[raw_field], op, value))
        elif raw_field in STRING_FIELDS:
            if op not in STRING_OPS:
                raise FilterError(f"operator {op!r} is not supported on {m.group(0)!r}")
            sm = _STRING.match(text, pos)
            if not sm:
                raise FilterError(f"expected a quoted string at position {pos}")
            value = sm.group(1).replace("''", "'")
            pos = sm.end()
            clauses.append(Clause(STRING_FIELDS[raw_field], op, value))
        else:
            raise FilterError(f"unsupported property {m.group(0)!r}")
        if pos == len(text):
            return clauses
        am = _AND.match(text, pos)
        if not am:
            raise FilterError(f"expected ' and ' at position {pos}")
        pos = am.end()
