"""Jobs: runbook arrivals per group and hour, and how each job is picked up, runs and ends.

Arrivals follow a business-hours cycle; each job is resolved once, when created: the member that picks
it up (one that can reach Automation), its queue delay and duration (longer under pressure), and its
outcome (completed, failed, stopped, suspended by the job limit, or never started).
"""
from __future__ import annotations

import bisect
from dataclasses import dataclass

import numpy as np

from workers.emulator.simulation.clock import from_epoch, to_epoch
from workers.emulator.simulation.fleet import SimGroup
from workers.emulator.simulation.noise import Rand
from workers.emulator.simulation.utilisation import UtilisationModel

JOB_LIMIT_EXCEPTION = (
    "Job was suspended as it exceeded the job limit for a Hybrid Worker. "
    "Add more Hybrid Workers to the Hybrid Worker group to overcome this issue."
)
# A job on a V2 worker whose machine has no system-assigned managed identity cannot get a token.
IDENTITY_EXCEPTION = (
    "Connect-AzAccount: ManagedIdentityCredential authentication failed: Unable to retrieve IMDS identity "
    "endpoint. Ensure that the system-assigned managed identity is enabled (Invalid Authorization Token)."
)


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


class JobGenerator(UtilisationModel):
    """The account's jobs, in creation order, resolved lazily up to the simulation's now."""

    jobs: list[SimJob]
    job_created: list[float]
    _job_by_id: dict[str, SimJob]
    _pending: list[tuple[float, int, int, int]]
    _runbooks: dict[int, list[int]]
    _jobs_hour_until: int

    def job(self, job_id: str) -> SimJob | None:
        return self._job_by_id.get(job_id.lower())

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
                    rng = Rand(self.seed, 31, g.index, r, h)
                    n = rng.poisson(RUNBOOKS[r][1] * cycle * scale)
                    for j, off in enumerate(sorted(rng.uniform(0, 3600) for _ in range(n))):
                        self._pending.append((h * 3600 + off, g.index, r, j))
            self._jobs_hour_until += 1
        if added:
            self._pending.sort()
        cut = bisect.bisect_right(self._pending, (float(now), 1 << 30, 0, 0))
        ready, self._pending = self._pending[:cut], self._pending[cut:]
        history = to_epoch(self.history_start)
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
        rng = Rand(self.seed, 32, group.index, r, int(created * 1000), j)
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
            seen = (self.last_seen(self.workers[m], from_epoch(created)) for m in group.members)
            last = max((t for t in seen if t is not None), default=None)
            when = last.strftime("%m/%d/%Y %H:%M:%S") if last else "never"
            return SimJob(job_id, name, group.name, created, None, created + 1800.0, "Failed",
                          "Failed to start, as hybrid worker was not available when scheduled job started, "
                          f"the hybrid worker was last active at {when}",
                          None, started_by, runtime, pending_label, 0.0, 0.0)
        q_press = self._pressure_at(picker, created + wait)
        delay = wait + rng.uniform(1.0, 30.0) + rng.uniform(1.0, 6.0)  # poll interval + dispatch
        if q_press > 0:
            delay += q_press * rng.uniform(90.0, 600.0)
        v2_fault = self._v2_fault(picker, created + wait)
        if v2_fault:
            return self._v2_fault_job(v2_fault, job_id, name, group, created, delay, picker, started_by, runtime,
                                      pending_label, Rand(self.seed, 33, group.index, r, int(created * 1000), j))
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

    def _v2_fault(self, picker: int, t: float) -> str:
        """"identity_missing" / "job_limit" when such a scenario holds the picking worker at ``t``."""
        for s in self._scenarios_by_worker.get(picker, ()):
            if s.kind in {"identity_missing", "job_limit"} and s.silences(t):
                return s.kind
        return ""

    def _v2_fault_job(self, kind: str, job_id: str, name: str, group: SimGroup, created: float, delay: float,
                      picker: int, started_by: str, runtime: str, pending_label: str, rng: Rand) -> SimJob:
        """identity_missing: the job starts and fails at once to authenticate. job_limit: the worker is at
        its limit, so the job waits minutes in the queue and is often suspended by the service."""
        if kind == "identity_missing":
            started = created + delay
            return SimJob(job_id, name, group.name, created, started, started + rng.uniform(3.0, 12.0), "Failed",
                          IDENTITY_EXCEPTION, picker, started_by, runtime, pending_label, 0.0, 0.0)
        started = created + delay + rng.uniform(300.0, 900.0)
        if rng.random() < 0.7:
            return SimJob(job_id, name, group.name, created, started, started + rng.uniform(1.0, 5.0), "Suspended",
                          JOB_LIMIT_EXCEPTION, picker, started_by, runtime, pending_label, 0.0, 0.0)
        return SimJob(job_id, name, group.name, created, started, started + rng.uniform(30.0, 300.0), "Completed", "",
                      picker, started_by, runtime, pending_label, 0.0, 0.0)
