"""`python -m tests.bench`: speed figures at fleet scale, each beside the bare database doing the same work.

It runs in a throw-away database (Django's test-database machinery: ``test_<NAME>``, dropped at the end
unless ``--keep``), so it never touches real data. Default scale: 10,000 workers in 500 groups in 3
accounts (Azure allows 4,000 workers per account), 30 days of jobs (3 million), 7 days of one-minute
utilization (100.8 million samples), built with SQL in the server (``tests.bench.fleet_sql``).
``--workers N`` scales everything down for a quick run.

Figures printed:
1. ingestion rows/s of one full poll cycle (the rows a poll of every group, the jobs window and the Log
   Analytics window returns, fetched from the local emulator first, then ingested by the same services
   the Celery tasks call), and the ratio to a bare ``INSERT ... ON CONFLICT`` of the same rows;
2. server time p50/p95 of the overview page, ``/api/v1/groups`` and the analytics pages and APIs, and for
   the overview/groups API the ratio to the bare SQL of the same aggregates;
3. queries per page;
4. peak RSS (VmHWM) of a gunicorn web worker serving those pages, and of a Celery worker running one
   full poll cycle of an emulated fleet of the same size.
Nothing is asserted: the figures are for the README and for comparing runs.
"""
from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import connection
from django.test import Client

from tests.bench.bare import bare_ingest, bare_overview
from tests.bench.processes import measure_rss

PAGES = [
    ("overview", "/"),
    ("api groups", "/api/v1/groups"),
    ("api workers (1 group)", None),  # filled in with a real group name
    ("group page", None),  # filled in with a real group id
    ("worker page 24h", None),  # filled in with a real worker id
    ("worker page 7d", None),
    ("jobs", "/jobs/"),
    ("api jobs", "/api/v1/jobs"),
    ("job page", None),  # filled in with a real job id
    ("search (runbook)", "/search/?q=runbook"),
    ("latency 24h", "/latency/?window=24h"),
    ("latency 7d", "/latency/?window=7d"),
    ("latency 30d", "/latency/?window=30d"),
    ("timeouts", "/timeouts/"),
    ("timeouts 30d", "/timeouts/?window=30d"),
    ("api latency 24h", "/api/v1/jobs/latency?window=24h"),
    ("api latency 7d", "/api/v1/jobs/latency?window=7d"),
    ("api latency 30d", "/api/v1/jobs/latency?window=30d"),
    ("correlation 7d", "/correlation/?window=7d"),
    ("api correlations 7d", "/api/v1/correlations?window=7d"),
    ("capacity", "/capacity/"),
    ("capacity 30d", "/capacity/?window=30d"),
    ("wall", "/wall/"),
    ("api wall", "/api/v1/wall"),
    ("alerts", "/alerts/"),
    ("metrics", "/metrics"),
]

def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


