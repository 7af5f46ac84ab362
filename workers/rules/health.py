"""Pure rules about fleet health: a worker's status from its signals, and a group's health.

Nothing here touches the database or the clock: callers pass ``now`` and the stored timestamps, so
every rule is a plain function that is trivially testable with a frozen time and safe to call any
number of times. ``workers.fleet.status`` applies ``worker_status`` to stored workers; pages, the
API and the alert emails reuse the group rules. The signals and their thresholds are in
``workers.rules.signals``; flags and probable causes in ``workers.rules.diagnosis``.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from workers.rules.format import format_duration
from workers.rules.signals import AUTOMATION, HEARTBEAT, PING, SignalState, Thresholds, judge_signal, service_signal


class Status(StrEnum):
    """A worker's status. The stored choices (``workers.models.WorkerStatus``) take their values from here."""

    ONLINE = "online"
    LATE = "late"
    OFFLINE = "offline"
    NEVER = "never"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class StatusVerdict:
    status: str  # a Status value
    reason: str
    stale_signals: list[str] = field(default_factory=list)
    fresh_signals: list[str] = field(default_factory=list)
    signals: tuple[SignalState, ...] = ()
    # The moment every available signal is beyond its offline threshold (the worker is "down").
    # In the past for an offline worker; None when nothing was ever reported. A fact about the
    # signals, not about when we looked: after a gap in our polling the worker turns offline only
    # once a fresh poll confirms it, and its outage is still dated from here.
    alert_after: datetime | None = None
    # Signals judged as of our last look because our polling is behind, and worse by now if nothing
    # changed: the status holds until a fresh poll re-checks them (see ``signals.judge_signal``).
    unchecked_signals: list[str] = field(default_factory=list)

    def signal(self, name: str) -> SignalState | None:
        return next((s for s in self.signals if s.name == name), None)


# Whose poll a signal is re-checked by: the worker listing of its group, the account's heartbeat query.
_LOOKED_BY = {
    AUTOMATION: "our last worker poll of this group",
    HEARTBEAT: "our last heartbeat poll of this account",
    PING: "our last ping poll of this account",
}
_LABELS = {AUTOMATION: "Automation last seen", HEARTBEAT: "Log Analytics heartbeat", PING: "HybridWorkerPing"}


def _describe(signal: SignalState) -> str:
    label = _LABELS[signal.name]
    assert signal.age_seconds is not None
    age = format_duration(signal.age_seconds)
    ago = "old" if signal.name == HEARTBEAT else "ago"
    if signal.unchecked_seconds is not None:
        # Our polling is behind: say so, so the gap reads as ours and not as the worker's.
        when = "fresh when last checked; " if signal.state == "fresh" else ""
        gap = format_duration(signal.unchecked_seconds)
        return f"{label} {age} {ago} ({when}not re-checked: {_LOOKED_BY[signal.name]} was {gap} ago)"
    if signal.state == "fresh":
        return f"{label} fresh ({age})" if signal.name == HEARTBEAT else f"{label} {age} ago (fresh)"
    return f"{label} {age} {ago}"


