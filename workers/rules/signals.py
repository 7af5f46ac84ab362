"""Pure rules about the three liveness signals of a worker: their names, thresholds and freshness.

- ``AUTOMATION``: the worker resource's ``lastSeenDateTime`` (refreshed as the worker polls
  Automation, every 30 s);
- ``HEARTBEAT``: the latest Log Analytics ``Heartbeat`` row (every 60 s, plus 20 s - 3 min of
  ingestion latency). A V2 worker without the monitoring agent has none: a missing heartbeat is
  "not available", never "stale";
- ``PING``: Azure Monitor's ``HybridWorkerPing`` platform metric of the Automation account, split
  by worker (the start of the latest one-minute bucket with pings; a bucket lands 1-3 min after it
  ends). Like ``AUTOMATION`` it says the Hybrid Worker service reaches Automation, but it is read
  once per account per minute, not per group. A worker the metric never named has none: missing,
  never "stale".

``AUTOMATION`` and ``PING`` are two views of one fact (the service polls Automation), so the status
judges them together: ``service_signal`` (fresh when either is). ``HEARTBEAT`` is the agent's.

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
PING = "ping"
SIGNALS: tuple[str, ...] = (AUTOMATION, HEARTBEAT, PING)
# The signals of the Hybrid Worker service itself (either fresh: the service reaches Automation).
SERVICE_SIGNALS: tuple[str, ...] = (AUTOMATION, PING)


@dataclass(frozen=True)
class Thresholds:
    """Ages (seconds) beyond which a signal is late / offline. ``late <= offline`` for each signal."""

    lastseen_late: float = 90
    lastseen_offline: float = 180
    heartbeat_late: float = 300
    heartbeat_offline: float = 600
    ping_late: float = 300
    ping_offline: float = 420

    def __post_init__(self) -> None:
        for name in ("lastseen_late", "lastseen_offline", "heartbeat_late", "heartbeat_offline", "ping_late", "ping_offline"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if self.lastseen_late > self.lastseen_offline:
            raise ValueError("lastseen_late must not exceed lastseen_offline")
        if self.heartbeat_late > self.heartbeat_offline:
            raise ValueError("heartbeat_late must not exceed heartbeat_offline")
        if self.ping_late > self.ping_offline:
            raise ValueError("ping_late must not exceed ping_offline")

    @classmethod
    def from_settings(cls, settings: Any = None) -> Thresholds:
        """Read LASTSEEN_*/HEARTBEAT_*/PING_* from Django settings (or any object with those attributes)."""
        if settings is None:
            from django.conf import settings as django_settings

            settings = django_settings
        return cls(
            lastseen_late=settings.LASTSEEN_LATE_SECONDS,
            lastseen_offline=settings.LASTSEEN_OFFLINE_SECONDS,
            heartbeat_late=settings.HEARTBEAT_LATE_SECONDS,
            heartbeat_offline=settings.HEARTBEAT_OFFLINE_SECONDS,
            ping_late=settings.PING_LATE_SECONDS,
            ping_offline=settings.PING_OFFLINE_SECONDS,
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
            ping_offline=grace_seconds,
            lastseen_late=min(self.lastseen_late, grace_seconds),
            heartbeat_late=min(self.heartbeat_late, grace_seconds),
            ping_late=min(self.ping_late, grace_seconds),
        )

    def limits(self, name: str) -> tuple[float, float]:
        """(late, offline) seconds of one signal."""
        if name == AUTOMATION:
            return self.lastseen_late, self.lastseen_offline
        if name == PING:
            return self.ping_late, self.ping_offline
        return self.heartbeat_late, self.heartbeat_offline


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
    signal's late threshold (LASTSEEN_ / HEARTBEAT_ / PING_LATE_SECONDS), capped by a group's
    grace period exactly as the status rules cap it. No queries."""
    rules = (thresholds or Thresholds.from_settings()).with_grace(grace_seconds)
    return timedelta(seconds=rules.limits(source)[0])


_RANK = {"fresh": 0, "late": 1, "offline": 2}


def service_signal(
    *, now: datetime, last_seen_at: datetime | None, last_ping_at: datetime | None, thresholds: Thresholds,
    automation_checked_at: datetime | None = None, ping_checked_at: datetime | None = None,
) -> SignalState:
    """The Hybrid Worker service's liveness: Automation ``lastSeenDateTime`` OR the ping, the better.

    Without a ping this is the Automation signal as before. With one, both are judged as of our
    latest look at either (the newest of the two polls; a never-polled source counts as looked at
    ``now``): when the per-group worker listing runs at inventory pace, a lastSeen read 15 minutes
    ago must not keep a worker online that the ping poll of a minute ago no longer hears; and when
    the ping poll is the one behind, a fresh listing still judges. The better state wins (fresh over
    late over offline); ``offline_at`` is the later of the two (down only when both are silent).
    """
    late, offline = thresholds.limits(AUTOMATION)
    if last_ping_at is None:
        return judge_signal(AUTOMATION, last_seen_at, now=now, late=late, offline=offline, checked_at=automation_checked_at)
    looks = (automation_checked_at, ping_checked_at)
    look = now if any(c is None for c in looks) else max(c for c in looks if c is not None)
    ping_late, ping_offline = thresholds.limits(PING)
    candidates = [
        judge_signal(PING, last_ping_at, now=now, late=ping_late, offline=ping_offline, checked_at=look),
        judge_signal(AUTOMATION, last_seen_at, now=now, late=late, offline=offline, checked_at=look),
    ]
    available = [c for c in candidates if c.state != "missing"]
    best = min(available, key=lambda c: (_RANK[c.state], -(c.offline_at.timestamp() if c.offline_at else 0)))
    offline_at = max(c.offline_at for c in available if c.offline_at is not None)
    return replace(best, offline_at=offline_at)
