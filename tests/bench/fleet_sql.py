"""PostgreSQL side of the bench fleet: rows generated inside the server, rollups as INSERT ... SELECT.

Used by ``tests.bench.fleet`` on PostgreSQL only (SQLite runs are small and go through the ORM and
the product's rollup services). Nothing here is product code: the product's rollup writers
(``workers.fleet.rollups.rollup_utilization``, ``workers.latency.rollups.rollup_jobs``) remain the one
definition of the rollups; the SQL below computes the same rows for a freshly built fleet in a few
statements, and ``python -m tests.bench --check-rollups`` compares them row by row with those writers.

Speed: secondary indexes and constraints of the big tables are dropped for the load and rebuilt after
it (one sorted build each instead of 100 million random inserts), foreign keys are re-added as
``NOT VALID`` then validated (two tables at a time, one connection each), and the hourly utilization rollup is computed from the rows each
INSERT returns, so the 100 million samples are never read back.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import datetime, timedelta

from django.db import connection

from workers.rules import latency

OUTCOME_P = (0.90, 0.06, 0.02, 0.02)  # Completed, Failed, Stopped, Suspended (tests.bench.fleet)
BIG_TABLES = ("workers_job", "workers_utilizationsample", "workers_utilizationhourly", "workers_jobhourly",
              "workers_jobdaily")


def session_settings() -> None:
    with connection.cursor() as cur:
        cur.execute("SET synchronous_commit = off")
        cur.execute("SET maintenance_work_mem = '512MB'")
        cur.execute("SET work_mem = '256MB'")


@contextmanager
def indexes_after_load(tables: tuple[str, ...], progress: Callable[[str], None]) -> Iterator[None]:
    """Drop the indexes and constraints (not NOT NULL/CHECK) of ``tables``; rebuild them on exit."""
    with connection.cursor() as cur:
        cur.execute(
            """SELECT c.conrelid::regclass::text, c.conname, pg_get_constraintdef(c.oid), c.contype
               FROM pg_constraint c WHERE c.conrelid::regclass::text = ANY(%s) AND c.contype IN ('p', 'u', 'f')""",
            [list(tables)],
        )
        constraints = cur.fetchall()
        cur.execute(
            """SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid)
               FROM pg_index i WHERE i.indrelid::regclass::text = ANY(%s)
                 AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)""",
            [list(tables)],
        )
        indexes = cur.fetchall()
        for table, name, _d, _kind in sorted(constraints, key=lambda c: c[3] != "f"):  # foreign keys first
            cur.execute(f'ALTER TABLE "{table}" DROP CONSTRAINT "{name}"')
        for name, _d in indexes:
            cur.execute(f'DROP INDEX "{name}"')
    yield
    # One table per connection, two at a time (the machine's cores): a table's own statements in order,
    # primary and unique keys before the foreign keys that need them.
    work: dict[str, list[str]] = {t: [] for t in tables}
    for table, name, definition, kind in sorted(constraints, key=lambda c: c[3] == "f"):
        if kind == "f":
            work[table] += [f'ALTER TABLE "{table}" ADD CONSTRAINT "{name}" {definition} NOT VALID',
                            f'ALTER TABLE "{table}" VALIDATE CONSTRAINT "{name}"']
        else:
            work[table].append(f'ALTER TABLE "{table}" ADD CONSTRAINT "{name}" {definition}')
    for _name, definition in indexes:
        table = definition.split(" ON ", 1)[1].split(" ", 1)[0].removeprefix("public.").strip('"')
        work[table].insert(0, definition)
    in_parallel([lambda statements=statements: _run(statements) for statements in work.values() if statements])
    progress(f"  rebuilt {len(indexes)} indexes and {len(constraints)} constraints on {', '.join(tables)}")


def _run(statements: list[str]) -> None:
    with connection.cursor() as cur:
        for sql in statements:
            cur.execute(sql)


def in_parallel(tasks: list[Callable[[], None]], workers: int = 2) -> None:
    """Run ``tasks`` on ``workers`` threads, each with its own database connection and session settings."""

    def run(task: Callable[[], None]) -> None:
        try:
            session_settings()
            task()
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=workers) as pool:
        for future in [pool.submit(run, task) for task in tasks]:
            future.result()


def insert_jobs(group_ids: list[int], *, n: int, start: datetime, days: int, now: datetime, runbooks: list[str]) -> None:
    """``n`` jobs created uniformly over ``days`` from ``start`` (oldest first), on random groups.

    The distributions of ``tests.bench.fleet`` (the numpy builder): lognormal queue delay
    (mu 2.5, sigma 1) and duration (mu 4.5, sigma 1) in seconds (Box-Muller normals), outcomes
    90/6/2/2 % Completed/Failed/Stopped/Suspended, a job still running when it would end after ``now``.
    """
    c, f, s = OUTCOME_P[0], OUTCOME_P[0] + OUTCOME_P[1], OUTCOME_P[0] + OUTCOME_P[1] + OUTCOME_P[2]
    normal = "sqrt(-2 * ln(1 - random())) * cos(2 * pi() * random())"
    with connection.cursor() as cur:
        cur.execute(
            f"""
            WITH g AS (
                SELECT array_agg(id ORDER BY id) AS ids, array_agg(name ORDER BY id) AS names,
                       array_agg(account_id ORDER BY id) AS accounts, count(*)::int AS n
                FROM workers_workergroup WHERE id = ANY(%(groups)s)
            ), r AS (
                SELECT %(start)s::timestamptz + ((i + random()) * %(step)s) * interval '1 second' AS created,
                       exp(2.5 + 1.0 * {normal}) AS q, exp(4.5 + 1.0 * {normal}) AS d, random() AS u,
                       1 + floor(random() * (SELECT n FROM g))::int AS gi,
                       1 + floor(random() * %(nrb)s)::int AS rb
                FROM generate_series(0, %(n)s - 1) AS i
            ), j AS (
                SELECT r.*, r.created + (r.q + r.d) * interval '1 second' > %(now)s AS running FROM r
            )
            INSERT INTO workers_job (account_id, job_id, runbook, status, run_on, group_id, started_by,
                                     provisioning_state, created_at, started_at, ended_at, last_modified_at,
                                     queue_seconds, duration_seconds, exception)
            SELECT g.accounts[j.gi], replace(gen_random_uuid()::text, '-', ''), (%(runbooks)s::text[])[j.rb],
                   CASE WHEN j.running THEN 'Running' WHEN j.u < {c} THEN 'Completed' WHEN j.u < {f} THEN 'Failed'
                        WHEN j.u < {s} THEN 'Stopped' ELSE 'Suspended' END,
                   g.names[j.gi], g.ids[j.gi], 'Scheduler', 'Succeeded', j.created,
                   j.created + j.q * interval '1 second',
                   CASE WHEN j.running THEN NULL ELSE j.created + (j.q + j.d) * interval '1 second' END,
                   CASE WHEN j.running THEN NULL ELSE j.created + (j.q + j.d) * interval '1 second' END,
                   round(j.q::numeric, 3)::float8, CASE WHEN j.running THEN NULL ELSE round(j.d::numeric, 3)::float8 END, ''
            FROM j CROSS JOIN g
            """,
            {"groups": group_ids, "start": start, "step": days * 86400.0 / max(1, n), "n": n, "now": now,
             "runbooks": runbooks, "nrb": len(runbooks)},
        )


def insert_utilization(worker_ids: list[int], *, t0: datetime, minutes: int) -> None:
    """One-minute samples of ``worker_ids`` from ``t0``, and their hourly rollup from the same rows.

    Each worker sits around its own base (10 + id % 40 % CPU, 30 + id % 40 % memory) with uniform
    noise of +-8 and +-3 points, rounded to 0.1, clipped to [0, 100]. The rollup rows are what
    ``workers.fleet.rollups.rollup_utilization`` writes: avg/max per worker and UTC hour.
    """
    with connection.cursor() as cur:
        cur.execute(
            """
            WITH s AS (
                INSERT INTO workers_utilizationsample (worker_id, ts, cpu_pct, mem_pct)
                SELECT w.id, %(t0)s::timestamptz + (m * interval '1 minute'),
                       round(10 * least(100, greatest(0, 10 + (w.id %% 40) + 8 * (random() - 0.5) * 2))) / 10,
                       round(10 * least(100, greatest(0, 30 + (w.id %% 40) + 3 * (random() - 0.5) * 2))) / 10
                FROM unnest(%(ids)s::bigint[]) AS w(id) CROSS JOIN generate_series(0, %(minutes)s - 1) AS m
                RETURNING worker_id, ts, cpu_pct, mem_pct
            )
            INSERT INTO workers_utilizationhourly (worker_id, hour, cpu_avg, cpu_max, mem_avg, mem_max, samples)
            SELECT worker_id, date_trunc('hour', ts), avg(cpu_pct), max(cpu_pct), avg(mem_pct), max(mem_pct), count(*)
            FROM s GROUP BY worker_id, date_trunc('hour', ts)
            """,
            {"t0": t0, "ids": worker_ids, "minutes": minutes},
        )


def _bucket(col: str) -> str:
    """``workers.rules.latency.bucket_index`` in SQL (NULL for NULL)."""
    last = latency.BUCKET_COUNT - 1
    steps = f"floor(ln({col}) / ln(2) * {latency.STEPS_PER_DOUBLING} + 1e-9)"
    return (f"CASE WHEN {col} IS NULL THEN NULL WHEN {col} < 1 THEN 0 ELSE least({last}, {steps} + 1 - "
            f"CASE WHEN {steps} >= 0 AND power(2, {steps} / {latency.STEPS_PER_DOUBLING}.0) > {col} THEN 1 ELSE 0 END) END")


def _hist(col: str) -> str:
    counts = ", ".join(f"count(*) FILTER (WHERE {col} = {i})" for i in range(latency.BUCKET_COUNT))
    return f"'[' || concat_ws(',', {counts}) || ']'"


def rollup_jobs_sql(since: datetime, until: datetime, *, now: datetime) -> tuple[int, int]:
    """JobHourly and JobDaily rows of ``workers.latency.rollups.rollup_jobs(since, until)`` on an empty
    rollup table: fleet, group and runbook rows per period (worker rows only for attributed jobs), a
    fleet row for every period even without jobs. Returns (hourly rows, daily rows)."""
    start = latency.floor_hour(since)
    end = latency.floor_hour(until)
    if end < until:
        end += timedelta(hours=1)
    empty = "[" + ",".join("0" for _ in range(latency.BUCKET_COUNT)) + "]"
    written = []
    for table, period, unit, lo in (("workers_jobhourly", "hour", "hour", start),
                                    ("workers_jobdaily", "day", "day", latency.floor_day(start))):
        with connection.cursor() as cur:
            cur.execute(
                f"""
                WITH j AS (
                    SELECT date_trunc('{unit}', created_at) AS p, group_id, worker_id, runbook,
                           lower(btrim(status)) AS st,
                           lower(btrim(status)) = 'failed' AND exception ~* 'hybrid worker (was not|wasn''t|wasn’t) available' AS na,
                           CASE WHEN queue_seconds IS NULL THEN NULL ELSE greatest(queue_seconds, 0) END AS q,
                           CASE WHEN duration_seconds IS NULL THEN NULL ELSE greatest(duration_seconds, 0) END AS d
                    FROM workers_job
                    WHERE group_id IS NOT NULL AND created_at >= %(start)s AND created_at < %(end)s
                ), b AS (SELECT j.*, {_bucket('q')} AS qb, {_bucket('d')} AS db FROM j)
                INSERT INTO {table} ({period}, scope, key, group_id, worker_id, runbook, jobs, completed, failed,
                    stopped, suspended, other, not_available, queue_count, queue_sum, queue_max, queue_hist,
                    duration_count, duration_sum, duration_max, duration_hist, computed_at)
                SELECT p,
                       CASE WHEN grouping(group_id) = 0 AND grouping(worker_id) = 0 THEN 'worker'
                            WHEN grouping(group_id) = 0 THEN 'group' WHEN grouping(runbook) = 0 THEN 'runbook'
                            ELSE 'fleet' END,
                       CASE WHEN grouping(group_id) = 0 AND grouping(worker_id) = 0 THEN 'w:' || worker_id
                            WHEN grouping(group_id) = 0 THEN 'g:' || group_id WHEN grouping(runbook) = 0 THEN 'r:' || runbook
                            ELSE 'fleet' END,
                       CASE WHEN grouping(group_id) = 0 THEN group_id END,
                       CASE WHEN grouping(worker_id) = 0 THEN worker_id END,
                       CASE WHEN grouping(runbook) = 0 THEN runbook ELSE '' END,
                       count(*), count(*) FILTER (WHERE st = 'completed'), count(*) FILTER (WHERE st = 'failed'),
                       count(*) FILTER (WHERE st = 'stopped'), count(*) FILTER (WHERE st = 'suspended'),
                       count(*) FILTER (WHERE st NOT IN ('completed', 'failed', 'stopped', 'suspended')),
                       count(*) FILTER (WHERE na), count(q), coalesce(sum(q), 0), max(q), {_hist('qb')},
                       count(d), coalesce(sum(d), 0), max(d), {_hist('db')}, %(now)s
                FROM b
                GROUP BY GROUPING SETS ((p), (p, group_id), (p, runbook), (p, group_id, worker_id))
                HAVING grouping(worker_id) = 1 OR worker_id IS NOT NULL
                """,
                {"start": start, "end": end, "now": now},
            )
            n = cur.rowcount
            cur.execute(
                f"""
                INSERT INTO {table} ({period}, scope, key, group_id, worker_id, runbook, jobs, completed, failed,
                    stopped, suspended, other, not_available, queue_count, queue_sum, queue_max, queue_hist,
                    duration_count, duration_sum, duration_max, duration_hist, computed_at)
                SELECT p, 'fleet', 'fleet', NULL, NULL, '', 0, 0, 0, 0, 0, 0, 0, 0, 0, NULL, %(empty)s, 0, 0, NULL,
                       %(empty)s, %(now)s
                FROM generate_series(%(lo)s::timestamptz, %(end)s::timestamptz - interval '1 second',
                                     interval '1 {unit}') AS p
                WHERE NOT EXISTS (SELECT 1 FROM {table} t WHERE t.{period} = p AND t.key = 'fleet')
                """,
                {"lo": lo, "end": end, "empty": empty, "now": now},
            )
            written.append(n + cur.rowcount)
    return written[0], written[1]
