"""Scenarios: the failure modes the simulation plays on its fleet, and what each one silences.

The default schedule gives the demo its story (one undersized machine, and episodes of every other
kind in history and in the present); the API starts more. A scenario holds its workers down over a
window; ``last_seen`` walks back through those windows to the worker's last poll.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from workers.emulator.simulation.clock import SimClock, from_epoch, iso, to_epoch
from workers.emulator.simulation.fleet import LAST_SEEN_SECONDS, Fleet, SimGroup, SimulationError, SimWorker

SCENARIO_KINDS = (
    "agent_stopped", "outbound_blocked", "tls_intercepted", "under_spec", "site_down", "flapping",
    # Extension-based (V2) failure modes: the worker service stopped (heartbeats continue), the machine's
    # managed identity missing (it polls; the jobs it takes fail to authenticate), the worker at its job
    # limit (jobs queue and are suspended), and what ARM shows of the machine: the Hybrid Worker extension
    # failed, the Arc agent disconnected (Arc servers), the VM deallocated (Azure VMs).
    "service_stopped", "identity_missing", "job_limit", "extension_failed", "arc_disconnected", "vm_deallocated",
)
# Scenarios that need a worker on a given kind of machine: the vmResourceId's provider.
MACHINE_KINDS = {"arc_disconnected": "microsoft.hybridcompute/machines", "vm_deallocated": "microsoft.compute/virtualmachines"}
# Scenarios of the extension-based platform only.
V2_ONLY = {"service_stopped", "identity_missing", "extension_failed", "arc_disconnected", "vm_deallocated"}


@dataclass
class Scenario:
    id: int
    kind: str
    target: str
    start: datetime
    end: datetime
    workers: tuple[int, ...]
    source: str  # "scheduled" (default fleet) or "api"
    period_seconds: int = 0  # flapping: up and down every period

    def __post_init__(self) -> None:
        self.t0 = to_epoch(self.start)
        self.t1 = to_epoch(self.end)

    def silences(self, t: float) -> bool:
        """Whether this scenario holds its workers down at epoch second ``t`` (flapping: down phases only)."""
        if not self.t0 <= t < self.t1:
            return False
        return self.kind != "flapping" or int((t - self.t0) // self.period_seconds) % 2 == 1

    def state(self, now: datetime) -> str:
        if now < self.start:
            return "scheduled"
        if now < self.end:
            return "active"
        return "past"


class ScenarioSchedule(Fleet):
    """The fleet's scenarios: the default schedule, adding one, and the masks that apply them."""

    clock: SimClock
    scenarios: list[Scenario]
    _scenarios_by_worker: dict[int, list[Scenario]]
    _under_spec: list[Scenario]

    # Whole machine silent (no heartbeat, no Perf, no Automation poll): the machine or both agents down;
    # an Arc server whose agent lost its connection loses the identity the worker and AMA use.
    AGENT_DOWN = ("agent_stopped", "site_down", "flapping", "arc_disconnected", "vm_deallocated")
    # Automation does not see the worker (it picks up no jobs), while heartbeats may continue.
    AUTOMATION_DOWN = AGENT_DOWN + ("outbound_blocked", "tls_intercepted", "service_stopped", "extension_failed")
    HEARTBEAT_DOWN = AGENT_DOWN + ("tls_intercepted",)

    def under_spec_workers(self) -> list[str]:
        return sorted({self.workers[i].name for s in self._under_spec for i in s.workers})

    # ------------------------------------------------------------------------------- scenarios

    def _schedule_default_scenarios(self, now: datetime) -> None:
        """The demo's story: one undersized machine always, and episodes of every failure mode.

        History gets one block of episodes per backfilled day (so charts show past incidents); the
        present gets one block starting 20 minutes after start, repeated every 4 hours for 3 days
        when the clock runs in real time. Targets rotate so different machines take turns.
        """
        user_groups = [g for g in self.groups if g.group_type == "User" and len(g.members) >= 2]
        if not user_groups:
            return
        big = max(user_groups, key=lambda g: len(g.members))
        # An undersized machine for the whole history (and beyond).
        self._add_scenario("under_spec", self.workers[big.members[0]].name,
                           self.history_start - timedelta(days=1), timedelta(days=3650), "scheduled")
        others = [i for g in user_groups for i in g.members[1:]]
        if others:
            w = self.workers[others[len(others) // 2]].name
            self._add_scenario("agent_stopped", w, now - timedelta(hours=3), timedelta(minutes=45), "scheduled")
        days_back = int((now - self.history_start) / timedelta(days=1))
        for d in range(days_back, 0, -1):
            self._schedule_block(now - timedelta(days=d) - timedelta(hours=4), d, user_groups, others)
        blocks = 18 if self.clock.realtime else 1
        for k in range(blocks):
            self._schedule_block(now + timedelta(hours=4 * k), k, user_groups, others)

    def _schedule_block(self, start: datetime, k: int, user_groups: list[SimGroup], others: list[int]) -> None:
        if len(others) >= 3:
            n = len(others)
            self._add_scenario("outbound_blocked", self.workers[others[(n - 1 - k) % n]].name,
                               start + timedelta(minutes=20), timedelta(minutes=30), "scheduled")
            self._add_scenario("tls_intercepted", self.workers[others[k % n]].name,
                               start + timedelta(minutes=60), timedelta(minutes=30), "scheduled")
            self._add_scenario("flapping", self.workers[others[(n // 3 + k) % n]].name,
                               start + timedelta(minutes=100), timedelta(minutes=30), "scheduled")
        if len(user_groups) >= 2:
            big = max(user_groups, key=lambda g: len(g.members))
            # Never the group of the under_spec machine: its ground truth stays one clean signal.
            ranked = sorted((g for g in user_groups if g is not big), key=lambda g: (len(g.members), g.name))
            site = ranked[k % len(ranked)]
            self._add_scenario("site_down", site.name, start + timedelta(minutes=140), timedelta(minutes=20),
                               "scheduled")

    def _add_scenario(self, kind: str, target: str, start: datetime, length: timedelta, source: str) -> Scenario:
        group = self.group(target)
        worker = self.worker(target)
        if kind == "site_down":
            if group is None:
                raise SimulationError(f"site_down needs a group name; no group {target!r}")
            members = tuple(group.members)
            target = group.name
        elif worker is not None:
            members = (worker.index,)
            target = worker.name
        elif group is not None:
            members = tuple(group.members)
            target = group.name
        else:
            raise SimulationError(f"no worker or group named {target!r}")
        if kind in V2_ONLY or kind in MACHINE_KINDS:
            members = self._fitting(kind, target, members)
        period = 0
        if kind == "flapping":
            period = int(np.random.default_rng([self.seed, 20, len(self.scenarios)]).integers(120, 301))
        scenario = Scenario(
            id=len(self.scenarios) + 1, kind=kind, target=target, start=start, end=start + length,
            workers=members, source=source, period_seconds=period,
        )
        self.scenarios.append(scenario)
        for i in members:
            self._scenarios_by_worker.setdefault(i, []).append(scenario)
        if kind == "under_spec":
            self._under_spec.append(scenario)
        return scenario

    def _fitting(self, kind: str, target: str, members: tuple[int, ...]) -> tuple[int, ...]:
        """The members a V2 or machine scenario can apply to (V2; on an Arc server / an Azure VM)."""
        needed = MACHINE_KINDS.get(kind, "")
        fit = tuple(i for i in members if self.workers[i].worker_type != "HybridV1"
                    and needed in self.workers[i].vm_resource_id.lower())
        if not fit:
            where = f" on {'an Arc-enabled server' if 'hybridcompute' in needed else 'an Azure VM'}" if needed else ""
            raise SimulationError(f"{kind} needs an extension-based (V2) worker{where}; {target!r} has none")
        return fit

    def scenarios_view(self, now: datetime | None = None) -> list[dict[str, Any]]:
        now = now or self.clock.now()
        return [
            {
                "id": s.id,
                "kind": s.kind,
                "target": s.target,
                "workers": [self.workers[i].name for i in s.workers],
                "start": iso(s.start),
                "end": iso(s.end),
                "minutes": (s.end - s.start).total_seconds() / 60,
                "state": s.state(now),
                "source": s.source,
                **({"period_seconds": s.period_seconds} if s.kind == "flapping" else {}),
            }
            for s in self.scenarios
        ]

    # ------------------------------------------------------------------------ signal masks

    def _down_mask(self, kinds: Iterable[str], widx: np.ndarray, t: np.ndarray) -> np.ndarray:
        """True where one of ``kinds`` silences worker ``widx`` at epoch second ``t`` (flapping: down phases)."""
        kinds = set(kinds)
        mask = np.zeros(widx.shape, dtype=bool)
        if not len(t):
            return mask
        lo, hi = int(t.min()), int(t.max())
        for s in self.scenarios:
            if s.kind not in kinds or s.t1 <= lo or s.t0 > hi:
                continue
            s0, s1 = s.t0, s.t1
            hit = np.isin(widx, np.asarray(s.workers)) & (t >= s0) & (t < s1)
            if s.kind == "flapping":
                hit &= ((t - s0) // s.period_seconds) % 2 == 1
            mask |= hit
        return mask

    def _under_spec_mask(self, widx: np.ndarray, t: np.ndarray) -> np.ndarray:
        mask = np.zeros(widx.shape, dtype=bool)
        for s in self._under_spec:
            mask |= np.isin(widx, np.asarray(s.workers)) & (t >= to_epoch(s.start)) & (t < to_epoch(s.end))
        return mask

    # ---------------------------------------------------------------------------- liveness

    def last_seen(self, worker: SimWorker, now: datetime) -> datetime | None:
        """The worker's ``lastSeenDateTime``: its last 30-second poll while it could reach Automation."""
        t = to_epoch(now) if isinstance(now, datetime) else int(now)
        if t < to_epoch(worker.registered):
            return None
        intervals: list[tuple[int, int]] = []
        for s in self._scenarios_by_worker.get(worker.index, ()):
            if s.kind not in self.AUTOMATION_DOWN:
                continue
            s0, s1 = to_epoch(s.start), to_epoch(s.end)
            if s0 > t:
                continue
            if s.kind == "flapping":
                p = s.period_seconds
                k = 1
                while s0 + k * p < min(s1, t + 1):
                    intervals.append((s0 + k * p, min(s1, s0 + (k + 1) * p)))
                    k += 2
            else:
                intervals.append((s0, s1))
        intervals.sort()
        point = t
        moved = True
        while moved:  # walk back through overlapping silent intervals
            moved = False
            for a, b in intervals:
                if a <= point < b:
                    point = a - 1
                    moved = True
        phase = worker.poll_phase
        tick = ((point - phase) // LAST_SEEN_SECONDS) * LAST_SEEN_SECONDS + phase
        return from_epoch(tick)
