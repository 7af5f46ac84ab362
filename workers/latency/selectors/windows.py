"""The named windows of the latency and timeouts pages, resolved to an exact span.

Every window is exact: [now - length, now], the same span the overview's "last 24 hours" counts.
``1h`` is computed from raw Job rows only; ``24h`` and ``7d`` draw their trend per hour, ``30d`` per
day, and tables of 7d/30d merge per day. Whatever a rollup does not cover is read from the raw rows
(``workers.latency.selectors.coverage``), so no figure depends on whether a rollup has run.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from workers.rules import latency


class WindowError(ValueError):
    """An unknown window name (the message is safe to show)."""


@dataclass(frozen=True)
class WindowSpan:
    """A resolved window: its key, exact [start, end] and its table granularity (raw, hourly, daily)."""

    key: str  # a latency.WINDOWS key, or another range's name ("6h", "custom")
    start: datetime
    end: datetime
    source: str  # "raw" | "hourly" | "daily"
    text: str = ""  # the label of a range that is not one of latency.WINDOW_LABELS

    @property
    def named(self) -> bool:
        """One of the named windows as ``resolve_window`` makes it (not a custom or 6 h range)."""
        return self.key in latency.WINDOWS and not self.text

    @property
    def exact(self) -> bool:
        return self.source == "raw"

    @property
    def resolution(self) -> str:
        return latency.EXACT_TEXT if self.exact else latency.RESOLUTION_TEXT

    @property
    def label(self) -> str:
        return self.text or latency.WINDOW_LABELS[self.key]

    @property
    def trend_step(self) -> str:
        return {"raw": "5 min", "hourly": "hour", "daily": "day"}[self.source] if self.key != "7d" else "hour"


def parse_window(raw: str | None, default: str = "24h") -> str:
    """A window key from a query string; ``WindowError`` for anything but ``latency.WINDOWS``."""
    value = (raw or default).strip()
    if value not in latency.WINDOWS:
        raise WindowError(f"window must be one of {', '.join(latency.WINDOWS)}")
    return value


def resolve_window(key: str, *, now: datetime) -> WindowSpan:
    """The exact time span and data source of a named window."""
    key = parse_window(key)
    length = latency.WINDOWS[key]
    if key == "1h":
        return WindowSpan(key, now - length, now, "raw")
    return WindowSpan(key, now - length, now, "hourly" if key == "24h" else "daily")


# A range that is not a named window: exact from the raw rows up to this span, hourly rollups up to
# a week, daily rollups beyond (the same trade-offs as the named windows: 1h raw, 24h/7d/30d rollups).
RAW_MAX = timedelta(hours=6)
HOURLY_MAX = timedelta(days=7)


def span_between(start: datetime, end: datetime, *, key: str = "custom", text: str = "") -> WindowSpan:
    """The exact span and data source of any [start, end] (a custom range, or the 6 h preset)."""
    length = end - start
    source = "raw" if length <= RAW_MAX else "hourly" if length <= HOURLY_MAX else "daily"
    return WindowSpan(key, start, end, source, text or f"{start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} UTC")
