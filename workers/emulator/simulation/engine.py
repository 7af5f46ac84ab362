"""The simulation itself: one Automation account's fleet on a clock, generated lazily up to now.

``FleetSimulation`` ties the fleet, scenarios, utilisation, signals and jobs together. At start it
backfills ``history_days`` of history (at least the warm-up); afterwards every request calls
``ensure``, which appends the rows and jobs of the minutes that have passed since.
"""
from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

import duckdb
import numpy as np

from workers.emulator.simulation.clock import SimClock, from_epoch, to_epoch
from workers.emulator.simulation.fleet import SimGroup, SimulationError, SimWorker
from workers.emulator.simulation.jobs import JobGenerator, SimJob
from workers.emulator.simulation.noise import guid
from workers.emulator.simulation.scenarios import SCENARIO_KINDS, Scenario
from workers.emulator.simulation.signals import SignalGenerator


class FleetSimulation(SignalGenerator, JobGenerator):
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
        self.subscription_id = subscription_id or guid(np.random.default_rng([seed, 2]))
        self.workspace_id = workspace_id or guid(np.random.default_rng([seed, 3]))
        self.resource_group = resource_group
        self.automation_account = automation_account
        self.location = location
        self.lock = threading.RLock()
        self._idle = threading.Condition(self.lock)  # notified whenever a private cursor is given back
        self._cursors: set[duckdb.DuckDBPyConnection] = set()
        self._closed = False
        self.con = duckdb.connect(":memory:", config={"threads": 2})
        self.con.execute("SET TimeZone='UTC'")

        start_now = self.clock.now()
        history = max(timedelta(days=history_days), timedelta(minutes=warmup_minutes))
        self.history_start = start_now - history
        self._gen_until = (to_epoch(self.history_start) // 60) * 60  # complete minutes generated so far
        self._jobs_hour_until = to_epoch(self.history_start) // 3600  # hours whose arrivals are queued

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

    # --------------------------------------------------------------------------- generation

    def ensure(self, now: datetime | None = None) -> None:
        """Generate every row and job up to ``now``. Safe to call any number of times: it only appends."""
        now = now or self.clock.now()
        with self.lock:
            target = (to_epoch(now) // 60) * 60
            if target > self._gen_until:
                self._generate_signals(self._gen_until, target)
                self._gen_until = target
            self._generate_jobs(to_epoch(now))

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
            if begin < from_epoch(self._gen_until):
                raise SimulationError("a scenario cannot start before data already generated")
            return self._add_scenario(kind, target, begin, timedelta(minutes=minutes), "api")

    def data_through(self) -> datetime:
        return from_epoch(self._gen_until)

    @contextmanager
    def cursor(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A private cursor for one read outside the lock; ``close`` waits for every one given out.

        DuckDB refuses to close a connection while a cursor of it runs a query (it does not wait), so a
        server shutting down mid-request used to fail with "connection is busy".
        """
        with self.lock:
            if self._closed:
                raise SimulationError("the simulation is closed")
            cur = self.con.cursor()
            self._cursors.add(cur)
        try:
            yield cur
        finally:
            cur.close()
            with self.lock:
                self._cursors.discard(cur)
                self._idle.notify_all()

    def close(self, timeout: float = 30.0) -> None:
        """Stop new reads, interrupt the ones running, wait (bounded) until they are given back, close."""
        with self.lock:
            if self._closed:
                return
            self._closed = True
            for cur in list(self._cursors):
                cur.interrupt()
            self._idle.wait_for(lambda: not self._cursors, timeout=timeout)
            self.con.close()

    # ---------------------------------------------------------------------------- tests helpers

    def rows(self, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
        """Raw SQL over the internal tables (tests and ground truth), on a private cursor."""
        with self.cursor() as cur:
            return cur.execute(sql, params or []).fetchall()
