"""Pure rules about the two liveness signals of a worker: their names, thresholds and freshness.

- ``AUTOMATION``: the worker resource's ``lastSeenDateTime`` (refreshed as the worker polls
  Automation, every 30 s);
- ``HEARTBEAT``: the latest Log Analytics ``Heartbeat`` row (every 60 s, plus 20 s - 3 min of
  ingestion latency). A V2 worker without the monitoring agent has none: a missing heartbeat is
  "not available", never "stale".

``workers.models.SignalSource`` takes its values from here. Nothing touches the database or the
clock: callers pass ``now``, and ``checked_at``: when we last actually looked at the signal.

Why ``checked_at``: a stored timestamp only says what the last successful poll saw. When our own
polling is behind (the Celery worker or the broker was down, a poll failed), judging that old answer
against ``now`` turns every healthy worker late or offline until the next poll lands: our gap, not the
fleet's. So a signal is judged as of our last look (``min(now, checked_at)``); its true age is kept
for display, and the state it would have at ``now`` is noted as not re-checked.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

AUTOMATION = "automation"
HEARTBEAT = "heartbeat"
SIGNALS: tuple[str, ...] = (AUTOMATION, HEARTBEAT)


@dataclass(frozen=True)
class Thresholds:
    """Ages (seconds) beyond which a signal is late / offline. ``late <= offline`` for each signal."""

    lastseen_late: float = 90
    lastseen_offline: float = 180
    heartbeat_late: float = 300
    heartbeat_offline: float = 600

    def __post_init__(self) -> None:
        for name in ("lastseen_late", "lastseen_offline", "heartbeat_late", "heartbeat_offline"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if self.lastseen_late > self.lastseen_offline:
            raise ValueError("lastseen_late must not exceed lastseen_offline")
        if self.heartbeat_late > self.heartbeat_offline:
            raise ValueError("heartbeat_late must not exceed heartbeat_offline")

    @classmethod
    def from_settings(cls, settings: Any = None) -> Thresholds:
        """Read LASTSEEN_*/HEARTBEAT_* from Django settings (or any object with those attributes)."""
        if settings is None:
            from django.conf import settings as django_settings

            settings = django_settings
        return cls(
            lastseen_late=settings.LASTSEEN_LATE_SECONDS,
            lastseen_offline=settings.LASTSEEN_OFFLINE_SECONDS,
            heartbeat_late=settings.HEARTBEAT_LATE_SECONDS,
            heartbeat_offline=settings.HEARTBEAT_OFFLINE_SECONDS,
        )

    def with_grace(self, grace_seconds: float | None) -> Thresholds:
        """A group's grace period replaces the offline threshold of every signal.

        The late thresholds are capped at the grace period so ``late <= offline`` still holds.
        ``None`` (no override) returns the thresholds unchanged.
        """
        if grace_seconds is None:
            return self
        if grace_seconds <= 0:
            raise ValueError(f"grace_seconds must be positive, got {grace_seconds}")
        return replace(
            self,
            lastseen_offline=grace_seconds,
            heartbeat_offline=grace_seconds,
            lastseen_late=min(self.lastseen_late, grace_seconds),
            heartbeat_late=min(self.heartbeat_late, grace_seconds),
        )


@dataclass(frozen=True)
class SignalState:
    """One liveness signal: ``state`` (fresh, late, offline or missing) as of our last look at it.

    ``age_seconds`` is its true age at ``now`` (what a page shows). ``unchecked_seconds`` is set only
    when our last look is so old that the signal would be in a worse state at ``now`` than when we
    looked: it is then how long ago that look was (the gap is ours, and the verdict says so).
    """

    name: str
    at: datetime | None
    age_seconds: float | None
    state: str  # "fresh" | "late" | "offline" | "missing"
    offline_at: datetime | None  # when this signal crosses (or crossed) its offline threshold
    unchecked_seconds: float | None = None


def _state(age: float, *, late: float, offline: float) -> str:
    return "offline" if age > offline else "late" if age > late else "fresh"


def judge_signal(
    name: str, at: datetime | None, *, now: datetime, late: float, offline: float, checked_at: datetime | None = None
) -> SignalState:
    """One signal: missing without a timestamp, else fresh, late or offline by its age when we last looked.

    ``checked_at``: when we last actually looked (the start of our latest finished, successful poll of
    this signal); the state is judged at ``min(now, checked_at)``. None (never polled) judges at
    ``now``. A timestamp newer than our look (a poll in flight already wrote it) counts as seen then.
    ``offline_at`` does not depend on when we looked: it is a fact about the signal.
    """
    if at is None:
        return SignalState(name, None, None, "missing", None)
    looked = now if checked_at is None else min(now, checked_at)
    # A timestamp ahead of our clock (skew) counts as just now.
    age = max(0.0, (now - at).total_seconds())
    state = _state(max(0.0, (looked - at).total_seconds()), late=late, offline=offline)
    unchecked = None
    if _state(age, late=late, offline=offline) != state:
        unchecked = (now - looked).total_seconds()
    return SignalState(name, at, age, state, at + timedelta(seconds=offline), unchecked)


def tolerance(source: str, grace_seconds: float | None = None, *, thresholds: Thresholds | None = None) -> timedelta:
    """The longest gap between two observations of ``source`` that still counts as one span: the
    signal's late threshold (LASTSEEN_LATE_SECONDS / HEARTBEAT_LATE_SECONDS), capped by a group's
    grace period exactly as the status rules cap it. No queries."""
    rules = (thresholds or Thresholds.from_settings()).with_grace(grace_seconds)
    seconds = rules.lastseen_late if source == AUTOMATION else rules.heartbeat_late
    return timedelta(seconds=seconds)
