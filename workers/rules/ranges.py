"""The one time-range model of every time-based page: a preset (1h, 6h, 24h, 7d, 30d) or a custom
[from, to] in UTC, and which resolution the range is read at.

Pure: no ORM, no clock (``now`` is always passed in), no I/O. A bad range raises ``RangeError``
whose message is safe to show on a 400 page.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

PRESETS: dict[str, timedelta] = {
    "1h": timedelta(hours=1),
    "6h": timedelta(hours=6),
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
}
PRESET_LABELS: dict[str, str] = {
    "1h": "last 1 hour", "6h": "last 6 hours", "24h": "last 24 hours", "7d": "last 7 days", "30d": "last 30 days",
}
MIN_SPAN = timedelta(minutes=5)
# Up to this span a page reads raw one-minute rows; beyond it the hourly rollups.
RAW_MAX_SPAN = timedelta(hours=24)
RAW = "raw"
HOURLY = "hourly"
RESOLUTION_TEXT = {RAW: "1-minute samples", HOURLY: "hourly averages"}
URL_FORMAT = "%Y-%m-%dT%H:%MZ"
# A "to" this little past now (a browser clock a little ahead, a zoom rounded up) is read as now.
CLOCK_SLACK = timedelta(minutes=2)


class RangeError(ValueError):
    """A range a page cannot show (the message says why and is safe to show)."""


@dataclass(frozen=True)
class TimeRange:
    """[start, end] in UTC; ``preset`` is the preset key, or None for a custom range."""

    start: datetime
    end: datetime
    preset: str | None = None

    @property
    def span(self) -> timedelta:
        return self.end - self.start

    @property
    def is_custom(self) -> bool:
        return self.preset is None

    @property
    def label(self) -> str:
        if self.preset is not None:
            return PRESET_LABELS[self.preset]
        return f"{self.start.strftime('%Y-%m-%d %H:%M')} to {self.end.strftime('%Y-%m-%d %H:%M')} UTC"

    def resolution(self, raw_max: timedelta = RAW_MAX_SPAN) -> str:
        return resolution_for(self.span, raw_max=raw_max)

    def query(self) -> dict[str, str]:
        """The query parameters that give this range back (``window`` for a preset, else from/to)."""
        if self.preset is not None:
            return {"window": self.preset}
        return {"from": format_instant(self.start), "to": format_instant(self.end)}


def resolution_for(span: timedelta, *, raw_max: timedelta = RAW_MAX_SPAN) -> str:
    """``raw`` (minute rows) for spans up to ``raw_max`` (about a day), ``hourly`` rollups beyond."""
    return RAW if span <= raw_max else HOURLY


def format_instant(moment: datetime) -> str:
    """A UTC minute for a URL: 2026-12-01T00:00Z."""
    return moment.astimezone(UTC).strftime(URL_FORMAT)


def parse_instant(raw: str, *, name: str) -> datetime:
    """An ISO 8601 time; one with no offset is read as UTC (what a datetime-local input sends)."""
    value = raw.strip()
    if not value or len(value) > 40:
        raise RangeError(f"{name} must be an ISO 8601 time in UTC such as 2026-12-01T00:00Z")
    try:
        parsed = datetime.fromisoformat(value.replace(" ", "+", 1) if value.count(" ") == 1 and "T" in value else value)
    except ValueError:
        raise RangeError(f"{name}={value!r} is not an ISO 8601 time in UTC such as 2026-12-01T00:00Z") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def preset_range(key: str, *, now: datetime, allowed: tuple[str, ...] = tuple(PRESETS)) -> TimeRange:
    if key not in allowed:
        raise RangeError(f"window must be one of {', '.join(allowed)}")
    return TimeRange(now - PRESETS[key], now, key)


def custom_range(start: datetime, end: datetime, *, now: datetime, retention: timedelta) -> TimeRange:
    """A checked custom range: from < to <= now, at least ``MIN_SPAN`` long, within ``retention``."""
    if end > now + CLOCK_SLACK:
        raise RangeError("to is in the future: pick a time up to now")
    end = min(end, now)
    if start >= end:
        raise RangeError("from must be before to")
    if end - start < MIN_SPAN:
        raise RangeError(f"the range must be at least {int(MIN_SPAN.total_seconds() // 60)} minutes long")
    if start < now - retention:
        raise RangeError(f"from is older than the data kept ({_days(retention)}): pick a later time")
    return TimeRange(start, end, None)


def _days(delta: timedelta) -> str:
    days = delta.total_seconds() / 86400
    return f"{days:g} days" if days >= 1 else f"{delta.total_seconds() / 3600:g} hours"


def parse_range(
    *, window: str | None, start: str | None, end: str | None, now: datetime, retention: timedelta,
    default: str = "24h", allowed: tuple[str, ...] = tuple(PRESETS), custom: bool = True,
) -> TimeRange:
    """The range a query string asks for: ``from``+``to`` (custom) win over ``window`` (a preset)."""
    has_from, has_to = bool(start and start.strip()), bool(end and end.strip())
    if has_from or has_to:
        if not custom:
            raise RangeError("this page shows precomputed windows only: use window=" + "|".join(allowed))
        if not (has_from and has_to):
            raise RangeError("give both from and to (ISO 8601 UTC, e.g. from=2026-12-01T00:00Z&to=2026-12-02T06:00Z)")
        assert start is not None and end is not None
        return custom_range(parse_instant(start, name="from"), parse_instant(end, name="to"), now=now, retention=retention)
    key = (window or "").strip() or default
    return preset_range(key, now=now, allowed=allowed)