def worker_status(
    *,
    now: datetime,
    last_seen_at: datetime | None,
    last_heartbeat_at: datetime | None,
    registered_at: datetime | None,
    thresholds: Thresholds,
    automation_checked_at: datetime | None = None,
    heartbeat_checked_at: datetime | None = None,
    last_ping_at: datetime | None = None,
    ping_checked_at: datetime | None = None,
) -> StatusVerdict:
    """Judge one worker from its liveness signals, each as of when we last looked at it.

    Two parts are judged: the Hybrid Worker service (Automation ``lastSeenDateTime`` OR the
    ``HybridWorkerPing`` metric, whichever is better: ``signals.service_signal``) and the agent (the
    Log Analytics heartbeat, when the worker has one).

    - no signal at all: ``never`` when the worker registered (it never reported), else ``unknown``;
    - ``offline`` when every available part is beyond its offline threshold;
    - ``late`` when some available part is beyond its late threshold;
    - ``online`` otherwise. A missing heartbeat (V2 without the agent) or a missing ping (the metric
      never named the worker) is not counted as stale.

    ``stale_signals`` names every available signal that is not fresh, also one the other service
    signal outvotes (a stale lastSeen while the ping is fresh), so the pages can say which is stale.

    ``automation_checked_at`` / ``heartbeat_checked_at``: the start of our latest finished,
    successful worker poll of the worker's group / heartbeat poll of its account (None: never
    polled, judged at ``now``). A signal's age is taken at ``min(now, checked_at)``, so when our own
    polling is behind, the worker does not turn late or offline until a fresh poll re-checks it;
    the reason then says "not re-checked: our last ... was N ago".
    """
    automation = judge_signal(
        AUTOMATION, last_seen_at, now=now, late=thresholds.lastseen_late, offline=thresholds.lastseen_offline,
        checked_at=automation_checked_at,
    )
    heartbeat = judge_signal(
        HEARTBEAT, last_heartbeat_at, now=now, late=thresholds.heartbeat_late, offline=thresholds.heartbeat_offline,
        checked_at=heartbeat_checked_at,
    )
    signals: tuple[SignalState, ...] = (automation, heartbeat)
    if last_ping_at is not None:
        signals += (judge_signal(PING, last_ping_at, now=now, late=thresholds.ping_late, offline=thresholds.ping_offline,
                                 checked_at=ping_checked_at),)
    service = service_signal(
        now=now, last_seen_at=last_seen_at, last_ping_at=last_ping_at, thresholds=thresholds,
        automation_checked_at=automation_checked_at, ping_checked_at=ping_checked_at,
    )
    available = [s for s in signals if s.state != "missing"]
    parts = [p for p in (service, heartbeat) if p.state != "missing"]
    if not available:
        if registered_at is not None:
            return StatusVerdict(
                Status.NEVER.value,
                f"Registered {format_duration((now - registered_at).total_seconds())} ago; never reported",
                signals=signals,
            )
        return StatusVerdict(Status.UNKNOWN.value, "No liveness signal yet", signals=signals)

    stale = [s.name for s in available if s.state != "fresh"]
    fresh = [s.name for s in available if s.state == "fresh"]
    if all(p.state == "offline" for p in parts):
        status = Status.OFFLINE.value
    elif any(p.state != "fresh" for p in parts):
        status = Status.LATE.value
    else:
        status = Status.ONLINE.value
    reason = "; ".join(_describe(s) for s in available)
    if heartbeat.state == "missing":
        alone = "Automation and the ping" if last_ping_at is not None else "Automation alone"
        reason += f"; no Log Analytics heartbeat (judged on {alone})"
    alert_after = max(p.offline_at for p in parts if p.offline_at is not None)
    unchecked = [p.name for p in parts if p.unchecked_seconds is not None]
    return StatusVerdict(status, reason[:300], stale, fresh, signals, alert_after, unchecked)


# --- Groups -------------------------------------------------------------------------------------


class GroupHealth:
    """A group's health. ``DOWN`` is any group with members and none of them online: whether they
    are offline or only late, nobody is known to be able to pick up the next job, so it must read
    as an outage at once, not as an ordinary degraded group."""

    HEALTHY = "healthy"
    DEGRADED = "degraded"
    DOWN = "down"
    EMPTY = "empty"


# Worse first, for "worst first" orderings (see ``worst_first``).
GROUP_HEALTH_RANK = {GroupHealth.DOWN: 0, GroupHealth.DEGRADED: 1, GroupHealth.HEALTHY: 2, GroupHealth.EMPTY: 3}


@dataclass(frozen=True)
class GroupSummary:
    """A group's live members counted by status: the one shape of "how is this group". The pages'
    group rows and the wall's tiles carry one (counted in SQL), the alert emails count one from the
    members' statuses and types (``summarize_members``); ``health`` follows from the counts.

    ``online`` counts only members that can run jobs: agent-based (V1) members never count as
    capacity (retired 31 August 2024; their jobs no longer run since 1 April 2025), whatever their
    signals say. ``v1`` is how many members are V1; the other counts are by status, V1 included.
    """

    total: int
    online: int
    late: int = 0
    offline: int = 0
    never: int = 0
    unknown: int = 0
    v1: int = 0  # agent-based (V1) members, retired by Microsoft: never counted as capacity

    @property
    def capacity_members(self) -> int:
        """Members that could run jobs (not V1)."""
        return max(0, self.total - self.v1)

    @property
    def health(self) -> str:
        """"healthy" | "degraded" | "down" | "empty" (see ``health_from_counts``)."""
        return health_from_counts(total=self.total, online=self.online, v1=self.v1)

    @property
    def not_online(self) -> int:
        return self.total - self.online

    @property
    def single_member(self) -> bool:
        return is_single_member(self.total)

    @property
    def label(self) -> str:
        """E.g. "2 of 3 workers online", or "2 of 3 workers online (1 V1, retired: not counted)"."""
        noun = "worker" if self.total == 1 else "workers"
        label = f"{self.online} of {self.total} {noun} online"
        return label + (f" ({self.v1} V1, retired: not counted)" if self.v1 else "")

    @property
    def down_note(self) -> str:
        """Why a down group is down, e.g. "no member online (7 late)"; empty when it is not down."""
        if self.health != GroupHealth.DOWN:
            return ""
        if self.capacity_members == 0:
            return "only V1 (retired) members: none can run jobs"
        return "no member online" + (f" ({self.late} late)" if self.late else "")


