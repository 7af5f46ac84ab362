"""Job rollups: JobHourly (from raw Job rows) and JobDaily (from that day's JobHourly rows).

Called by the ``rollup_recent`` task (beat, every ROLLUP_SECONDS), the on-demand
``rollup_job_latency`` task and ``manage.py rollup --hours N`` (backfill / rebuild).

Safe to run twice, and concurrently: each touched hour is recomputed WHOLE from the raw rows and
replaces the stored rows of that hour (delete + insert in one transaction), so a second run writes the
same rows; a job that changed status between runs simply lands in its new bucket. Two runs at once
serialise on an advisory transaction lock on PostgreSQL (SQLite serialises writers anyway), so they
never interleave their delete/insert.
"""
from __future__ import annotations

import json
import logging
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import connection, transaction
from django.db.models.functions import TruncHour
from django.utils import timezone

from workers.rules import latency
from workers.models import Job, JobDaily, JobHourly, RollupScope

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


@dataclass
class Accumulator:
    """Counts, sums and histograms for one (period, key); also used by the selectors to merge rows."""

    scope: str
    key: str
    group_id: int | None = None
    worker_id: int | None = None
    runbook: str = ""
    jobs: int = 0
    completed: int = 0
    failed: int = 0
    stopped: int = 0
    suspended: int = 0
    other: int = 0
    not_available: int = 0
    queue_count: int = 0
    queue_sum: float = 0.0
    queue_max: float | None = None
    queue_hist: list[int] = field(default_factory=latency.empty_histogram)
    duration_count: int = 0
    duration_sum: float = 0.0
    duration_max: float | None = None
    duration_hist: list[int] = field(default_factory=latency.empty_histogram)

    def add_job(self, status: str, queue_seconds: float | None, duration_seconds: float | None, not_available: bool) -> None:
        self.jobs += 1
        name = latency.outcome(status)
        setattr(self, name, getattr(self, name) + 1)
        if not_available:
            self.not_available += 1
        if queue_seconds is not None:
            value = max(0.0, float(queue_seconds))
            self.queue_count += 1
            self.queue_sum += value
            self.queue_max = value if self.queue_max is None else max(self.queue_max, value)
            self.queue_hist[latency.bucket_index(value)] += 1
        if duration_seconds is not None:
            value = max(0.0, float(duration_seconds))
            self.duration_count += 1
            self.duration_sum += value
            self.duration_max = value if self.duration_max is None else max(self.duration_max, value)
            self.duration_hist[latency.bucket_index(value)] += 1

    def add_row(self, row: dict) -> None:
        """Add a stored rollup row (a ``values()`` dict of JobHourly/JobDaily)."""
        for name in ("jobs", "completed", "failed", "stopped", "suspended", "other", "not_available",
                     "queue_count", "duration_count"):
            setattr(self, name, getattr(self, name) + row[name])
        self.queue_sum += row["queue_sum"]
        self.duration_sum += row["duration_sum"]
        for name in ("queue_max", "duration_max"):
            if row[name] is not None:
                mine = getattr(self, name)
                setattr(self, name, row[name] if mine is None else max(mine, row[name]))
        for name in ("queue_hist", "duration_hist"):
            hist = getattr(self, name)
            stored = row[name]
            for i, count in enumerate(parse_hist(stored) if isinstance(stored, str) else stored):
                if count:
                    hist[i] += count

    def counts(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in latency.OUTCOMES}

    def as_fields(self) -> dict:
        return {
            "scope": self.scope, "key": self.key, "group_id": self.group_id, "worker_id": self.worker_id,
            "runbook": self.runbook, "jobs": self.jobs, "completed": self.completed, "failed": self.failed,
            "stopped": self.stopped, "suspended": self.suspended, "other": self.other,
            "not_available": self.not_available, "queue_count": self.queue_count, "queue_sum": self.queue_sum,
            "queue_max": self.queue_max, "queue_hist": dump_hist(self.queue_hist), "duration_count": self.duration_count,
            "duration_sum": self.duration_sum, "duration_max": self.duration_max, "duration_hist": dump_hist(self.duration_hist),
        }


def dump_hist(hist: Sequence[int]) -> str:
    """A histogram as compact JSON text (what JobHourly/JobDaily store)."""
    return json.dumps(list(hist), separators=(",", ":"))


def parse_hist(text: str) -> list[int]:
    """A stored histogram back as a list of BUCKET_COUNT counts (shorter arrays padded with zeros)."""
    values = [int(v) for v in json.loads(text or "[]")][: latency.BUCKET_COUNT]
    return values + [0] * (latency.BUCKET_COUNT - len(values))


ROLLUP_VALUE_FIELDS: tuple[str, ...] = (
    "scope", "key", "group_id", "worker_id", "runbook", "jobs", "completed", "failed", "stopped", "suspended",
    "other", "not_available", "queue_count", "queue_sum", "queue_max", "queue_hist", "duration_count",
    "duration_sum", "duration_max", "duration_hist",
)


def scope_keys(group_id: int, runbook: str, worker_id: int | None) -> list[tuple[str, str, int | None, int | None, str]]:
    """The rollup rows one job counts in: (scope, key, group_id, worker_id, runbook)."""
    keys = [
        (RollupScope.FLEET.value, "fleet", None, None, ""),
        (RollupScope.GROUP.value, f"g:{group_id}", group_id, None, ""),
        (RollupScope.RUNBOOK.value, f"r:{runbook}", None, None, runbook),
    ]
    if worker_id is not None:
        keys.append((RollupScope.WORKER.value, f"w:{worker_id}", group_id, worker_id, ""))
    return keys


def accumulate_jobs(rows: Iterable[Sequence], period: Callable[[datetime], datetime]) -> dict[tuple[datetime, str], Accumulator]:
    """Fold raw job tuples (JOB_FIELDS order) into accumulators keyed by (period start, key)."""
    accs: dict[tuple[datetime, str], Accumulator] = {}
    for group_id, worker_id, runbook, created_at, status, queue_s, duration_s, exception in rows:
        start = period(created_at)
        not_available = latency.is_not_available_failure(status, exception)
        for scope, key, gid, wid, rb in scope_keys(group_id, runbook, worker_id):
            acc = accs.get((start, key))
            if acc is None:
                acc = accs[(start, key)] = Accumulator(scope=scope, key=key, group_id=gid, worker_id=wid, runbook=rb)
            acc.add_job(status, queue_s, duration_s, not_available)
    return accs


JOB_FIELDS: tuple[str, ...] = (
    "group_id", "worker_id", "runbook", "created_at", "status", "queue_seconds", "duration_seconds", "exception",
)


def hybrid_jobs():
    """Jobs that ran (or were meant to run) on a hybrid worker group we know; sandbox jobs are excluded."""
    return Job.objects.filter(group__isnull=False)


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
