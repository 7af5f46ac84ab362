"""The bare database doing the bench's work by hand: the figures each measured path is compared with."""
from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from django.db import connection

# The overview's aggregates written by hand: members by status per group, and the last 24 h of jobs
# by outcome with the queue-delay p95, per group.
BARE_OVERVIEW_SQL = {
    "postgresql": [
        """SELECT g.id, g.name, count(w.id), count(w.id) FILTER (WHERE w.status = 'online')
           FROM workers_workergroup g LEFT JOIN workers_hybridworker w
             ON w.group_id = g.id AND w.removed_at IS NULL
           WHERE g.removed_at IS NULL GROUP BY g.id, g.name""",
        """SELECT group_id, status, count(*),
                  percentile_cont(0.95) WITHIN GROUP (ORDER BY queue_seconds)
           FROM workers_job WHERE created_at >= %s AND group_id IS NOT NULL
           GROUP BY group_id, status""",
    ],
    "sqlite": [
        """SELECT g.id, g.name, count(w.id), sum(CASE WHEN w.status = 'online' THEN 1 ELSE 0 END)
           FROM workers_workergroup g LEFT JOIN workers_hybridworker w
             ON w.group_id = g.id AND w.removed_at IS NULL
           WHERE g.removed_at IS NULL GROUP BY g.id, g.name""",
        """SELECT group_id, status, count(*), max(queue_seconds)
           FROM workers_job WHERE created_at >= %s AND group_id IS NOT NULL
           GROUP BY group_id, status""",
    ],
}


def bare_ingest(account: Any, worker_records: dict, job_records: list, heartbeats: list, utilization: list) -> float:
    """The same rows as plain multi-row INSERT ... ON CONFLICT DO UPDATE statements."""
    from workers.models import HybridWorker, WorkerGroup

    groups = {g.name: g.pk for g in WorkerGroup.objects.filter(account=account)}
    ids = {w.name.lower(): w.pk for w in HybridWorker.objects.filter(group__account=account)}
    worker_rows = [
        (groups[gname], r.azure_id, r.worker_id, r.name, r.ip, r.worker_type, r.vm_resource_id,
         r.registered_at, r.last_seen_at)
        for gname, records in worker_records.items() for r in records
    ]
    job_rows = [(account.pk, j.job_id, j.runbook, j.status, j.run_on, j.created_at, j.started_at, j.ended_at,
                 j.last_modified_at) for j in job_records]
    hb_rows = [(h.time_generated, ids[h.computer.lower()]) for h in heartbeats if h.computer.lower() in ids]
    util_rows = [(ids[u.computer.lower()], u.ts, u.cpu_pct, u.mem_pct) for u in utilization
                 if u.computer.lower() in ids]
    t = time.perf_counter()
    with connection.cursor() as cur:
        for chunk in _chunks(worker_rows, 1000):
            cur.execute(
                "INSERT INTO workers_hybridworker (group_id, azure_id, worker_id, name, ip, worker_type, vm_resource_id,"
                " registered_at, last_seen_at, agent_version, agent_category, os_type, computer_ip, event_4502_count,"
                " status, status_reason, machine_status, extension_state, extension_message, first_seen_at) VALUES "
                + ",".join(["(%s,%s,%s,%s,%s,%s,%s,%s,%s,'','','','',0,'unknown','','','','',now())"] * len(chunk))
                + " ON CONFLICT (azure_id) DO UPDATE SET last_seen_at = EXCLUDED.last_seen_at, ip = EXCLUDED.ip,"
                " worker_type = EXCLUDED.worker_type",
                [v for row in chunk for v in row],
            )
        for chunk in _chunks(job_rows, 1000):
            cur.execute(
                "INSERT INTO workers_job (account_id, job_id, runbook, status, run_on, created_at, started_at, ended_at,"
                " last_modified_at, started_by, provisioning_state, exception) VALUES "
                + ",".join(["(%s,%s,%s,%s,%s,%s,%s,%s,%s,'','','')"] * len(chunk))
                + " ON CONFLICT (account_id, job_id) DO UPDATE SET status = EXCLUDED.status,"
                " started_at = EXCLUDED.started_at, ended_at = EXCLUDED.ended_at,"
                " last_modified_at = EXCLUDED.last_modified_at",
                [v for row in chunk for v in row],
            )
        for chunk in _chunks(hb_rows, 1000):
            cur.executemany("UPDATE workers_hybridworker SET last_heartbeat_at = %s WHERE id = %s", chunk)
        for chunk in _chunks(util_rows, 1000):
            cur.execute(
                "INSERT INTO workers_utilizationsample (worker_id, ts, cpu_pct, mem_pct) VALUES "
                + ",".join(["(%s,%s,%s,%s)"] * len(chunk))
                + " ON CONFLICT (worker_id, ts) DO UPDATE SET cpu_pct = EXCLUDED.cpu_pct, mem_pct = EXCLUDED.mem_pct",
                [v for row in chunk for v in row],
            )
    return time.perf_counter() - t


def bare_overview(since: datetime) -> None:
    with connection.cursor() as cur:
        for sql in BARE_OVERVIEW_SQL[connection.vendor]:
            cur.execute(sql, [since] if "%s" in sql else [])
            cur.fetchall()


def _chunks(rows: list, size: int) -> Iterator[list]:
    for i in range(0, len(rows), size):
        yield rows[i:i + size]
