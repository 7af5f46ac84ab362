"""``python -m tests.bench --check-rollups``: the SQL rollups of the bench build against the product's.

After a PostgreSQL build, the rollup rows ``tests.bench.fleet_sql`` computed are copied aside, the
product's rollup writers (``rollup_jobs``, ``rollup_utilization``) recompute the same windows, and
every row is compared: keys, counts, maxima and histograms exactly, sums and means to 1e-9 relative.
"""
from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from django.db import connection

_JOB_COLUMNS = ("scope, key, group_id, worker_id, runbook, jobs, completed, failed, stopped, suspended, other, "
                "not_available, queue_count, queue_max, queue_hist, duration_count, duration_max, duration_hist")


def check_rollups(now: datetime, *, job_days: int, util_days: int, say: Callable[[str], None]) -> int:
    """Compare; returns the number of differing rows (0: the same rollups)."""
    from workers.fleet.rollups import rollup_utilization
    from workers.latency.rollups import rollup_jobs

    with connection.cursor() as cur:
        for table in ("workers_jobhourly", "workers_jobdaily", "workers_utilizationhourly"):
            cur.execute(f"CREATE TEMP TABLE bench_{table} AS SELECT * FROM {table}")
    rollup_jobs(now - timedelta(days=job_days), now, now=now)
    rollup_utilization(now - timedelta(days=util_days), now)
    bad = 0
    with connection.cursor() as cur:
        for table, period in (("workers_jobhourly", "hour"), ("workers_jobdaily", "day")):
            cols = f"{period}, {_JOB_COLUMNS}"
            for a, b in ((table, f"bench_{table}"), (f"bench_{table}", table)):
                cur.execute(f"SELECT count(*) FROM (SELECT {cols} FROM {a} EXCEPT SELECT {cols} FROM {b}) x")
                bad += cur.fetchone()[0]
            cur.execute(f"SELECT count(*) FROM {table} p JOIN bench_{table} s USING ({period}, key) "
                        "WHERE abs(p.queue_sum - s.queue_sum) > 1e-9 * greatest(1, abs(p.queue_sum)) "
                        "OR abs(p.duration_sum - s.duration_sum) > 1e-9 * greatest(1, abs(p.duration_sum))")
            bad += cur.fetchone()[0]
        cols = "worker_id, hour, cpu_max, mem_max, samples"
        for a, b in (("workers_utilizationhourly", "bench_workers_utilizationhourly"),
                     ("bench_workers_utilizationhourly", "workers_utilizationhourly")):
            cur.execute(f"SELECT count(*) FROM (SELECT {cols} FROM {a} EXCEPT SELECT {cols} FROM {b}) x")
            bad += cur.fetchone()[0]
        cur.execute("SELECT count(*) FROM workers_utilizationhourly p JOIN bench_workers_utilizationhourly s "
                    "USING (worker_id, hour) WHERE abs(p.cpu_avg - s.cpu_avg) > 1e-9 OR abs(p.mem_avg - s.mem_avg) > 1e-9")
        bad += cur.fetchone()[0]
        cur.execute("SELECT (SELECT count(*) FROM workers_jobhourly), (SELECT count(*) FROM workers_jobdaily), "
                    "(SELECT count(*) FROM workers_utilizationhourly)")
        hourly, daily, util = cur.fetchone()
    say(f"  rollup check: {hourly:,} job-hourly, {daily:,} job-daily, {util:,} utilization-hourly rows; "
        f"{bad} differ from the product's rollup writers")
    return bad
