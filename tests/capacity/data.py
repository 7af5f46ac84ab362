"""A small synthetic fleet for the correlation and capacity tests, written straight into the tables.

It mimics the emulator's rule: a job's queue delay and duration grow only when the member that
picks it is above a pressure threshold (CPU > 85 %), and only the ``under_spec`` member gets there;
healthy members' CPU is noise plus a mild daily cycle. The picking member is random and, as in
Azure, not stored on the job (except in single-member groups).
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np

from workers.capacity.correlation import compute_findings
from workers.models import AutomationAccount, HybridWorker, Job, UtilizationHourly, UtilizationSample, WorkerGroup, WorkerStatus


@dataclass
class Fleet:
    account: AutomationAccount
    groups: dict[str, WorkerGroup] = field(default_factory=dict)
    workers: dict[str, HybridWorker] = field(default_factory=dict)
    under_spec: str = ""


def _cpu(rng: np.random.Generator, minutes: np.ndarray, *, under_spec: bool) -> np.ndarray:
    daily = np.sin(2 * np.pi * (minutes % 1440) / 1440)
    if under_spec:
        # Swings well above 85 % for a part of each day: pressure that comes and goes.
        slow = np.convolve(rng.normal(0, 6, minutes.size + 59), np.ones(60) / 60, mode="valid")
        return np.clip(76 + 14 * daily + slow * 3 + rng.normal(0, 3, minutes.size), 0, 100)
    return np.clip(35 + 6 * daily + rng.normal(0, 4, minutes.size), 0, 100)


def build_fleet(
    *,
    now: datetime,
    hours: int = 24,
    seed: int = 1,
    layout: dict[str, int] | None = None,
    under_spec_group: str = "hrw-win-prod",
    jobs_per_hour: float = 40.0,
    hourly_rollup: bool = False,
) -> Fleet:
    """Groups (name -> member count), one under_spec member in ``under_spec_group`` ("" = none)."""
    rng = np.random.default_rng(seed)
    layout = layout or {"hrw-win-prod": 4, "hrw-linux-prod": 3, "hrw-single": 1}
    tag = uuid.uuid4().hex[:6]
    account = AutomationAccount.objects.create(name=f"acct-{tag}", subscription_id="sub", resource_group="rg", automation_account="aa")
    fleet = Fleet(account=account)
    start = now - timedelta(hours=hours)
    minutes = np.arange(hours * 60)
    minute_ts = [start + timedelta(minutes=int(m)) for m in minutes]
    cpu_by_worker: dict[int, np.ndarray] = {}
    for g_index, (gname, members) in enumerate(layout.items()):
        group = WorkerGroup.objects.create(account=account, azure_id=f"/{tag}/groups/{gname}", name=gname)
        fleet.groups[gname] = group
        for i in range(members):
            wname = f"{gname}-{i + 1:02d}"
            worker = HybridWorker.objects.create(
                group=group, azure_id=f"/{tag}/groups/{gname}/workers/{i}", worker_id=str(uuid.uuid4()), name=wname, status=WorkerStatus.ONLINE
            )
            fleet.workers[wname] = worker
            is_under = gname == under_spec_group and i == 0
            if is_under:
                fleet.under_spec = wname
            cpu = _cpu(rng, minutes, under_spec=is_under)
            mem = np.clip(40 + rng.normal(0, 3, minutes.size) + (cpu - 35) * 0.2, 0, 100)
            cpu_by_worker[worker.pk] = cpu
            UtilizationSample.objects.bulk_create(
                [UtilizationSample(worker=worker, ts=ts, cpu_pct=float(c), mem_pct=float(m)) for ts, c, m in zip(minute_ts, cpu, mem)],
                batch_size=2000,
            )
            if hourly_rollup:
                UtilizationHourly.objects.bulk_create(
                    [
                        UtilizationHourly(
                            worker=worker,
                            hour=start + timedelta(hours=h),
                            cpu_avg=float(cpu[h * 60 : (h + 1) * 60].mean()),
                            cpu_max=float(cpu[h * 60 : (h + 1) * 60].max()),
                            mem_avg=float(mem[h * 60 : (h + 1) * 60].mean()),
                            mem_max=float(mem[h * 60 : (h + 1) * 60].max()),
                            samples=60,
                        )
                        for h in range(hours)
                    ]
                )
        member_ids = list(group.workers.values_list("pk", flat=True))
        n_jobs = rng.poisson(jobs_per_hour * hours)
        created_min = np.sort(rng.uniform(0, hours * 60 - 90, n_jobs))
        jobs = []
        for j, cm in enumerate(created_min):
            picker = int(rng.choice(member_ids))
            cpu_now = cpu_by_worker[picker][int(cm)]
            penalty = max(0.0, cpu_now - 85.0)
            queue = rng.uniform(1, 30) + penalty * 40 * rng.uniform(0.7, 1.3)
            duration = rng.exponential(120) + 30 + penalty * 25
            created = start + timedelta(minutes=float(cm))
            started = created + timedelta(seconds=queue)
            ended = started + timedelta(seconds=duration)
            jobs.append(
                Job(
                    account=account,
                    job_id=f"{tag}-{g_index}-{j}",
                    runbook="Patch-Servers",
                    status="Completed",
                    run_on=gname,
                    group=group,
                    worker_id=member_ids[0] if len(member_ids) == 1 else None,
                    created_at=created,
                    started_at=started,
                    ended_at=ended if ended <= now else None,
                    queue_seconds=queue,
                    duration_seconds=duration if ended <= now else None,
                )
            )
        Job.objects.bulk_create(jobs, batch_size=2000)
    return fleet


def build_analysed_fleet(*, now: datetime, hours: int) -> Fleet:
    """A fleet (seed 2, hourly rollups, 30 jobs/h, one under_spec member) with findings computed for
    24 h and 7 d at ``now``: what the capacity pages and the correlations API read."""
    fleet = build_fleet(now=now, hours=hours, seed=2, hourly_rollup=True, jobs_per_hour=30)
    compute_findings("24h", now)
    compute_findings("7d", now)
    return fleet
