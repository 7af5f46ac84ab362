"""A seedable, deterministic simulation of a Hybrid Runbook Worker fleet.

The emulator's HTTP layer (``server.py``) answers Azure's routes from this object. Everything the
simulation emits is a pure function of the seed, the scenarios and the clock:

* per-minute CPU and memory come from a counter-based hash of (seed, worker, minute), so the value of
  one minute does not depend on how generation was chunked, and a job can ask for the pressure of a
  worker at any minute;
* data is generated lazily up to ``clock.now()`` whenever a request arrives (``ensure``), and
  ``history_days`` of history is backfilled at start;
* Heartbeat/Perf/Event rows carry an ingestion time and only become visible to queries after it
  (20 s to 3 min, like Log Analytics).

Ground truth that Azure does not expose (which worker ran a job, scenario windows) is kept here and
served only on the emulator's own control routes.
"""
from __future__ import annotations

import bisect
import math
import threading
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Iterable

import duckdb
import numpy as np

SCENARIO_KINDS = ("agent_stopped", "outbound_blocked", "tls_intercepted", "under_spec", "site_down", "flapping")

# Pressure above which a machine slows its jobs down. Healthy workers are generated so that they never
# reach it; the under_spec machine crosses it regularly.
CPU_PRESSURE_PCT = 85.0
MEM_PRESSURE_PCT = 90.0

HEARTBEAT_SECONDS = 60
LAST_SEEN_SECONDS = 30
JOB_LIMIT_EXCEPTION = (
    "Job was suspended as it exceeded the job limit for a Hybrid Worker. "
    "Add more Hybrid Workers to the Hybrid Worker group to overcome this issue."
)
TLS_DESCRIPTION = (
    "The certificate specified in the connection to {host} was not issued by a certificate authority used "
    "for Microsoft services. Contact your network administrator. The connection may be routed through a "
    "TLS-inspecting proxy."
)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class SimulationError(ValueError):
    """A caller asked for something the simulation cannot do (unknown target, bad kind, ...)."""


# --------------------------------------------------------------------------------------------- clock


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


# ------------------------------------------------------------------------------------------ hashing

_M1 = np.uint64(0x9E3779B97F4A7C15)
_M2 = np.uint64(0xBF58476D1CE4E5B9)
_M3 = np.uint64(0x94D049BB133111EB)


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser on a uint64 array (wrapping arithmetic is intended)."""
    with np.errstate(over="ignore"):
        z = x + _M1
        z = (z ^ (z >> np.uint64(30))) * _M2
        z = (z ^ (z >> np.uint64(27))) * _M3
        return z ^ (z >> np.uint64(31))


def _uniform(seed: int, salt: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Uniform [0, 1) numbers keyed by (seed, salt, a, b): chunking-independent noise."""
    with np.errstate(over="ignore"):
        key = _mix(np.uint64(seed & 0xFFFFFFFF) * np.uint64(1_000_003) + np.uint64(salt))
        x = _mix(key ^ (a.astype(np.uint64) * np.uint64(0x100000001B3)))
        x = _mix(x ^ b.astype(np.uint64))
    return (x >> np.uint64(11)).astype(np.float64) * (1.0 / 9007199254740992.0)


def _normal(seed: int, salt: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    u1 = np.maximum(_uniform(seed, salt, a, b), 1e-12)
    u2 = _uniform(seed, salt + 7919, a, b)
    return np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * math.pi * u2)


_MASK = (1 << 64) - 1


def _mix_int(x: int) -> int:
    """The same splitmix64 finaliser as ``_mix``, on one Python int (bit-for-bit equal)."""
    z = (x + 0x9E3779B97F4A7C15) & _MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
    return z ^ (z >> 31)


def _uniform_int(seed: int, salt: int, a: int, b: int) -> float:
    """Scalar twin of ``_uniform`` (same numbers), for per-job lookups without numpy overhead."""
    key = _mix_int(((seed & 0xFFFFFFFF) * 1_000_003 + salt) & _MASK)
    x = _mix_int(key ^ ((a * 0x100000001B3) & _MASK))
    x = _mix_int(x ^ (b & _MASK))
    return (x >> 11) * (1.0 / 9007199254740992.0)


def _normal_int(seed: int, salt: int, a: int, b: int) -> float:
    u1 = max(_uniform_int(seed, salt, a, b), 1e-12)
    u2 = _uniform_int(seed, salt + 7919, a, b)
    return math.sqrt(-2.0 * math.log(u1)) * math.cos(2.0 * math.pi * u2)


