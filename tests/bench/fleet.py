"""Synthetic fleets at bench scale, written straight into the tables.

Used by ``python -m tests.bench`` only. It builds the raw tables the way ingestion would leave
them (accounts, groups, workers, jobs, one-minute utilization) and their rollups. On PostgreSQL the
rows are generated inside the server and the rollups computed with INSERT ... SELECT
(``tests.bench.fleet_sql``), with the big tables' indexes built after the load; on SQLite (small
runs only) rows go through executemany and the rollups through the product's rollup services.
"""
from __future__ import annotations

import io
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np
from django.db import connection, transaction

from tests.bench import fleet_sql
from workers.models import AutomationAccount, HybridWorker, WorkerGroup

RUNBOOKS = ["Patch-Servers", "Rotate-Logs", "Backup-SQL", "Sync-AD", "Deploy-App", "Clean-Temp",
            "Restart-IIS", "Collect-Inventory", "Renew-Certs", "Check-Disk"]
OUTCOMES = np.array(["Completed", "Failed", "Stopped", "Suspended"])
OUTCOME_P = list(fleet_sql.OUTCOME_P)
# Azure allows at most 4,000 hybrid workers per Automation account.
WORKERS_PER_ACCOUNT = 4_000


@dataclass
class FleetSize:
    workers: int = 10_000
    groups: int = 500
    job_days: int = 30
    jobs: int = 3_000_000
    util_days: int = 7
    accounts: int = 0  # 0: as few as Azure's per-account limit allows (3 for 10,000 workers)


@dataclass
class BuiltFleet:
    accounts: list[AutomationAccount]
    seconds: dict[str, float] = field(default_factory=dict)
    rolled_up: bool = False  # the rollups were computed with the rows (PostgreSQL)


def _iso(ts: np.ndarray) -> np.ndarray:
    """epoch seconds (float) -> ISO strings with UTC offset."""
    return np.datetime_as_string(np.round(ts * 1000).astype("int64").astype("datetime64[ms]"), unit="ms").astype(object) + "+00:00"


