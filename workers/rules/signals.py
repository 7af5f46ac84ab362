"""Pure rules about the two liveness signals of a worker: their names, thresholds and freshness.

- ``AUTOMATION``: the worker resource's ``lastSeenDateTime`` (refreshed as the worker polls
  Automation, every 30 s);
- ``HEARTBEAT``: the latest Log Analytics ``Heartbeat`` row (every 60 s, plus 20 s - 3 min of
  ingestion latency). A V2 worker without the monitoring agent has none: a missing heartbeat is
  "not available", never "stale".

``workers.models.SignalSource`` takes its values from here. Nothing touches the database or the
clock: callers pass ``now``.
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
    """One liveness signal judged at ``now``: ``state`` is fresh, late, offline or missing."""

    name: str
    at: datetime | None
    age_seconds: float | None
    state: str  # "fresh" | "late" | "offline" | "missing"
    offline_at: datetime | None  # when this signal crosses (or crossed) its offline threshold


def judge_signal(name: str, at: datetime | None, *, now: datetime, late: float, offline: float) -> SignalState:
    """One signal at ``now``: missing without a timestamp, else fresh, late or offline by its age."""
    if at is None:
        return SignalState(name, None, None, "missing", None)
    # A timestamp ahead of our clock (skew) counts as just now.
    age = max(0.0, (now - at).total_seconds())
    state = "offline" if age > offline else "late" if age > late else "fresh"
    return SignalState(name, at, age, state, at + timedelta(seconds=offline))


def tolerance(source: str, grace_seconds: float | None = None, *, thresholds: Thresholds | None = None) -> timedelta:
    """The longest gap between two observations of ``source`` that still counts as one span: the
    signal's late threshold (LASTSEEN_LATE_SECONDS / HEARTBEAT_LATE_SECONDS), capped by a group's
    grace period exactly as the status rules cap it. No queries."""
    rules = (thresholds or Thresholds.from_settings()).with_grace(grace_seconds)
    seconds = rules.lastseen_late if source == AUTOMATION else rules.heartbeat_late
    return timedelta(seconds=seconds)