def summarize_members(members: Iterable[tuple[str, str]]) -> GroupSummary:
    """Counts and health of a group's (current, not removed) members from (status, worker type)
    pairs: a V1 member is counted by status and as V1, never as online capacity."""
    counts = {s.value: 0 for s in Status}
    total = online = v1 = 0
    for status, worker_type in members:
        total += 1
        known = status if status in counts else Status.UNKNOWN.value
        counts[known] += 1
        retired = is_v1_worker(worker_type)
        v1 += retired
        online += known == Status.ONLINE.value and not retired
    return GroupSummary(
        total=total,
        online=online,
        late=counts[Status.LATE.value],
        offline=counts[Status.OFFLINE.value],
        never=counts[Status.NEVER.value],
        unknown=counts[Status.UNKNOWN.value],
        v1=v1,
    )


def summarize_group(statuses: Iterable[str]) -> GroupSummary:
    """Counts and health of a group's members from their statuses alone (types unknown: none V1)."""
    return summarize_members((status, "") for status in statuses)


def is_v1_worker(worker_type: str) -> bool:
    """An agent-based (V1) worker (workerType "HybridV1"): retired 31 August 2024; counted and
    flagged, but never capacity. The type is an open set: anything else is judged as V2."""
    return worker_type.strip().lower() == "hybridv1"


def health_from_counts(*, total: int, online: int, v1: int = 0) -> str:
    """The group health rule, from member counts (``online`` excludes V1 members).

    healthy: every member that can run jobs (not V1) online. down: no such member online, even
    when some are only late (a late member may still take jobs, but none is known to: the group is
    at risk now, and "0/7 degraded" for minutes hid exactly that), or only V1 members. degraded:
    some online, not all. empty: no members. ``GroupSummary.down_note`` says why a group is down.
    """
    if total == 0:
        return GroupHealth.EMPTY
    capacity = max(0, total - v1)
    if online == 0:
        return GroupHealth.DOWN
    if online >= capacity:
        return GroupHealth.HEALTHY
    return GroupHealth.DEGRADED


def worst_first(
    members: GroupSummary, *, poll_problem: bool, name: str, account: str, open_alerts: int = 0,
) -> tuple[float, int, int, int, int, str, str]:
    """The one sort key of every list of groups (overview, API, wall), worst first.

    By health (down, degraded, healthy, empty), except that a group whose own worker poll is failing
    (its counts are the last known state, not live) sorts no later than just after the degraded
    groups; then most members offline, most not online, most open alerts (the wall counts them),
    then by name and account.
    """
    rank = GROUP_HEALTH_RANK.get(members.health, len(GROUP_HEALTH_RANK))
    placed = min(rank, GROUP_HEALTH_RANK[GroupHealth.DEGRADED] + 0.5) if poll_problem else rank
    return (placed, rank, -members.offline, -members.not_online, -open_alerts, name.lower(), account)


def possible_site_outage(*, down_together: int, total: int, share: float) -> bool:
    """Most or all of a group went dark together: at least ``share`` of its ``total`` members (and
    at least 2) down within one group wait (``down_together``: the members of one rollup alert).
    Then a shared cause (site power, network link, proxy, firewall) is likelier than N separate
    machine faults, and the email says so once instead of repeating each worker's advice."""
    if total <= 0 or down_together < 2:
        return False
    # A hair of tolerance so 0.7 x 10 (7.000000000000001 in floating point) needs 7, not 8.
    return down_together >= share * total - 1e-9


def group_health(statuses: Iterable[str]) -> str:
    """"healthy" | "degraded" | "down" | "empty" (see ``summarize_group``)."""
    return summarize_group(statuses).health


# --- Group facts --------------------------------------------------------------------------------


def is_single_member(member_count: int) -> bool:
    """A group with exactly one member has no high availability."""
    return member_count == 1


def is_system_group(group_type: str) -> bool:
    """A System group is left over from Update Management; it runs no user runbooks."""
    return group_type.strip().lower() == "system"
