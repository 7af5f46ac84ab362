"""Pure rules about fleet health: freshness, worker status, group health, flags and diagnosis.

Nothing here touches the database or the clock: callers pass ``now`` and the stored timestamps, so
every rule is a plain function that is trivially testable with a frozen time and safe to call any
number of times. ``workers.fleet.status`` applies ``worker_status`` to stored workers; pages,
the API and the alert emails reuse ``group_health``, the flags and ``diagnose``.

Signals (named in ``stale_signals`` / ``fresh_signals``):

- ``"automation"``: the worker resource's ``lastSeenDateTime`` (refreshed as the worker polls
  Automation, every 30 s);
- ``"heartbeat"``: the latest Log Analytics ``Heartbeat`` row (every 60 s, plus 20 s - 3 min of
  ingestion latency). A V2 worker without the monitoring agent has none: a missing heartbeat is
  "not available", never "stale".
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from typing import Any, TypedDict, Unpack

from workers.models import WorkerStatus

AUTOMATION = "automation"
HEARTBEAT = "heartbeat"

# Agent-based (V1) Hybrid Runbook Workers were retired by Microsoft on this date.
V1_RETIREMENT_DATE = date(2024, 8, 31)

# Pressure above which Microsoft's guide expects job delays and timeouts (a machine below the
# minimum hardware). Healthy workers stay well below both.
CPU_PRESSURE_PCT = 85.0
MEM_PRESSURE_PCT = 90.0
# Utilization older than this says nothing about the machine now.
UTILIZATION_RECENT = timedelta(minutes=15)


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


@dataclass(frozen=True)
class StatusVerdict:
    status: str  # a WorkerStatus value
    reason: str
    stale_signals: list[str] = field(default_factory=list)
    fresh_signals: list[str] = field(default_factory=list)
    signals: tuple[SignalState, ...] = ()
    # The moment every available signal is beyond its offline threshold (the worker is "down").
    # In the past for an offline worker; None when nothing was ever reported.
    alert_after: datetime | None = None

    def signal(self, name: str) -> SignalState | None:
        return next((s for s in self.signals if s.name == name), None)


def format_age(seconds: float) -> str:
    """Short human age: "40 s", "7 min", "3 h 5 min", "2 d 4 h"."""
    seconds = max(0, int(seconds))
    if seconds < 120:
        return f"{seconds} s"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


def _judge(name: str, at: datetime | None, *, now: datetime, late: float, offline: float) -> SignalState:
    if at is None:
        return SignalState(name, None, None, "missing", None)
    # A timestamp ahead of our clock (skew) counts as just now.
    age = max(0.0, (now - at).total_seconds())
    state = "offline" if age > offline else "late" if age > late else "fresh"
    return SignalState(name, at, age, state, at + timedelta(seconds=offline))


def _describe(signal: SignalState) -> str:
    label = "Automation last seen" if signal.name == AUTOMATION else "Log Analytics heartbeat"
    assert signal.age_seconds is not None
    age = format_age(signal.age_seconds)
    if signal.state == "fresh":
        return f"{label} fresh ({age})" if signal.name == HEARTBEAT else f"{label} {age} ago (fresh)"
    return f"{label} {age} ago" if signal.name == AUTOMATION else f"{label} {age} old"


def worker_status(
    *,
    now: datetime,
    last_seen_at: datetime | None,
    last_heartbeat_at: datetime | None,
    registered_at: datetime | None,
    thresholds: Thresholds,
) -> StatusVerdict:
    """Judge one worker from its two liveness signals.

    - no signal at all: ``never`` when the worker registered (it never reported), else ``unknown``;
    - ``offline`` when every available signal is beyond its offline threshold;
    - ``late`` when some available signal is beyond its late threshold;
    - ``online`` otherwise. A missing heartbeat (V2 without the agent) is not counted as stale.
    """
    automation = _judge(
        AUTOMATION, last_seen_at, now=now, late=thresholds.lastseen_late, offline=thresholds.lastseen_offline
    )
    heartbeat = _judge(
        HEARTBEAT, last_heartbeat_at, now=now, late=thresholds.heartbeat_late, offline=thresholds.heartbeat_offline
    )
    signals = (automation, heartbeat)
    available = [s for s in signals if s.state != "missing"]
    if not available:
        if registered_at is not None:
            return StatusVerdict(
                WorkerStatus.NEVER.value,
                f"Registered {format_age((now - registered_at).total_seconds())} ago; never reported",
                signals=signals,
            )
        return StatusVerdict(WorkerStatus.UNKNOWN.value, "No liveness signal yet", signals=signals)

    stale = [s.name for s in available if s.state != "fresh"]
    fresh = [s.name for s in available if s.state == "fresh"]
    if all(s.state == "offline" for s in available):
        status = WorkerStatus.OFFLINE.value
    elif stale:
        status = WorkerStatus.LATE.value
    else:
        status = WorkerStatus.ONLINE.value
    reason = "; ".join(_describe(s) for s in available)
    if heartbeat.state == "missing":
        reason += "; no Log Analytics heartbeat (judged on Automation alone)"
    alert_after = max(s.offline_at for s in available if s.offline_at is not None)
    return StatusVerdict(status, reason[:300], stale, fresh, signals, alert_after)


# --- Groups -------------------------------------------------------------------------------------


class GroupHealth:
    HEALTHY = "healthy"
    DEGRADED = "degraded"
    DOWN = "down"
    EMPTY = "empty"


# Worse first, for "worst first" orderings.
GROUP_HEALTH_RANK = {GroupHealth.DOWN: 0, GroupHealth.DEGRADED: 1, GroupHealth.HEALTHY: 2, GroupHealth.EMPTY: 3}


@dataclass(frozen=True)
class GroupSummary:
    health: str
    online: int
    total: int
    late: int = 0
    offline: int = 0
    never: int = 0
    unknown: int = 0

    @property
    def label(self) -> str:
        """E.g. "2 of 3 workers online"."""
        noun = "worker" if self.total == 1 else "workers"
        return f"{self.online} of {self.total} {noun} online"


def summarize_group(statuses: Iterable[str]) -> GroupSummary:
    """Counts and health of a group's (current, not removed) members.

    healthy: every member online. down: no member online or late (nobody can pick up a queued
    job). degraded: anything in between. empty: no members.
    """
    counts = {s.value: 0 for s in WorkerStatus}
    total = 0
    for status in statuses:
        total += 1
        counts[status if status in counts else WorkerStatus.UNKNOWN.value] += 1
    online = counts[WorkerStatus.ONLINE.value]
    return GroupSummary(
        health=health_from_counts(total=total, online=online, late=counts[WorkerStatus.LATE.value]),
        online=online,
        total=total,
        late=counts[WorkerStatus.LATE.value],
        offline=counts[WorkerStatus.OFFLINE.value],
        never=counts[WorkerStatus.NEVER.value],
        unknown=counts[WorkerStatus.UNKNOWN.value],
    )


def health_from_counts(*, total: int, online: int, late: int) -> str:
    """The group health rule (see ``summarize_group``) from member counts, for callers that count in SQL."""
    if total == 0:
        return GroupHealth.EMPTY
    if online == total:
        return GroupHealth.HEALTHY
    if online + late == 0:
        return GroupHealth.DOWN
    return GroupHealth.DEGRADED


def group_health(statuses: Iterable[str]) -> str:
    """"healthy" | "degraded" | "down" | "empty" (see ``summarize_group``)."""
    return summarize_group(statuses).health


# --- Flags --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Flag:
    code: str  # single_member | v1_worker | system_group | never_reported
    label: str
    detail: str


def is_single_member(member_count: int) -> bool:
    """A group with exactly one member has no high availability."""
    return member_count == 1


def is_v1_worker(worker_type: str) -> bool:
    return worker_type.strip().lower() == "hybridv1"


def is_system_group(group_type: str) -> bool:
    return group_type.strip().lower() == "system"


def is_never_reported(*, registered_at: datetime | None, last_seen_at: datetime | None, last_heartbeat_at: datetime | None) -> bool:
    return registered_at is not None and last_seen_at is None and last_heartbeat_at is None


def group_flags(*, group_type: str, member_count: int) -> list[Flag]:
    flags: list[Flag] = []
    if is_single_member(member_count):
        flags.append(
            Flag("single_member", "Single member", "Only one worker: no high availability; if it stops, the group's jobs fail.")
        )
    if is_system_group(group_type):
        flags.append(
            Flag("system_group", "System group", "Created by Update Management; it does not run user runbooks.")
        )
    return flags


def worker_flags(
    *,
    worker_type: str,
    registered_at: datetime | None,
    last_seen_at: datetime | None,
    last_heartbeat_at: datetime | None,
) -> list[Flag]:
    flags: list[Flag] = []
    if is_v1_worker(worker_type):
        flags.append(
            Flag(
                "v1_worker",
                "V1 (retired)",
                f"Agent-based V1 worker: Microsoft retired this platform on {V1_RETIREMENT_DATE:%d %B %Y}; "
                "migrate it to the extension-based V2 worker.",
            )
        )
    if is_never_reported(registered_at=registered_at, last_seen_at=last_seen_at, last_heartbeat_at=last_heartbeat_at):
        flags.append(
            Flag("never_reported", "Never reported", "Registered, but no lastSeen and no heartbeat was ever received.")
        )
    return flags


# --- Diagnosis ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Diagnosis:
    """A probable cause named from Microsoft's Hybrid Runbook Worker troubleshooting guide."""

    code: str  # tls_interception | outbound_blocked | agent_stopped | resource_pressure | never_reported
    title: str
    detail: str
    fix: str


