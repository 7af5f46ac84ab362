"""Synthetic fleets at bench scale, written straight into the tables with PostgreSQL COPY.

Used by ``python -m tests.bench`` only. It builds the raw tables the way ingestion would leave
them (accounts, groups, workers, jobs, one-minute utilization); rollups are then built by the real
rollup services so the bench measures them too.
"""
from __future__ import annotations

import io
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
from django.db import connection, transaction

from workers.models import AutomationAccount, HybridWorker, WorkerGroup

RUNBOOKS = ["Patch-Servers", "Rotate-Logs", "Backup-SQL", "Sync-AD", "Deploy-App", "Clean-Temp",
            "Restart-IIS", "Collect-Inventory", "Renew-Certs", "Check-Disk"]
OUTCOMES = np.array(["Completed", "Failed", "Stopped", "Suspended"])
OUTCOME_P = [0.90, 0.06, 0.02, 0.02]


@dataclass
class FleetSize:
    workers: int = 10_000
    groups: int = 500
    job_days: int = 30
    jobs: int = 3_000_000
    util_days: int = 7


def _copy(table: str, columns: list[str], buf: io.StringIO) -> None:
    buf.seek(0)
    with connection.cursor() as cur:
        raw = cur.cursor  # psycopg cursor under Django's wrapper
        cols = ", ".join(f'"{c}"' for c in columns)
        with raw.copy(f'COPY "{table}" ({cols}) FROM STDIN') as copy:
            while chunk := buf.read(1 << 20):
                copy.write(chunk)


def _iso(ts: np.ndarray) -> np.ndarray:
    """epoch seconds (float) -> ISO strings with UTC offset."""
    return np.datetime_as_string(np.round(ts * 1000).astype("int64").astype("datetime64[ms]"), unit="ms").astype(object) + "+00:00"


def build_fleet(size: FleetSize, *, now: datetime, seed: int = 1, progress=print) -> AutomationAccount:
    """Create one account with ``size.groups`` groups, ``size.workers`` workers, jobs and utilization."""
    rng = np.random.default_rng(seed)
    pg = connection.vendor == "postgresql"
    with transaction.atomic():
        account = AutomationAccount.objects.create(
            name=f"bench-{uuid.uuid4().hex[:8]}", subscription_id="00000000-0000-0000-0000-000000000000",
            resource_group="rg-bench", automation_account="aa-bench", workspace_id="ws-bench",
        )
        base = (f"/subscriptions/00000000-0000-0000-0000-000000000000/resourcegroups/rg-bench/providers/"
                f"microsoft.automation/automationaccounts/{account.name}")
        groups = WorkerGroup.objects.bulk_create(
            [WorkerGroup(account=account, azure_id=f"{base}/hybridrunbookworkergroups/g{i:04d}", name=f"hrw-group-{i:04d}",
                         group_type="System" if i % 97 == 96 else "User", last_listed_at=now)
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
    progress(f"  {len(groups)} groups, {len(workers)} workers")

    # Jobs: creation times with a daily cycle, lognormal queue delay and duration.
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
            rows.append("\t".join((
                str(account.pk), ids[k], RUNBOOKS[runbook[lo + k]], status[k], group_names[job_group[lo + k]],
                str(group_ids[job_group[lo + k]]), "Scheduler", "Succeeded", cre[k], sta[k],
                r"\N" if is_running else end[k], r"\N" if is_running else end[k],
                f"{queue[lo + k]:.3f}", r"\N" if is_running else f"{duration[lo + k]:.3f}", "",
            )))
        buf = io.StringIO("\n".join(rows) + "\n")
        if pg:
            _copy("workers_job", ["account_id", "job_id", "runbook", "status", "run_on", "group_id", "started_by",
                                  "provisioning_state", "created_at", "started_at", "ended_at", "last_modified_at",
                                  "queue_seconds", "duration_seconds", "exception"], buf)
        else:
            _insert_tsv_sqlite("workers_job", buf)
        progress(f"  jobs {hi:,}/{n:,}")

    # One-minute utilization for util_days (the raw table; pages read the hourly rollup).
    minutes = size.util_days * 1440
    t0 = (now - timedelta(days=size.util_days)).replace(second=0, microsecond=0)
    worker_ids = [w.pk for w in workers]
    per_chunk = max(1, 2_000_000 // minutes)
    for wlo in range(0, len(worker_ids), per_chunk):
        ids = worker_ids[wlo:wlo + per_chunk]
        if pg:
            # Generated inside the server: the same rows a poll would write, without Python in the loop.
            with connection.cursor() as cur:
                cur.execute(
                    """
                    INSERT INTO workers_utilizationsample (worker_id, ts, cpu_pct, mem_pct)
                    SELECT w.id, %s::timestamptz + (m * interval '1 minute'),
                           round(least(100, greatest(0, 10 + (w.id %% 40) + 8 * (random() - 0.5) * 2))::numeric, 1),
                           round(least(100, greatest(0, 30 + (w.id %% 40) + 3 * (random() - 0.5) * 2))::numeric, 1)
                    FROM unnest(%s::bigint[]) AS w(id) CROSS JOIN generate_series(0, %s - 1) AS m
                    """,
                    [t0, ids, minutes],
                )
        else:
            ts_iso = _iso(t0.timestamp() + np.arange(minutes) * 60.0)
            lines = []
            for wid in ids:
                cpu = np.clip(rng.uniform(10, 50) + rng.normal(0, 8, minutes), 0, 100)
                mem = np.clip(rng.uniform(30, 70) + rng.normal(0, 3, minutes), 0, 100)
                lines.extend(f"{wid}\t{t}\t{c:.1f}\t{m:.1f}" for t, c, m in zip(ts_iso, cpu, mem))
            _insert_tsv_sqlite("workers_utilizationsample", io.StringIO("\n".join(lines) + "\n"),
                               columns=["worker_id", "ts", "cpu_pct", "mem_pct"])
        progress(f"  utilization: workers {min(wlo + per_chunk, len(worker_ids)):,}/{len(worker_ids):,} ({minutes} minutes each)")
    return account


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