class Command(BaseCommand):
    help = "Measure ingestion, page/API server time, queries per page and peak RSS at fleet scale."

    def add_arguments(self, parser):
        parser.add_argument("--workers", type=int, default=10_000)
        parser.add_argument("--groups", type=int, default=None, help="default: workers / 20")
        parser.add_argument("--days", type=int, default=30, help="days of jobs")
        parser.add_argument("--jobs", type=int, default=None, help="default: 300 per worker (3 M at 10,000)")
        parser.add_argument("--accounts", type=int, default=0,
                            help="default: as few as Azure's 4,000 workers per account allows (3 at 10,000)")
        parser.add_argument("--util-days", type=int, default=7, help="days of one-minute utilization")
        parser.add_argument("--requests", type=int, default=40, help="timed requests per page")
        parser.add_argument("--skip-rss", action="store_true", help="skip the gunicorn/Celery RSS probes")
        parser.add_argument("--keep", action="store_true", help="keep the bench database")
        parser.add_argument("--build-only", action="store_true", help="stop after building the data (with --keep: to profile)")
        parser.add_argument("--check-rollups", action="store_true",
                            help="after the build, compare its SQL rollups with the product's rollup writers (PostgreSQL)")
        parser.add_argument("--json", help="also write the figures to this JSON file")
        parser.add_argument("--pages-only", action="store_true",
                            help="time the pages again on the database a --keep run left (test_<name>), without building")

    # ------------------------------------------------------------------------------------------
    def handle(self, *args, **opts):
        started = time.perf_counter()
        workers = opts["workers"]
        groups = opts["groups"] or max(1, workers // 20)
        jobs = opts["jobs"] if opts["jobs"] is not None else workers * 300
        vendor = connection.vendor
        if vendor != "postgresql":
            self.stdout.write(self.style.WARNING(
                f"The database is {vendor}; the README's figures are measured on PostgreSQL (set DATABASE_URL)."))
        self.figures: dict[str, Any] = {
            "database": vendor, "workers": workers, "groups": groups, "jobs": jobs,
            "job_days": opts["days"], "util_days": opts["util_days"], "cpus": os.cpu_count(),
        }
        if opts["pages_only"]:
            self._pages_again(opts)
            return
        with self._bench_database(keep=opts["keep"]) as db_env:
            now = datetime.now(UTC).replace(microsecond=0)
            t = time.perf_counter()
            rolled_up = self._build(workers, groups, jobs, opts, now)
            if opts["check_rollups"] and rolled_up:
                from tests.bench.check_rollups import check_rollups

                self.figures["rollup_check_differences"] = check_rollups(
                    now, job_days=opts["days"], util_days=opts["util_days"], say=self._say)
            self._rollups(now, opts, built=rolled_up)
            self.figures["data_seconds"] = round(time.perf_counter() - t, 1)
            if opts["build_only"]:
                self._print_summary()
                return
            with tempfile.TemporaryDirectory() as tmp:
                from tests.bench.speed import emulator_process

                self._say(f"Starting an emulator with {workers} workers in {groups} groups...")
                with emulator_process(workers=workers, groups=groups, page_size=100, history_days=30 / 1440,
                                      seed=11, directory=Path(tmp)) as (conn, _log, _pid):
                    conn_path = Path(tmp) / "emulator.json"
                    # Pages first: the ingestion pass polls the emulator's fleet, whose ARM ids differ
                    # from the built one's, and would double the fleet the pages are timed on.
                    self._pages(opts["requests"])
                    self._ingestion(conn_path)
                    if not opts["skip_rss"]:
                        measure_rss(self.figures, self._say, db_env, [u for _l, u in PAGES if u], opts["requests"])
            self.figures["total_seconds"] = round(time.perf_counter() - started, 1)
            self._print_summary()
            if opts["json"]:
                Path(opts["json"]).write_text(json.dumps(self.figures, indent=2, default=str))

    def _pages_again(self, opts) -> None:
        """Pages only, on the kept database (its data ends where the --keep run built it: the last
        hours before now may be empty, which makes the raw stretch of the latency pages cheaper)."""
        db = settings.DATABASES["default"]
        db["NAME"] = connection.creation._get_test_db_name()
        connection.close()
        self._say(f"Timing the pages on the kept database {db['NAME']!r}...")
        self._pages(opts["requests"])
        self._print_summary()
        if opts["json"]:
            Path(opts["json"]).write_text(json.dumps(self.figures, indent=2, default=str))

    def _say(self, msg: str) -> None:
        self.stdout.write(msg)
        self.stdout.flush()

    @contextmanager
    def _bench_database(self, *, keep: bool) -> Iterator[dict[str, str]]:
        """A fresh database for the run; yields the environment a child process needs to reach it."""
        db = settings.DATABASES["default"]
        original_name = db["NAME"]
        tmpdir = None
        if connection.vendor == "sqlite":
            tmpdir = tempfile.mkdtemp(prefix="hrw-bench-")
            db.setdefault("TEST", {})["NAME"] = str(Path(tmpdir) / "bench.sqlite3")
        self._say("Creating the bench database...")
        name = connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
        env = dict(os.environ)
        if connection.vendor == "postgresql":
            user = db.get("USER") or "postgres"
            host = db.get("HOST") or "127.0.0.1"
            port = db.get("PORT") or 5432
            password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
            env["DATABASE_URL"] = f"postgres://{user}{password}@{host}:{port}/{name}"
        else:
            env.pop("DATABASE_URL", None)
            env["SQLITE_PATH"] = name
        try:
            yield env
        finally:
            if keep:
                self._say(f"Kept the bench database {name!r}.")
            else:
                connection.creation.destroy_test_db(original_name, verbosity=0)

    # ------------------------------------------------------------------------------------------
    def _build(self, workers: int, groups: int, jobs: int, opts, now: datetime) -> bool:
        """Build the fleet; True when its rollups were built with it (PostgreSQL)."""
        from tests.bench.fleet import FleetSize, build_fleet

        self._say(f"Building the fleet: {workers:,} workers, {groups:,} groups, {jobs:,} jobs over "
                  f"{opts['days']} days, {opts['util_days']} days of one-minute utilization...")
        t = time.perf_counter()
        built = build_fleet(FleetSize(workers=workers, groups=groups, job_days=opts["days"], jobs=jobs,
                                      util_days=opts["util_days"], accounts=opts["accounts"]),
                            now=now, progress=lambda m: self._say(m))
        if connection.vendor == "postgresql":
            with connection.cursor() as cur:
                cur.execute("ANALYZE")
        self.figures["build_seconds"] = round(time.perf_counter() - t, 1)
        self.figures["build_steps_seconds"] = built.seconds
        self.figures["accounts"] = len(built.accounts)
        self._say(f"  built in {self.figures['build_seconds']} s: {built.seconds}")
        return built.rolled_up

    def _rollups(self, now: datetime, opts, *, built: bool) -> None:
        """The product's rollup services (when the build has not computed the rollups), then the
        correlation and capacity precomputation (always the product's)."""
        from workers.capacity.correlation import compute_all
        from workers.fleet.rollups import rollup_utilization
        from workers.latency.rollups import rollup_jobs

        if not built:
            self._say("Rolling up utilization and jobs (the product's rollup services)...")
            t = time.perf_counter()
            rollup_utilization(now - timedelta(days=opts["util_days"]), now)
            self.figures["rollup_utilization_seconds"] = round(time.perf_counter() - t, 1)
            t = time.perf_counter()
            rollup_jobs(now - timedelta(days=opts["days"]), now, now=now)
            self.figures["rollup_jobs_seconds"] = round(time.perf_counter() - t, 1)
        self._say("Correlation and capacity for every window (the product's compute_all)...")
        t = time.perf_counter()
        compute_all(now)
        self.figures["correlation_capacity_seconds"] = round(time.perf_counter() - t, 1)
        self._say(f"  {self.figures['correlation_capacity_seconds']} s")
        if connection.vendor == "postgresql":
            with connection.cursor() as cur:
                cur.execute("ANALYZE")

    # ------------------------------------------------------------------------------------------
    def _ingestion(self, conn_path: Path) -> None:
        """One full poll cycle's rows, fetched from the emulator, ingested twice: ours, then bare SQL."""
        from workers.azure.client import AzureClient
        from workers.azure.connection import connection_from_account
        from workers.fleet.accounts import add_account_from_connection_file
        from workers.fleet.inventory import ingest_groups, ingest_workers
        from workers.fleet.jobs import ingest_jobs
        from workers.fleet.status import refresh_statuses
        from workers.fleet.telemetry import ingest_heartbeats, ingest_utilization

        account, _ = add_account_from_connection_file(conn_path, "bench-emulator")
        conn = connection_from_account(account)
        self._say("Fetching one poll cycle from the emulator (not timed)...")
        with AzureClient(conn) as client:
            group_records = client.list_groups()
            # The emulator runs on a manual clock (speed.START): the poll windows are on its clock, so
            # the cycle carries the last hour's jobs, the heartbeats and two minutes of utilization.
            from tests.bench.speed import START

            now = START
            worker_records = {g.name: client.list_workers(g.name) for g in group_records}
            window = (now - timedelta(seconds=settings.POLL_OVERLAP_SECONDS), now)
            job_records = client.list_jobs(since=now - timedelta(hours=1))
            heartbeats = client.latest_heartbeats(start=window[0], end=window[1]).rows
            utilization = client.utilization(start=now - timedelta(minutes=2), end=now).rows

        def ours() -> int:
            rows = ingest_groups(account, group_records, now=now).rows
            from workers.models import WorkerGroup

            by_name = {g.name: g for g in WorkerGroup.objects.filter(account=account)}
            for name, records in worker_records.items():
                rows += ingest_workers(by_name[name], records, now=now).rows
            rows += ingest_jobs(account, job_records, now=now).rows
            rows += ingest_heartbeats(account, heartbeats).rows
            rows += ingest_utilization(account, utilization).rows
            refresh_statuses(account.pk, now=now)
            return rows

        # First pass inserts; the timed pass is the steady state (every row an upsert of a known key),
        # which is what every poll after the first one does.
        ours()
        t = time.perf_counter()
        rows = ours()
        ours_seconds = time.perf_counter() - t
        bare_seconds = bare_ingest(account, worker_records, job_records, heartbeats, utilization)
        n_rows = (len(group_records) + sum(len(v) for v in worker_records.values()) + len(job_records)
                  + len(heartbeats) + len(utilization))
        self.figures["ingest"] = {
            "rows": n_rows, "rows_written": rows, "seconds": round(ours_seconds, 3),
            "rows_per_second": round(n_rows / ours_seconds) if ours_seconds else None,
            "bare_seconds": round(bare_seconds, 3),
            "bare_rows_per_second": round(n_rows / bare_seconds) if bare_seconds else None,
            "ratio_to_bare": round(ours_seconds / bare_seconds, 2) if bare_seconds else None,
            "includes": "groups, workers of every group, jobs of the last hour, latest heartbeats, "
                        "2 minutes of utilization, status refresh",
        }

    # ------------------------------------------------------------------------------------------
    def _pages(self, n: int) -> None:
        # The configured cache (Redis in production) under a key prefix of this run's own, so it starts
        # empty: each page's first request is a real miss of what the pages share per jobs poll (timed
        # as "first request"), and no key is shared with a deployment that uses the same Redis.
        from django.test import override_settings

        bench_cache = {"default": {**settings.CACHES["default"], "KEY_PREFIX": f"hrw-bench-{os.getpid()}-{time.time_ns()}"}}
        with override_settings(CACHES=bench_cache):
            self._time_pages(n)

    def _time_pages(self, n: int) -> None:
        from django.contrib.auth import get_user_model

        from workers.models import HybridWorker, Job, WorkerGroup

        user, _ = get_user_model().objects.get_or_create(username="bench", defaults={"is_staff": True})
        client = Client(raise_request_exception=False)  # a failing page is reported (HTTP 500), not fatal
        client.force_login(user)
        group = WorkerGroup.objects.order_by("pk").first()
        worker = HybridWorker.objects.order_by("pk").first()
        job = Job.objects.order_by("-pk").first()
        filled = {
            "job page": f"/jobs/{job.job_id}/" if job else "/jobs/none/",
            "api workers (1 group)": f"/api/v1/workers?group={group.name}" if group else "/api/v1/workers",
            "group page": f"/groups/{group.pk}/" if group else "/groups/0/",
            "worker page 24h": f"/workers/{worker.pk}/" if worker else "/workers/0/",
            "worker page 7d": f"/workers/{worker.pk}/?window=7d" if worker else "/workers/0/",
        }
        results = {}
        self.figures["load_average_before_pages"] = [round(x, 2) for x in os.getloadavg()]
        since = datetime.now(UTC) - timedelta(hours=24)
        for label, url in PAGES:
            if url is None:
                url = filled[label]
            t = time.perf_counter()
            status = client.get(url).status_code  # warm-up: a shared figure's miss, timed on its own
            first_ms = round((time.perf_counter() - t) * 1000, 1)
            if status != 200:
                results[label] = {"url": url, "status": status}
                self._say(f"  {label}: HTTP {status} (skipped)")
                continue
            counted = [0]

            def count(execute, sql, params, many, context, counted=counted):
                counted[0] += 1
                return execute(sql, params, many, context)

            with connection.execute_wrapper(count):
                client.get(url)
            timings = []
            for _ in range(n):
                t = time.perf_counter()
                client.get(url)
                timings.append((time.perf_counter() - t) * 1000)
            results[label] = {"url": url, "p50_ms": round(pct(timings, 0.5), 1),
                              "p95_ms": round(pct(timings, 0.95), 1), "queries": counted[0], "first_ms": first_ms}
            self._say(f"  {label}: p50 {results[label]['p50_ms']} ms, p95 {results[label]['p95_ms']} ms, "
                      f"{results[label]['queries']} queries (first request {first_ms} ms)")
        bare = self._time(lambda: bare_overview(since), n)
        results["bare overview SQL"] = {"p50_ms": round(pct(bare, 0.5), 1), "p95_ms": round(pct(bare, 0.95), 1)}
        for label in ("overview", "api groups"):
            if "p95_ms" in results.get(label, {}):
                results[label]["ratio_to_bare_p95"] = round(results[label]["p95_ms"] / max(0.001, pct(bare, 0.95)), 2)
        self.figures["pages"] = results

    @staticmethod
    def _time(fn: Callable[[], Any], n: int) -> list[float]:
        fn()
        out = []
        for _ in range(n):
            t = time.perf_counter()
            fn()
            out.append((time.perf_counter() - t) * 1000)
        return out

    # ------------------------------------------------------------------------------------------
    def _print_summary(self) -> None:
        f = self.figures
        self._say("\n=== bench figures ===")
        self._say(f"database {f['database']}, {f['workers']:,} workers, {f['groups']:,} groups, {f['jobs']:,} jobs "
                  f"over {f['job_days']} d, {f['util_days']} d of 1-min utilization, {f['cpus']} CPUs")
        for key in ("build_seconds", "build_steps_seconds", "rollup_utilization_seconds", "rollup_jobs_seconds",
                    "correlation_capacity_seconds", "data_seconds", "total_seconds"):
            if key in f:
                self._say(f"{key}: {f[key]}")
        if "ingest" in f:
            i = f["ingest"]
            self._say(f"ingestion: {i['rows']:,} rows in {i['seconds']} s = {i['rows_per_second']:,} rows/s; "
                      f"bare INSERT ... ON CONFLICT {i['bare_seconds']} s; ratio {i['ratio_to_bare']}x")
        for label, r in f.get("pages", {}).items():
            if "p95_ms" in r:
                extra = f", {r['queries']} queries" if "queries" in r else ""
                ratio = f", {r['ratio_to_bare_p95']}x bare SQL" if "ratio_to_bare_p95" in r else ""
                self._say(f"{label}: p50 {r['p50_ms']} ms, p95 {r['p95_ms']} ms{extra}{ratio}")
        if "load_average_before_pages" in f:
            self._say(f"load average (1, 5, 15 min) before the pages were timed: {f['load_average_before_pages']}")
        if f.get("rss_mb"):
            self._say(f"peak RSS: {f['rss_mb']}")


