"""Simulated time: the clock the whole simulation reads, and epoch-second conversions.

``SimClock`` either follows real time (the demo) or stands still until a test calls ``advance``.
Everything else in the simulation works in whole epoch seconds; these helpers convert both ways.
"""
from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class SimClock:
    """Either real time (demo) or a manual clock that only moves with ``advance`` (tests)."""

    def __init__(self, start: datetime | None = None, *, realtime: bool = False) -> None:
        if start is not None and start.tzinfo is None:
            raise ValueError("SimClock start must be timezone-aware")
        self.realtime = realtime
        self._lock = threading.Lock()
        if realtime:
            wall = datetime.now(UTC)
            self._offset = (start - wall) if start is not None else timedelta(0)
        else:
            self._now = (start or datetime.now(UTC)).astimezone(UTC)

    def now(self) -> datetime:
        if self.realtime:
            return datetime.now(UTC) + self._offset
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> datetime:
        if self.realtime:
            raise RuntimeError("a real-time clock cannot be advanced")
        if seconds < 0:
            raise ValueError("the clock only moves forward")
        with self._lock:
            self._now = self._now + timedelta(seconds=seconds)
            return self._now


def to_epoch(dt: datetime) -> int:
    return int((dt - EPOCH).total_seconds())


def from_epoch(seconds: float) -> datetime:
    return EPOCH + timedelta(seconds=float(seconds))


def iso(dt: datetime) -> str:
    return dt.astimezone(UTC).isoformat()
