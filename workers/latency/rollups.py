"""Job rollups: JobHourly (from raw Job rows) and JobDaily (from that day's JobHourly rows).

The folding itself is pure (``workers.rules.job_rollups``); this module reads the raw rows
(``hybrid_jobs``, shared with the latency reads) and replaces the stored rows. Called by the
``rollup_recent`` task (beat, every ROLLUP_SECONDS), the on-demand
``rollup_job_latency`` task and ``manage.py rollup --hours N`` (backfill / rebuild).

Safe to run twice, and concurrently: each touched hour is recomputed WHOLE from the raw rows and
replaces the stored rows of that hour (delete + insert in one transaction), so a second run writes the
same rows; a job that changed status between runs simply lands in its new bucket. Two runs at once
serialise on an advisory transaction lock on PostgreSQL (SQLite serialises writers anyway), so they
never interleave their delete/insert.
"""
from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import connection, transaction
from django.db.models.functions import TruncHour
from django.utils import timezone

from workers.latency.selectors.jobs import hybrid_jobs
from workers.models import JobDaily, JobHourly
from workers.rules import latency
from workers.rules.job_rollups import JOB_FIELDS, ROLLUP_VALUE_FIELDS, Accumulator, accumulate_jobs

log = logging.getLogger(__name__)

# Any constant works; it only has to differ from other advisory locks in this database.
_ADVISORY_LOCK_KEY = 0x4A4F4252  # "JOBR"
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
_BULK = 2000


@dataclass(frozen=True)
class RollupResult:
    hours: int
    days: int
    hourly_rows: int
    daily_rows: int


def touched_hours(since: datetime, until: datetime) -> set[datetime]:
    """Hours to recompute: every hour in [since, until), plus the creation hour of any job modified
    in [since, until] (a job created days ago that ended just now changes an old hour)."""
    hours: set[datetime] = set()
    hour = latency.floor_hour(since)
    while hour < until:
        hours.add(hour)
        hour += HOUR
    older = (
        hybrid_jobs()
        .filter(last_modified_at__gte=since, last_modified_at__lte=until, created_at__lt=latency.floor_hour(since))
        .annotate(h=TruncHour("created_at"))
        .values_list("h", flat=True)
        .distinct()
    )
    hours.update(older)
    return hours


def _lock() -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_ADVISORY_LOCK_KEY])


def _recompute_hours(start: datetime, end: datetime, *, now: datetime) -> int:
    """Replace JobHourly rows for every hour in [start, end) with a fresh computation."""
    rows = (
        hybrid_jobs()
        .filter(created_at__gte=start, created_at__lt=end)
        .values_list(*JOB_FIELDS)
        .iterator(chunk_size=5000)
    )
    accs = accumulate_jobs(rows, latency.floor_hour)
    # Every computed hour gets its fleet row, even without jobs: it marks the hour as covered, so the
    # reads (workers.latency.selectors.coverage) know a missing row means "no jobs", not "not rolled up".
    hour = start
    while hour < end:
        accs.setdefault((hour, "fleet"), Accumulator(scope="fleet", key="fleet"))
        hour += HOUR
    JobHourly.objects.filter(hour__gte=start, hour__lt=end).delete()
    objs = [JobHourly(hour=hour, computed_at=now, **acc.as_fields()) for (hour, _key), acc in accs.items()]
    JobHourly.objects.bulk_create(objs, batch_size=_BULK)
    return len(objs)


def _recompute_day(day: datetime, *, now: datetime) -> int:
    """Replace the JobDaily rows of ``day`` with the sum of that day's JobHourly rows."""
    accs: dict[str, Accumulator] = {}
    rows = JobHourly.objects.filter(hour__gte=day, hour__lt=day + DAY).values(*ROLLUP_VALUE_FIELDS).iterator(chunk_size=5000)
    for row in rows:
        acc = accs.get(row["key"])
        if acc is None:
            acc = accs[row["key"]] = Accumulator(
                scope=row["scope"], key=row["key"], group_id=row["group_id"], worker_id=row["worker_id"], runbook=row["runbook"]
            )
        acc.add_row(row)
    JobDaily.objects.filter(day=day).delete()
    JobDaily.objects.bulk_create([JobDaily(day=day, computed_at=now, **acc.as_fields()) for acc in accs.values()], batch_size=_BULK)
    return len(accs)


def rollup_jobs(since: datetime, until: datetime, *, now: datetime | None = None) -> RollupResult:
    """Recompute JobHourly for every hour touched in [since, until) and JobDaily for their days.

    Idempotent and safe to run concurrently (see the module docstring). Work is done one UTC day per
    transaction, so a long backfill commits as it goes and a crash loses at most one day's work.
    """
    now = now or timezone.now()
    if since >= until:
        return RollupResult(0, 0, 0, 0)
    hours = touched_hours(since, until)
    by_day: dict[datetime, list[datetime]] = defaultdict(list)
    for hour in hours:
        by_day[latency.floor_day(hour)].append(hour)
    hourly_rows = daily_rows = 0
    for day in sorted(by_day):
        day_hours = sorted(by_day[day])
        with transaction.atomic():
            _lock()
            hourly_rows += _recompute_hours(day_hours[0], day_hours[-1] + HOUR, now=now)
            daily_rows += _recompute_day(day, now=now)
    log.info("job rollup %s..%s: %d hours, %d days", since.isoformat(), until.isoformat(), len(hours), len(by_day))
    return RollupResult(hours=len(hours), days=len(by_day), hourly_rows=hourly_rows, daily_rows=daily_rows)
