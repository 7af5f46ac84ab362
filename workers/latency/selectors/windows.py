"""The named windows of the latency and timeouts pages, resolved to an exact span and data source.

``1h`` is computed exactly from raw Job rows (a few thousand rows at most); ``24h`` and ``7d`` read
JobHourly (trend per hour), ``30d`` reads JobDaily (trend per day); tables of 7d/30d read JobDaily.
Rollup windows start on a whole hour (24h) or a whole UTC day (7d, 30d), so they cover at least the
nominal window; ``WindowSpan`` states the exact start so every page can say it, and
``rollups_in`` is the one place that picks the rollup table of a window.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db.models import QuerySet

from workers.models import JobDaily, JobHourly
from workers.rules import latency


class WindowError(ValueError):
    """An unknown window name (the message is safe to show)."""


@dataclass(frozen=True)
class WindowSpan:
    """A resolved window: its key, exact [start, end] and where its numbers come from."""

    key: str
    start: datetime
    end: datetime
    source: str  # "raw" | "hourly" | "daily"

    @property
    def exact(self) -> bool:
        return self.source == "raw"

    @property
    def resolution(self) -> str:
        return latency.EXACT_TEXT if self.exact else latency.RESOLUTION_TEXT

    @property
    def label(self) -> str:
        return latency.WINDOW_LABELS[self.key]

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
    if key == "24h":
        return WindowSpan(key, latency.floor_hour(now - length), now, "hourly")
    return WindowSpan(key, latency.floor_day(now - length), now, "daily")


def rollups_in(span: WindowSpan, *, trend: bool = False) -> tuple[QuerySet, str]:
    """The rollup rows of a 24h/7d/30d window, and their period field ("hour" or "day").

    Tables and counts of the daily windows read JobDaily; trends read JobDaily for 30d only (the 7d
    trend is drawn per hour, ``WindowSpan.trend_step``); everything else reads JobHourly.
    """
    daily = span.trend_step == "day" if trend else span.source == "daily"
    model, period = (JobDaily, "day") if daily else (JobHourly, "hour")
    return model.objects.filter(**{f"{period}__gte": span.start, f"{period}__lte": span.end}), period