def build_fleet(size: FleetSize, *, now: datetime, seed: int = 1, progress=print) -> BuiltFleet:
    """Accounts with ``size.groups`` groups, ``size.workers`` workers, jobs, utilization (and, on
    PostgreSQL, the job and utilization rollups). Each step's seconds are in the result."""
    rng = np.random.default_rng(seed)
    pg = connection.vendor == "postgresql"
    n_accounts = size.accounts or max(1, -(-size.workers // WORKERS_PER_ACCOUNT))
    built = BuiltFleet(accounts=[], rolled_up=pg)
    t = time.perf_counter()
    with transaction.atomic():
        groups: list[WorkerGroup] = []
        for a in range(n_accounts):
            account = AutomationAccount.objects.create(
                name=f"bench-{a + 1}-{uuid.uuid4().hex[:8]}", subscription_id="00000000-0000-0000-0000-000000000000",
                resource_group="rg-bench", automation_account=f"aa-bench-{a + 1}", workspace_id="ws-bench",
            )
            built.accounts.append(account)
        # Groups round-robin over the accounts, so each account holds about the same number of workers.
        groups = WorkerGroup.objects.bulk_create(
            [WorkerGroup(account=(acc := built.accounts[i % n_accounts]),
                         azure_id=(f"/subscriptions/00000000-0000-0000-0000-000000000000/resourcegroups/rg-bench/providers/"
                                   f"microsoft.automation/automationaccounts/{acc.name}/hybridrunbookworkergroups/g{i:04d}"),
                         name=f"hrw-group-{i:04d}", group_type="System" if i % 97 == 96 else "User", last_listed_at=now)
             for i in range(size.groups)],
            batch_size=2000,
        )
        # Workers spread over groups (a few single-member groups occur naturally at the tail).
        group_of = np.sort(rng.integers(0, len(groups), size.workers))
        last_seen_age = rng.exponential(20, size.workers)
        offline = rng.random(size.workers) < 0.03
        last_seen_age[offline] += 900
        workers = []
        for i in range(size.workers):
            g = groups[int(group_of[i])]
            seen = now - timedelta(seconds=float(last_seen_age[i]))
            workers.append(HybridWorker(
                group=g, azure_id=f"{g.azure_id}/hybridrunbookworkers/{i:08x}", worker_id=str(uuid.UUID(int=i + 1)),
                name=f"hrw-{i:05d}", ip=f"10.{i // 65536 % 256}.{i // 256 % 256}.{i % 256}",
                worker_type="HybridV1" if i % 10 == 0 else "HybridV2", registered_at=now - timedelta(days=90),
                last_seen_at=seen, last_heartbeat_at=seen, os_type="Windows" if i % 2 else "Linux",
                status="offline" if offline[i] else "online", status_changed_at=now - timedelta(hours=1),
                cpu_pct=float(rng.uniform(5, 70)), mem_pct=float(rng.uniform(20, 80)), utilization_at=now,
            ))
        workers = HybridWorker.objects.bulk_create(workers, batch_size=5000)
    per_account = np.bincount(group_of % n_accounts, minlength=n_accounts)
    progress(f"  {n_accounts} accounts, {len(groups)} groups, {len(workers)} workers "
             f"(per account: {', '.join(str(int(x)) for x in per_account)})")
    built.seconds["fleet"] = round(time.perf_counter() - t, 1)
    if pg:
        _build_pg(size, now=now, groups=groups, workers=workers, built=built, progress=progress)
    else:
        _build_sqlite(size, now=now, rng=rng, groups=groups, workers=workers, progress=progress)
    return built


def _build_pg(size: FleetSize, *, now: datetime, groups: list[WorkerGroup], workers: list[HybridWorker],
              built: BuiltFleet, progress) -> None:
    fleet_sql.session_settings()
    start = now - timedelta(days=size.job_days)
    with fleet_sql.indexes_after_load(fleet_sql.BIG_TABLES, progress):
        t = time.perf_counter()
        fleet_sql.insert_jobs([g.pk for g in groups], n=size.jobs, start=start, days=size.job_days, now=now,
                              runbooks=RUNBOOKS)
        built.seconds["jobs"] = round(time.perf_counter() - t, 1)
        progress(f"  {size.jobs:,} jobs in {built.seconds['jobs']} s")
        t = time.perf_counter()
        hourly, daily = fleet_sql.rollup_jobs_sql(start, now, now=now)
        built.seconds["job_rollups"] = round(time.perf_counter() - t, 1)
        progress(f"  job rollups: {hourly:,} hourly and {daily:,} daily rows in {built.seconds['job_rollups']} s")
        minutes = size.util_days * 1440
        t0 = (now - timedelta(days=size.util_days)).replace(second=0, microsecond=0)
        worker_ids = [w.pk for w in workers]
        per_chunk = max(1, 2_000_000 // minutes)
        t = time.perf_counter()
        chunks = [worker_ids[lo:lo + per_chunk] for lo in range(0, len(worker_ids), per_chunk)]
        done = [0]

        def load(ids: list[int]) -> None:
            fleet_sql.insert_utilization(ids, t0=t0, minutes=minutes)
            done[0] += len(ids)
            if done[0] == len(worker_ids) or done[0] // per_chunk % 10 == 0:
                progress(f"  utilization + hourly rollup: workers {done[0]:,}/{len(worker_ids):,} ({minutes} minutes each), "
                         f"{time.perf_counter() - t:.0f} s")

        # Two connections at once: the server generates rows on both cores.
        fleet_sql.in_parallel([lambda ids=ids: load(ids) for ids in chunks])
        built.seconds["utilization"] = round(time.perf_counter() - t, 1)
        t = time.perf_counter()
    built.seconds["indexes"] = round(time.perf_counter() - t, 1)


def _build_sqlite(size: FleetSize, *, now: datetime, rng, groups: list[WorkerGroup], workers: list[HybridWorker],
                  progress) -> None:
    # Jobs: creation times uniform over the window, lognormal queue delay and duration.
    n = size.jobs
    start = now - timedelta(days=size.job_days)
    span = size.job_days * 86400.0
    created = start.timestamp() + np.sort(rng.random(n)) * span
    queue = rng.lognormal(mean=2.5, sigma=1.0, size=n)
    duration = rng.lognormal(mean=4.5, sigma=1.0, size=n)
    outcome = rng.choice(OUTCOMES, size=n, p=OUTCOME_P)
    job_group = rng.integers(0, len(groups), n)
    runbook = rng.integers(0, len(RUNBOOKS), n)
    started = created + queue
    ended = started + duration
    running = ended > now.timestamp()
    group_ids = np.array([g.pk for g in groups])
    group_accounts = np.array([g.account_id for g in groups])
    group_names = np.array([g.name for g in groups], dtype=object)
    chunk = 500_000
    for lo in range(0, n, chunk):
        hi = min(n, lo + chunk)
        sl = slice(lo, hi)
        ids = [uuid.UUID(int=int(x)).hex for x in rng.integers(0, 2**63, hi - lo)]
        cre, sta, end = _iso(created[sl]), _iso(started[sl]), _iso(ended[sl])
        status = np.where(running[sl], "Running", outcome[sl])
        rows = []
        for k in range(hi - lo):
            is_running = running[lo + k]
            g = job_group[lo + k]
            rows.append("\t".join((
                str(group_accounts[g]), ids[k], RUNBOOKS[runbook[lo + k]], status[k], group_names[g],
                str(group_ids[g]), "Scheduler", "Succeeded", cre[k], sta[k],
                r"\N" if is_running else end[k], r"\N" if is_running else end[k],
                f"{queue[lo + k]:.3f}", r"\N" if is_running else f"{duration[lo + k]:.3f}", "",
            )))
        _insert_tsv_sqlite("workers_job", io.StringIO("\n".join(rows) + "\n"))
        progress(f"  jobs {hi:,}/{n:,}")

    # One-minute utilization for util_days (the raw table; pages read the hourly rollup).
    minutes = size.util_days * 1440
    t0 = (now - timedelta(days=size.util_days)).replace(second=0, microsecond=0)
    ts_iso = _iso(t0.timestamp() + np.arange(minutes) * 60.0)
    for w in workers:
        cpu = np.clip(10 + w.pk % 40 + rng.uniform(-8, 8, minutes), 0, 100)
        mem = np.clip(30 + w.pk % 40 + rng.uniform(-3, 3, minutes), 0, 100)
        lines = [f"{w.pk}\t{t}\t{c:.1f}\t{m:.1f}" for t, c, m in zip(ts_iso, cpu, mem)]
        _insert_tsv_sqlite("workers_utilizationsample", io.StringIO("\n".join(lines) + "\n"),
                           columns=["worker_id", "ts", "cpu_pct", "mem_pct"])
    progress(f"  utilization: {len(workers):,} workers, {minutes} minutes each")


def _insert_tsv_sqlite(table: str, buf: io.StringIO, columns: list[str] | None = None) -> None:
    """SQLite has no COPY: executemany the same rows (small bench runs only)."""
    if columns is None:
        columns = ["account_id", "job_id", "runbook", "status", "run_on", "group_id", "started_by",
                   "provisioning_state", "created_at", "started_at", "ended_at", "last_modified_at",
                   "queue_seconds", "duration_seconds", "exception"]
    buf.seek(0)
    rows = [[None if v == r"\N" else v for v in line.split("\t")] for line in buf.read().splitlines() if line]
    cols = ", ".join(f'"{c}"' for c in columns)
    marks = ", ".join("%s" for _ in columns)
    with connection.cursor() as cur:
        cur.executemany(f'INSERT INTO "{table}" ({cols}) VALUES ({marks})', rows)
