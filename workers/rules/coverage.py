"""The covered span of a window: how much of it our data actually spans, and how pages say so.

Pure (no ORM, no clock). A window ("the last 30 days") is often only partly covered by the data we
hold (the first poll backfills 24 h; a fleet was added last week). Every rate, mean per hour, heat
map and forecast divides by the covered span, never by the window's nominal length, or 26 h of jobs
read as a 30-day average 28 times too low. ``DataSpan`` is that span; ``notice`` is the one sentence
the latency, timeouts and capacity pages show when the window is only partly covered.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from workers.rules.format import format_duration

# How a window is named in the notice ("26 h of data in this 30-day window").
WINDOW_NAMES: dict[str, str] = {"1h": "1-hour", "24h": "24-hour", "7d": "7-day", "30d": "30-day"}
# A window counts as fully covered when its data starts within this share of its length (at least
# MIN_SLACK) after its start: a quiet first minutes or hour is not "partial coverage".
SLACK_SHARE = 1 / 24
MIN_SLACK = timedelta(minutes=10)


@dataclass(frozen=True)
class DataSpan:
    """A window [start, end] and the part of it our data covers, [first, last] (None: no data at all)."""

    key: str
    start: datetime
    end: datetime
    first: datetime | None
    last: datetime | None

    @classmethod
    def of(cls, key: str, start: datetime, end: datetime, first: datetime | None, last: datetime | None) -> DataSpan:
        """Clamp the data's first and last moments to the window (bounded by the window)."""
        if first is None or last is None:
            return cls(key, start, end, None, None)
        first, last = max(first, start), min(last, end)
        return cls(key, start, end, min(first, last), last)

    @property
    def window_seconds(self) -> float:
        return max(0.0, (self.end - self.start).total_seconds())

    @property
    def covered_seconds(self) -> float:
        """Seconds from the first to the last data in the window (0 without data)."""
        if self.first is None or self.last is None:
            return 0.0
        return max(0.0, (self.last - self.first).total_seconds())

    @property
    def covered_hours(self) -> float:
        return self.covered_seconds / 3600.0

    @property
    def partial(self) -> bool:
        """True when the data spans noticeably less than the window (or there is none)."""
        if self.first is None:
            return True
        slack = max(MIN_SLACK, timedelta(seconds=self.window_seconds * SLACK_SHARE))
        return self.first - self.start > slack or self.end - (self.last or self.end) > slack

    @property
    def notice(self) -> str:
        """"26 h of data in this 30-day window (from 2026-11-24 10:00 UTC)", or "" when fully covered."""
        if not self.partial:
            return ""
        name = WINDOW_NAMES.get(self.key, self.key)
        if self.first is None:
            return f"no data in this {name} window"
        since = self.first.strftime("%Y-%m-%d %H:%M UTC")
        return f"{format_duration(self.covered_seconds)} of data in this {name} window (from {since})"