class DiagnosisSignals(TypedDict, total=False):
    """The optional signals of :func:`diagnoses`, so :func:`diagnose` can pass them on unchanged."""

    event_4502_count: int
    cpu_pct: float | None
    mem_pct: float | None
    utilization_at: datetime | None
    os_type: str


def diagnoses(
    *,
    verdict: StatusVerdict,
    now: datetime,
    event_4502_count: int = 0,
    cpu_pct: float | None = None,
    mem_pct: float | None = None,
    utilization_at: datetime | None = None,
    os_type: str = "",
) -> list[Diagnosis]:
    """Every probable cause matching the signals, most specific first (empty when nothing fits)."""
    found: list[Diagnosis] = []
    automation = verdict.signal(AUTOMATION)
    heartbeat = verdict.signal(HEARTBEAT)
    automation_stale = automation is not None and automation.state in {"late", "offline"}
    heartbeat_fresh = heartbeat is not None and heartbeat.state == "fresh"

    if event_4502_count > 0:
        found.append(
            Diagnosis(
                "tls_interception",
                "TLS interception by a proxy",
                f"{event_4502_count} event 4502 in the Operations Manager log: a certificate presented to the agent "
                "was not issued by a certificate authority used for Microsoft services.",
                "Exempt *.azure-automation.net, *.ods.opinsights.azure.com, *.oms.opinsights.azure.com and "
                "*.blob.core.windows.net from TLS inspection on the proxy/firewall, then restart the agent.",
            )
        )
    if automation_stale and heartbeat_fresh:
        found.append(
            Diagnosis(
                "outbound_blocked",
                "Outbound 443 to Azure Automation blocked",
                "Log Analytics heartbeats still arrive but Automation has not seen the worker: the machine "
                "cannot reach *.azure-automation.net on port 443 (proxy or firewall).",
                "Allow outbound TCP 443 from the machine to *.azure-automation.net (and the account's "
                "jrds endpoint); check the proxy settings.",
            )
        )
    if verdict.status == WorkerStatus.OFFLINE.value:
        linux = os_type.strip().lower() == "linux"
        found.append(
            Diagnosis(
                "agent_stopped",
                "Monitoring agent stopped",
                "Every liveness signal is silent: the Microsoft Monitoring Agent (healthservice) or the machine "
                "itself is down.",
                "sudo /opt/microsoft/omsagent/bin/service_control restart (Linux); on Windows: Start-Service healthservice"
                if linux
                else "Start-Service healthservice (on the machine, as administrator); check the machine is running.",
            )
        )
    recent = utilization_at is not None and now - utilization_at <= UTILIZATION_RECENT
    cpu_high = cpu_pct is not None and cpu_pct >= CPU_PRESSURE_PCT
    mem_high = mem_pct is not None and mem_pct >= MEM_PRESSURE_PCT
    if recent and (cpu_high or mem_high):
        parts = []
        if cpu_high:
            parts.append(f"CPU {cpu_pct:.0f} %")
        if mem_high:
            parts.append(f"memory {mem_pct:.0f} %")
        found.append(
            Diagnosis(
                "resource_pressure",
                "CPU/memory pressure",
                f"{' and '.join(parts)} (latest sample): the machine may be below the minimum hardware, "
                "which delays and times out jobs.",
                "Add CPU/memory to the machine (minimum 2 cores, 4 GB RAM) or add workers to the group.",
            )
        )
    if verdict.status == WorkerStatus.NEVER.value:
        found.append(
            Diagnosis(
                "never_reported",
                "Registered but never reported",
                "The worker is registered in Automation but has never polled it.",
                "Check the Hybrid Worker extension (V2) or agent installation on the machine and its network access.",
            )
        )
    return found


def diagnose(*, verdict: StatusVerdict, now: datetime, **signals: Unpack[DiagnosisSignals]) -> Diagnosis | None:
    """The most specific probable cause, or None when the signals name none.

    Order: TLS interception (event 4502 is conclusive) > outbound 443 blocked (heartbeat fresh,
    lastSeen stale) > agent stopped (every signal offline) > CPU/memory pressure > never reported.
    """
    found = diagnoses(verdict=verdict, now=now, **signals)
    return found[0] if found else None


# --- Sustained pressure (alerting) --------------------------------------------------------------


def pressure_alert_open(*, samples: int, high: int, is_open: bool, share: float, clear_share: float, min_samples: int) -> bool:
    """Whether a worker's pressure alert should be open after one evaluation of its window.

    ``high`` of ``samples`` one-minute readings crossed a threshold. Opens at ``share`` or more;
    once open it stays open until the share falls below ``clear_share`` (hysteresis, so a worker
    hovering at the threshold gives one alert, not one per minute). Too few samples decide nothing:
    the current state is kept (a gap in Log Analytics data is not a recovery).
    """
    if samples < max(1, min_samples):
        return is_open
    ratio = high / samples
    return ratio >= clear_share if is_open else ratio >= share