class _Rand:
    """A tiny deterministic stream (splitmix64) keyed by integers: cheap to create once per job."""

    def __init__(self, *key: int) -> None:
        state = 0x2545F4914F6CDD1D
        for k in key:
            state = _mix_int(state ^ (k & _MASK))
        self._state = state

    def _next(self) -> int:
        self._state = (self._state + 0x9E3779B97F4A7C15) & _MASK
        return _mix_int(self._state)

    def random(self) -> float:
        return (self._next() >> 11) * (1.0 / 9007199254740992.0)

    def uniform(self, low: float, high: float) -> float:
        return low + (high - low) * self.random()

    def integers(self, low: int, high: int) -> int:
        return low + int(self.random() * (high - low))

    def normal(self) -> float:
        u1 = max(self.random(), 1e-12)
        return math.sqrt(-2.0 * math.log(u1)) * math.cos(2.0 * math.pi * self.random())

    def lognormal(self, mu: float, sigma: float) -> float:
        return math.exp(mu + sigma * self.normal())

    def poisson(self, lam: float) -> int:
        limit, k, p = math.exp(-lam), 0, self.random()
        while p > limit:
            k += 1
            p *= self.random()
        return k

    def guid(self) -> str:
        return str(uuid.UUID(int=(self._next() << 64) | self._next(), version=4))


def _epoch(dt: datetime) -> int:
    return int((dt - EPOCH).total_seconds())


def _from_epoch(seconds: float) -> datetime:
    return EPOCH + timedelta(seconds=float(seconds))


def _guid(rng: np.random.Generator) -> str:
    return str(uuid.UUID(bytes=rng.bytes(16), version=4))


# ------------------------------------------------------------------------------------------- models


@dataclass
class SimGroup:
    index: int
    name: str
    group_type: str  # "User" / "System"
    created: datetime
    members: list[int] = field(default_factory=list)
    credential: str | None = None


@dataclass
class SimWorker:
    index: int
    worker_id: str
    name: str
    group: str
    os_type: str  # "Windows" / "Linux"
    worker_type: str  # "HybridV1" / "HybridV2"
    ip: str
    private_ip: str
    vm_resource_id: str
    registered: datetime
    hb_phase: int
    poll_phase: int
    source_computer_id: str
    vm_uuid: str
    total_mb: int
    agent_version: str
    category: str
    cpu_object: str
    cpu_instance: str


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
        self.t0 = _epoch(self.start)
        self.t1 = _epoch(self.end)

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


@dataclass
class SimJob:
    job_id: str
    runbook: str
    run_on: str
    created: float  # epoch seconds
    started: float | None
    ended: float | None
    final_status: str
    exception: str
    worker: int | None  # ground truth: index of the worker that ran it
    started_by: str
    runtime: str
    pending_label: str  # "New" or the open-set "Queued" while waiting
    queue_pressure: float
    run_pressure: float

    def status_at(self, now: float) -> str:
        if self.started is None or self.started > now:
            if self.ended is not None and self.ended <= now:
                return self.final_status  # failed to start
            return self.pending_label
        if self.ended is None or self.ended > now:
            return "Running"
        return self.final_status

    def last_modified_at(self, now: float) -> float:
        stamps = [t for t in (self.created, self.started, self.ended) if t is not None and t <= now]
        return max(stamps)


RUNBOOKS: tuple[tuple[str, float, float, str], ...] = (
    # name, jobs per hour per group at the daily peak, mean duration (s), runtime environment
    ("Patch-Servers", 1.5, 900.0, "PowerShell-7.2"),
    ("Rotate-Logs", 4.0, 75.0, "PowerShell-7.2"),
    ("Backup-SQL", 1.0, 1500.0, "PowerShell-5.1"),
    ("Sync-ADUsers", 3.0, 180.0, "PowerShell-5.1"),
    ("Cleanup-TempFiles", 2.0, 60.0, "Python-3.10"),
    ("Restart-AppPool", 2.5, 40.0, "PowerShell-7.2"),
    ("Export-Inventory", 1.0, 300.0, "Python-3.10"),
    ("Renew-Certificates", 0.5, 120.0, "PowerShell-7.2"),
)
SITES = ("prod", "dmz", "batch", "paris", "dublin", "ohio", "edge", "lab", "sap", "finance")


def _group_names(count: int) -> list[tuple[str, str]]:
    """(name, os) for ``count`` groups: one System leftover, one single-member legacy group, the rest."""
    names: list[tuple[str, str]] = []
    if count >= 1:
        names.append(("update-management-system", "Windows"))
    if count >= 2:
        names.append(("hrw-win-legacy", "Windows"))
    i = 0
    while len(names) < count:
        os_name = "linux" if i % 2 == 0 else "win"
        site = SITES[(i // 2) % len(SITES)]
        cycle = i // (2 * len(SITES))
        name = f"hrw-{os_name}-{site}" + (f"-{cycle + 1:02d}" if cycle else "")
        names.append((name, "Linux" if os_name == "linux" else "Windows"))
        i += 1
    return names


# ----------------------------------------------------------------------------------------- the fleet


class FleetSimulation:
    """Groups, workers, jobs and Log Analytics rows of one Automation account, on a ``SimClock``."""

    def __init__(
        self,
        *,
        seed: int = 7,
        groups: int = 4,
        workers: int = 20,
        history_days: float = 0.0,
        clock: SimClock | None = None,
        scenarios: bool = True,
        warmup_minutes: int = 30,
        subscription_id: str | None = None,
        resource_group: str = "rg-ops",
        automation_account: str = "aa-ops",
        workspace_id: str | None = None,
        location: str = "West Europe",
    ) -> None:
        if groups < 1 or workers < groups:
            raise SimulationError("need at least one group and at least one worker per group")
        self.seed = seed
        self.clock = clock or SimClock(realtime=True)
        self.subscription_id = subscription_id or _guid(np.random.default_rng([seed, 2]))
        self.workspace_id = workspace_id or _guid(np.random.default_rng([seed, 3]))
        self.resource_group = resource_group
        self.automation_account = automation_account
        self.location = location
        self.lock = threading.RLock()
        self.con = duckdb.connect(":memory:", config={"threads": 2})
        self.con.execute("SET TimeZone='UTC'")

        start_now = self.clock.now()
        history = max(timedelta(days=history_days), timedelta(minutes=warmup_minutes))
        self.history_start = start_now - history
        self._gen_until = (_epoch(self.history_start) // 60) * 60  # complete minutes generated so far
        self._jobs_hour_until = _epoch(self.history_start) // 3600  # hours whose arrivals are queued

        self.groups: list[SimGroup] = []
        self.workers: list[SimWorker] = []
        self._group_by_name: dict[str, SimGroup] = {}
        self._worker_by_name: dict[str, SimWorker] = {}
        self._worker_by_id: dict[str, SimWorker] = {}
        self._build_fleet(groups, workers)
        self._build_profiles()

        self.scenarios: list[Scenario] = []
        self._scenarios_by_worker: dict[int, list[Scenario]] = {}
        self._under_spec: list[Scenario] = []

        self.jobs: list[SimJob] = []  # resolved, ordered by creation time
        self.job_created: list[float] = []  # jobs[i].created, for bisecting creation-time windows
        self._job_by_id: dict[str, SimJob] = {}
        self._pending: list[tuple[float, int, int, int]] = []  # (created, group, runbook, n) awaiting resolution
        self._runbooks: dict[int, list[int]] = {}

        self._create_tables()
        if scenarios:
            self._schedule_default_scenarios(start_now)
        self.ensure(start_now)

    # ------------------------------------------------------------------------------ fleet building

    def _build_fleet(self, n_groups: int, n_workers: int) -> None:
        rng = np.random.default_rng([self.seed, 10])
        specs = _group_names(n_groups)
        sizes = [0] * n_groups
        if n_groups == 1:
            sizes[0] = n_workers
        else:
            sizes[0] = min(2, n_workers - (n_groups - 1))  # System leftovers
            sizes[1] = 1  # single-member group: no high availability
            rest = n_workers - sizes[0] - sizes[1]
            others = n_groups - 2
            if others == 0:
                sizes[0] += rest
            else:
                weights = rng.uniform(0.6, 1.4, size=others)
                alloc = np.maximum(1, np.floor(weights / weights.sum() * rest)).astype(int)
                while alloc.sum() > rest:
                    alloc[int(np.argmax(alloc))] -= 1
                i = 0
                while alloc.sum() < rest:
                    alloc[i % others] += 1
                    i += 1
                sizes[2:] = [int(a) for a in alloc]
        counters = {"Windows": 0, "Linux": 0}
        for gi, ((name, os_type), size) in enumerate(zip(specs, sizes, strict=True)):
            group_type = "System" if name == "update-management-system" and n_groups > 1 else "User"
            created = self.history_start - timedelta(days=int(rng.integers(60, 700)))
            group = SimGroup(
                index=gi,
                name=name,
                group_type=group_type,
                created=created,
                credential="hrw-runas" if rng.random() < 0.5 and group_type == "User" else None,
            )
            for _ in range(size):
                counters[os_type] += 1
                n = counters[os_type]
                prefix = "hrw-win" if os_type == "Windows" else "hrw-lin"
                if group_type == "System":
                    prefix = "upd-win"
                worker_name = f"{prefix}-{n:02d}"
                legacy = group_type == "System" or name == "hrw-win-legacy" or rng.random() < 0.3
                worker_type = "HybridV1" if legacy else "HybridV2"
                idx = len(self.workers)
                ip = f"10.{(idx // 250) % 250}.{idx % 250}.{4 + gi % 200}"
                arc = rng.random() < 0.4
                if worker_type == "HybridV1" and rng.random() < 0.5:
                    vm_id = ""
                elif arc:
                    vm_id = (
                        f"/subscriptions/{self.subscription_id}/resourceGroups/rg-arc/providers/"
                        f"Microsoft.HybridCompute/machines/{worker_name}"
                    )
                else:
                    vm_id = (
                        f"/subscriptions/{self.subscription_id}/resourceGroups/rg-vms/providers/"
                        f"Microsoft.Compute/virtualMachines/{worker_name}"
                    )
                ama = worker_type == "HybridV2"
                if os_type == "Windows":
                    cpu_object = "Processor Information" if ama else "Processor"
                    cpu_instance = "_Total"
                    version = "1.30.2" if ama else "10.20.18069.0"
                else:
                    cpu_object = "Processor"
                    cpu_instance = "total" if ama else "_Total"
                    version = "1.30.2" if ama else "1.19.2"
                worker = SimWorker(
                    index=idx,
                    worker_id=_guid(rng),
                    name=worker_name,
                    group=name,
                    os_type=os_type,
                    worker_type=worker_type,
                    ip=f"20.61.{(idx // 250) % 250}.{idx % 250}",
                    private_ip=ip,
                    vm_resource_id=vm_id,
                    registered=created + timedelta(hours=float(rng.uniform(1, 24 * 30))),
                    hb_phase=int(rng.integers(0, HEARTBEAT_SECONDS)),
                    poll_phase=int(rng.integers(0, LAST_SEEN_SECONDS)),
                    source_computer_id=_guid(rng),
                    vm_uuid=_guid(rng),
                    total_mb=int(rng.choice([8192, 16384, 32768])),
                    agent_version=version,
                    category="Azure Monitor Agent" if ama else "Direct Agent",
                    cpu_object=cpu_object,
                    cpu_instance=cpu_instance,
                )
                group.members.append(idx)
                self.workers.append(worker)
                self._worker_by_name[worker_name.lower()] = worker
                self._worker_by_id[worker.worker_id.lower()] = worker
            self.groups.append(group)
            self._group_by_name[name.lower()] = group

    def _build_profiles(self) -> None:
        """Per-worker CPU/memory profile: healthy machines stay well below the pressure thresholds."""
        n = len(self.workers)
        rng = np.random.default_rng([self.seed, 11])
        self.cpu_base = rng.uniform(8.0, 38.0, n)
        self.cpu_amp = rng.uniform(3.0, 9.0, n)
        self.cpu_sd = rng.uniform(1.5, 4.0, n)
        self.mem_base = rng.uniform(35.0, 62.0, n)
        self.mem_amp = rng.uniform(1.0, 4.0, n)
        self.mem_sd = rng.uniform(0.5, 2.0, n)
        self.total_mb = np.array([w.total_mb for w in self.workers], dtype=np.float64)
        self.hb_phase = np.array([w.hb_phase for w in self.workers], dtype=np.int64)
        self.is_windows = np.array([w.os_type == "Windows" for w in self.workers], dtype=bool)

    # ---------------------------------------------------------------------------------- lookups

    def group(self, name: str) -> SimGroup | None:
        return self._group_by_name.get(name.lower())

    def worker(self, name: str) -> SimWorker | None:
        return self._worker_by_name.get(name.lower())

    def worker_by_id(self, worker_id: str) -> SimWorker | None:
        return self._worker_by_id.get(worker_id.lower())

    def job(self, job_id: str) -> SimJob | None:
        return self._job_by_id.get(job_id.lower())

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

    def start_scenario(self, kind: str, target: str, minutes: float, *, start: datetime | None = None) -> Scenario:
        """Start (or schedule) a scenario; the data generated from its start on carries its signature."""
        if kind not in SCENARIO_KINDS:
            raise SimulationError(f"unknown scenario kind {kind!r}; expected one of {', '.join(SCENARIO_KINDS)}")
        if not isinstance(minutes, (int, float)) or isinstance(minutes, bool) or not (0 < minutes <= 525600):
            raise SimulationError("minutes must be a number between 0 and 525600")
        with self.lock:
            now = self.clock.now()
            self.ensure(now)
            begin = start or now
            if begin < _from_epoch(self._gen_until):
                raise SimulationError("a scenario cannot start before data already generated")
            return self._add_scenario(kind, target, begin, timedelta(minutes=minutes), "api")

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

    def scenarios_view(self, now: datetime | None = None) -> list[dict[str, Any]]:
        now = now or self.clock.now()
        return [
            {
                "id": s.id,
                "kind": s.kind,
                "target": s.target,
                "workers": [self.workers[i].name for i in s.workers],
                "start": _iso(s.start),
                "end": _iso(s.end),
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
            mask |= np.isin(widx, np.asarray(s.workers)) & (t >= _epoch(s.start)) & (t < _epoch(s.end))
        return mask

    AGENT_DOWN = ("agent_stopped", "site_down", "flapping")
    AUTOMATION_DOWN = AGENT_DOWN + ("outbound_blocked", "tls_intercepted")
    HEARTBEAT_DOWN = AGENT_DOWN + ("tls_intercepted",)

    # ---------------------------------------------------------------------- utilisation model

    def utilisation(self, widx: np.ndarray, minute: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(CPU %, memory %) of workers ``widx`` in epoch minutes ``minute``; pure and chunking-independent."""
        widx = np.asarray(widx, dtype=np.int64)
        minute = np.asarray(minute, dtype=np.int64)
        hour = (minute % 1440) / 60.0
        daily = np.cos(2 * math.pi * (hour - 14.0) / 24.0)  # peak mid-afternoon UTC
        cpu = self.cpu_base[widx] + self.cpu_amp[widx] * daily + self.cpu_sd[widx] * _normal(self.seed, 1, widx, minute)
        mem = self.mem_base[widx] + self.mem_amp[widx] * daily + self.mem_sd[widx] * _normal(self.seed, 2, widx, minute)
        cpu = np.clip(cpu, 0.5, 78.0)
        mem = np.clip(mem, 10.0, 82.0)
        us = self._under_spec_mask(widx, minute * 60)
        if us.any():
            n1 = _normal(self.seed, 3, widx[us], minute[us])
            n2 = _normal(self.seed, 4, widx[us], minute[us])
            cpu[us] = np.clip(78.0 + 14.0 * daily[us] + 7.0 * n1, 40.0, 100.0)
            mem[us] = np.clip(88.0 + 5.0 * daily[us] + 3.0 * n2, 60.0, 99.5)
        return cpu, mem

    def pressure(self, widx: np.ndarray, minute: np.ndarray) -> np.ndarray:
        """0 below the thresholds; grows linearly above them (CPU > 85 %, memory > 90 %)."""
        cpu, mem = self.utilisation(widx, minute)
        return np.maximum(0.0, (cpu - CPU_PRESSURE_PCT) / 15.0) + np.maximum(0.0, (mem - MEM_PRESSURE_PCT) / 10.0)

    def _pressure_at(self, widx: int, t: float) -> float:
        """Scalar twin of ``pressure`` for one worker and minute (same formula, same noise)."""
        minute = int(t // 60)
        # Healthy profiles are clipped below the thresholds, so only under_spec minutes can have pressure.
        if not any(s.kind == "under_spec" and s.t0 <= minute * 60 < s.t1
                   for s in self._scenarios_by_worker.get(widx, ())):
            return 0.0
        daily = math.cos(2 * math.pi * ((minute % 1440) / 60.0 - 14.0) / 24.0)
        cpu = min(100.0, max(40.0, 78.0 + 14.0 * daily + 7.0 * _normal_int(self.seed, 3, widx, minute)))
        mem = min(99.5, max(60.0, 88.0 + 5.0 * daily + 3.0 * _normal_int(self.seed, 4, widx, minute)))
        return max(0.0, (cpu - CPU_PRESSURE_PCT) / 15.0) + max(0.0, (mem - MEM_PRESSURE_PCT) / 10.0)

    # ------------------------------------------------------------------------------ tables

    def _create_tables(self) -> None:
        c = self.con
        c.execute(
            """CREATE TABLE hrw_workers (widx INTEGER PRIMARY KEY, Computer VARCHAR, Category VARCHAR,
            OSType VARCHAR, OSName VARCHAR, OSMajorVersion VARCHAR, OSMinorVersion VARCHAR, Version VARCHAR,
            ComputerIP VARCHAR, ComputerPrivateIPs VARCHAR, ComputerEnvironment VARCHAR, SourceComputerId VARCHAR,
            Solutions VARCHAR, SCAgentChannel VARCHAR, SourceSystem VARCHAR, ResourceId VARCHAR,
            _ResourceId VARCHAR, SubscriptionId VARCHAR, ResourceGroup VARCHAR, ResourceProvider VARCHAR,
            ResourceType VARCHAR, Resource VARCHAR, VMUUID VARCHAR, MG VARCHAR, ManagementGroupName VARCHAR,
            CpuObject VARCHAR, CpuInstance VARCHAR, MemPctCounter VARCHAR, MemAvailCounter VARCHAR)"""
        )
        c.execute("CREATE TABLE hb_raw (t TIMESTAMP, widx INTEGER, ingest TIMESTAMP)")
        c.execute("CREATE TABLE perf_raw (t TIMESTAMP, widx INTEGER, kind TINYINT, v DOUBLE, ingest TIMESTAMP)")
        c.execute("CREATE TABLE event_raw (t TIMESTAMP, widx INTEGER, eid INTEGER, ingest TIMESTAMP)")
        cols: dict[str, list[Any]] = {name: [] for name in _WORKER_DIM_COLUMNS}
        for w in self.workers:
            rid = w.vm_resource_id.lower()
            parts = rid.split("/")
            windows = w.os_type == "Windows"
            values = (
                w.index, w.name, w.category, w.os_type,
                "Windows Server 2019 Datacenter" if windows else "Ubuntu", "10" if windows else "22",
                "0" if windows else "04", w.agent_version, w.ip, f'["{w.private_ip}"]',
                "Azure" if "microsoft.compute" in rid else "Non-Azure", w.source_computer_id,
                '"updates", "changeTracking"' if w.worker_type == "HybridV1" else "",
                "Direct", "OpsManager" if windows else "Linux", rid, rid,
                self.subscription_id if rid else "", parts[4] if len(parts) > 4 else "",
                parts[6].upper() if len(parts) > 6 else "", (parts[6] + "/" + parts[7]) if len(parts) > 7 else "",
                w.name, w.vm_uuid, "00000000-0000-0000-0000-000000000001", "AOI-" + self.workspace_id,
                w.cpu_object, w.cpu_instance,
                "% Committed Bytes In Use" if windows else "% Used Memory",
                "Available MBytes" if windows else "Available MBytes Memory",
            )
            for name, value in zip(_WORKER_DIM_COLUMNS, values, strict=True):
                cols[name].append(value)
        frame = {name: np.asarray(values, dtype=np.int32 if name == "widx" else object)
                 for name, values in cols.items()}
        self._insert("hrw_workers", frame)

    # --------------------------------------------------------------------------- generation

    def ensure(self, now: datetime | None = None) -> None:
        """Generate every row and job up to ``now``. Safe to call any number of times: it only appends."""
        now = now or self.clock.now()
        with self.lock:
            target = (_epoch(now) // 60) * 60
            if target > self._gen_until:
                self._generate_signals(self._gen_until, target)
                self._gen_until = target
            self._generate_jobs(_epoch(now))

    def _generate_signals(self, t0: int, t1: int) -> None:
        n_w = len(self.workers)
        minutes_per_chunk = max(1, 1_500_000 // max(n_w, 1))
        m0, m1 = t0 // 60, t1 // 60
        for c0 in range(m0, m1, minutes_per_chunk):
            c1 = min(m1, c0 + minutes_per_chunk)
            self._generate_chunk(c0, c1)

    def _ingest_delay(self, salt: int, widx: np.ndarray, key: np.ndarray) -> np.ndarray:
        """20 s to 3 min, most under a minute (log-normal, clipped)."""
        z = _normal(self.seed, salt, widx, key)
        return np.clip(20.0 + np.exp(math.log(25.0) + 0.8 * z), 20.0, 180.0)

    def _generate_chunk(self, m0: int, m1: int) -> None:
        n_w = len(self.workers)
        minutes = np.arange(m0, m1, dtype=np.int64)
        widx = np.tile(np.arange(n_w, dtype=np.int64), len(minutes))
        minute = np.repeat(minutes, n_w)
        t_hb = minute * 60 + self.hb_phase[widx]
        agent_down = self._down_mask(self.AGENT_DOWN, widx, t_hb)
        hb_down = agent_down | self._down_mask(("tls_intercepted",), widx, t_hb)

        # Heartbeat: one row per worker per minute while the agent can upload.
        keep = ~hb_down
        hw, ht = widx[keep], t_hb[keep]
        hi = ht + self._ingest_delay(5, hw, ht)
        self._insert("hb_raw", {"t": _ts(ht), "widx": hw.astype(np.int32), "ingest": _ts(hi)})

        # Perf: CPU, memory % and available memory once a minute (sampled at the minute boundary + 5 s).
        t_pf = minute * 60 + 5
        perf_down = self._down_mask(self.AGENT_DOWN + ("tls_intercepted",), widx, t_pf)
        keep = ~perf_down
        pw, pm, pt = widx[keep], minute[keep], t_pf[keep]
        cpu, mem = self.utilisation(pw, pm)
        avail = self.total_mb[pw] * (1.0 - mem / 100.0)
        k = len(pw)
        perf_w = np.concatenate([pw, pw, pw])
        perf_t = np.concatenate([pt, pt, pt])
        kind = np.concatenate([np.zeros(k), np.ones(k), np.full(k, 2)]).astype(np.int8)
        vals = np.round(np.concatenate([cpu, mem, avail]), 3)
        ingest = np.tile(pt + self._ingest_delay(6, pw, pt), 3)  # the three counters travel together
        self._insert("perf_raw", {"t": _ts(perf_t), "widx": perf_w.astype(np.int32), "kind": kind,
                                  "v": vals, "ingest": _ts(ingest)})

        # Event: TLS interception (4502 every 5 minutes while active) and rare benign agent events.
        tls = self._down_mask(("tls_intercepted",), widx, minute * 60 + 17)
        tls &= (minute + widx) % 5 == 0
        benign = (_uniform(self.seed, 8, widx, minute) < 1.0 / 360.0) & ~agent_down & self.is_windows[widx]
        ev = tls | benign
        if ev.any():
            ew, et = widx[ev], minute[ev] * 60 + 17
            eid = np.where(tls[ev], 4502, np.where(_uniform(self.seed, 9, ew, et) < 0.5, 1210, 7036)).astype(np.int32)
            ei = et + self._ingest_delay(10, ew, et)
            self._insert("event_raw", {"t": _ts(et), "widx": ew.astype(np.int32), "eid": eid, "ingest": _ts(ei)})

    def _insert(self, table: str, columns: dict[str, np.ndarray]) -> None:
        if len(next(iter(columns.values()))) == 0:
            return
        frame = columns  # duckdb reads a dict of numpy arrays through a replacement scan
        cols = ", ".join(columns)
        self.con.register("_frame", frame)
        try:
            self.con.execute(f"INSERT INTO {table} ({cols}) SELECT {cols} FROM _frame")
        finally:
            self.con.unregister("_frame")

    # -------------------------------------------------------------------------------- jobs

    def _user_groups(self) -> list[SimGroup]:
        return [g for g in self.groups if g.group_type == "User"]

    def _runbooks_for(self, group: SimGroup) -> list[int]:
        cached = self._runbooks.get(group.index)
        if cached is None:
            rng = np.random.default_rng([self.seed, 30, group.index])
            k = int(rng.integers(3, 6))
            cached = self._runbooks[group.index] = sorted(rng.choice(len(RUNBOOKS), size=k, replace=False).tolist())
        return cached

    def _generate_jobs(self, now: int) -> None:
        hour_now = now // 3600
        added = self._jobs_hour_until <= hour_now
        while self._jobs_hour_until <= hour_now:
            h = self._jobs_hour_until
            hour_of_day = h % 24
            weekday = (h // 24 + 3) % 7  # 1970-01-01 was a Thursday; 0 = Monday
            business = 7 <= hour_of_day < 19
            cycle = (1.6 if business else 0.45) * (0.6 if weekday >= 5 else 1.0)
            for g in self._user_groups():
                scale = min(3.0, 0.5 + 0.25 * len(g.members))
                for r in self._runbooks_for(g):
                    rng = _Rand(self.seed, 31, g.index, r, h)
                    n = rng.poisson(RUNBOOKS[r][1] * cycle * scale)
                    for j, off in enumerate(sorted(rng.uniform(0, 3600) for _ in range(n))):
                        self._pending.append((h * 3600 + off, g.index, r, j))
            self._jobs_hour_until += 1
        if added:
            self._pending.sort()
        cut = bisect.bisect_right(self._pending, (float(now), 1 << 30, 0, 0))
        ready, self._pending = self._pending[:cut], self._pending[cut:]
        history = _epoch(self.history_start)
        for created, gi, r, j in ready:
            if created < history:
                continue
            job = self._resolve_job(created, self.groups[gi], r, j)
            self.jobs.append(job)
            self.job_created.append(job.created)
            self._job_by_id[job.job_id] = job

    def _available(self, members: list[int], t: float) -> list[int]:
        """Members that can reach Automation at ``t`` (so they poll and pick up jobs)."""
        by_worker = self._scenarios_by_worker
        return [m for m in members
                if not any(s.kind in self.AUTOMATION_DOWN and s.silences(t) for s in by_worker.get(m, ()))]

    def _resolve_job(self, created: float, group: SimGroup, r: int, j: int) -> SimJob:
        """Who picks the job up, when, for how long and how it ends, decided once when it is created."""
        name, _rate, mean_duration, runtime = RUNBOOKS[r]
        rng = _Rand(self.seed, 32, group.index, r, int(created * 1000), j)
        job_id = rng.guid()
        started_by = "Scheduler" if rng.random() < 0.8 else "ops@contoso.com"
        pending_label = "Queued" if rng.random() < 0.35 else "New"
        # Wait for a member that can reach Automation (checked every minute, up to 30 minutes).
        wait = 0.0
        picker: int | None = None
        while wait <= 1800:
            avail = self._available(group.members, created + wait)
            if avail:
                picker = avail[int(rng.integers(0, len(avail)))]
                break
            wait += 60.0
        if picker is None:
            last = max((self.last_seen(self.workers[m], _from_epoch(created)) for m in group.members),
                       default=None)
            when = last.strftime("%m/%d/%Y %H:%M:%S") if last else "never"
            return SimJob(job_id, name, group.name, created, None, created + 1800.0, "Failed",
                          "Failed to start, as hybrid worker was not available when scheduled job started, "
                          f"the hybrid worker was last active at {when}",
                          None, started_by, runtime, pending_label, 0.0, 0.0)
        q_press = self._pressure_at(picker, created + wait)
        delay = wait + rng.uniform(1.0, 30.0) + rng.uniform(1.0, 6.0)  # poll interval + dispatch
        if q_press > 0:
            delay += q_press * rng.uniform(90.0, 600.0)
        started = created + delay
        r_press = self._pressure_at(picker, started)
        duration = mean_duration * rng.lognormal(0.0, 0.35) * (1.0 + 2.5 * r_press)
        if rng.random() < 0.003:
            # A job that never finishes (hung runbook): it stays Running.
            return SimJob(job_id, name, group.name, created, started, None, "Running", "", picker,
                          started_by, runtime, pending_label, q_press, r_press)
        roll = rng.random()
        exception = ""
        if r_press > 0 and rng.random() < 0.35 * min(1.0, r_press):
            status, exception = "Suspended", JOB_LIMIT_EXCEPTION
            duration *= rng.uniform(0.2, 0.6)
        elif roll < 0.05:
            status = "Failed"
            exception = f"Runbook {name} threw: Cannot connect to {name.split('-')[-1].lower()}-0{int(rng.integers(1, 9))}."
        elif roll < 0.06:
            status = "Stopped"
        elif roll < 0.068:
            status, exception = "Suspended", (
                "The job action 'Activate' cannot be run, because the process stopped unexpectedly. "
                "The job action was attempted three times."
            )
        else:
            status = "Completed"
        return SimJob(job_id, name, group.name, created, started, started + duration, status, exception,
                      picker, started_by, runtime, pending_label, q_press, r_press)

    # ---------------------------------------------------------------------------- liveness

    def last_seen(self, worker: SimWorker, now: datetime) -> datetime | None:
        """The worker's ``lastSeenDateTime``: its last 30-second poll while it could reach Automation."""
        t = _epoch(now) if isinstance(now, datetime) else int(now)
        if t < _epoch(worker.registered):
            return None
        intervals: list[tuple[int, int]] = []
        for s in self._scenarios_by_worker.get(worker.index, ()):
            if s.kind not in self.AUTOMATION_DOWN:
                continue
            s0, s1 = _epoch(s.start), _epoch(s.end)
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
        return _from_epoch(tick)

    def data_through(self) -> datetime:
        return _from_epoch(self._gen_until)

    def close(self) -> None:
        with self.lock:
            self.con.close()

    # ---------------------------------------------------------------------------- tests helpers

    def rows(self, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
        """Raw SQL over the internal tables (tests and ground truth), on a private cursor."""
        with self.lock:
            cur = self.con.cursor()
        try:
            return cur.execute(sql, params or []).fetchall()
        finally:
            cur.close()


_WORKER_DIM_COLUMNS = (
    "widx", "Computer", "Category", "OSType", "OSName", "OSMajorVersion", "OSMinorVersion", "Version",
    "ComputerIP", "ComputerPrivateIPs", "ComputerEnvironment", "SourceComputerId", "Solutions", "SCAgentChannel",
    "SourceSystem", "ResourceId", "_ResourceId", "SubscriptionId", "ResourceGroup", "ResourceProvider",
    "ResourceType", "Resource", "VMUUID", "MG", "ManagementGroupName", "CpuObject", "CpuInstance",
    "MemPctCounter", "MemAvailCounter",
)


def _ts(seconds: np.ndarray) -> np.ndarray:
    return (np.asarray(seconds, dtype=np.float64) * 1_000_000).astype(np.int64).astype("datetime64[us]")


def _iso(dt: datetime) -> str:
    return dt.astimezone(UTC).isoformat()

