"""Hourly utilization rollups, so pages spanning days read one row per worker-hour, not 60, and the
retention of raw rows (poll runs, one-minute samples, signal spans).

``rollup_utilization`` recomputes every hour touched by ``[since, until)`` from the raw samples and
upserts it by ``(worker, hour)``: a re-run, an overlapping window or late samples simply rewrite
the same rows with complete figures. Called by the ``rollup_recent`` task and ``manage.py rollup``.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Avg, Count, Max, QuerySet
from django.db.models.functions import TruncHour

from workers.models import PollRun, SignalSpan, UtilizationHourly, UtilizationSample

BATCH = 2000


def hour_floor(value: datetime) -> datetime:
    return value.replace(minute=0, second=0, microsecond=0)


def rollup_utilization(since: datetime, until: datetime) -> int:
    """Upsert UtilizationHourly for every hour overlapping ``[since, until)``; returns rows written."""
    if until <= since:
        return 0
    start = hour_floor(since)
    end = hour_floor(until)
    if end < until:
        end += timedelta(hours=1)
    rows = (
        UtilizationSample.objects.filter(ts__gte=start, ts__lt=end)
        .annotate(hour=TruncHour("ts"))
        .values("worker_id", "hour")
        .annotate(
            cpu_avg=Avg("cpu_pct"), cpu_max=Max("cpu_pct"), mem_avg=Avg("mem_pct"), mem_max=Max("mem_pct"), n=Count("id")
        )
        .order_by("worker_id", "hour")
    )
    objs = [
        UtilizationHourly(
            worker_id=r["worker_id"],
            hour=r["hour"],
            cpu_avg=r["cpu_avg"],
            cpu_max=r["cpu_max"],
            mem_avg=r["mem_avg"],
            mem_max=r["mem_max"],
            samples=r["n"],
        )
        for r in rows.iterator(chunk_size=BATCH)
    ]
    UtilizationHourly.objects.bulk_create(
        objs,
        batch_size=BATCH,
        update_conflicts=True,
        unique_fields=["worker", "hour"],
        update_fields=["cpu_avg", "cpu_max", "mem_avg", "mem_max", "samples"],
    )
    return len(objs)


PRUNE_BATCH = 10_000


@dataclass(frozen=True)
class PruneResult:
    poll_runs: int
    samples: int
    signal_spans: int = 0


def prune_raw(*, now: datetime) -> PruneResult:
    """Delete poll runs, raw utilization samples and signal spans past their retention, in batches.

    POLL_RUN_RETENTION_HOURS / UTILIZATION_RETENTION_DAYS (a signal span goes once it *ended*
    before the horizon: a span still being extended is never cut). The latest successful run of each
    kind and scope (a group, for worker polls) per account is always kept, so a poller that stopped long
    ago still shows *when* data was last fresh, and a group whose worker poll has failed for longer than
    the retention keeps its last look (``fleet.selectors.last_looked``). Hourly rollups are kept. Safe to
    run twice or concurrently: deleting deleted rows is a no-op.
    """
    runs_horizon = now - timedelta(hours=settings.POLL_RUN_RETENTION_HOURS)
    ok_runs = PollRun.objects.filter(ok=True)
    # Only a scope with no successful run inside the retention needs its old latest one kept.
    fresh = set(ok_runs.filter(started_at__gte=runs_horizon).values_list("account_id", "kind", "scope").distinct())
    old_latest = (
        ok_runs.filter(started_at__lt=runs_horizon).values("account_id", "kind", "scope").annotate(at=Max("started_at")).order_by()
    )
    keep: set[int] = set()
    for row in old_latest:
        if (row["account_id"], row["kind"], row["scope"]) in fresh:
            continue
        keep.update(
            ok_runs.filter(account_id=row["account_id"], kind=row["kind"], scope=row["scope"], started_at=row["at"]).values_list(
                "pk", flat=True
            )
        )
    runs = PollRun.objects.filter(started_at__lt=runs_horizon).exclude(pk__in=keep)
    horizon = now - timedelta(days=settings.UTILIZATION_RETENTION_DAYS)
    samples = UtilizationSample.objects.filter(ts__lt=horizon)
    spans = SignalSpan.objects.filter(end_at__lt=horizon)
    return PruneResult(
        poll_runs=_delete_in_batches(runs), samples=_delete_in_batches(samples), signal_spans=_delete_in_batches(spans)
    )


def _delete_in_batches(qs: QuerySet) -> int:
    deleted = 0
    while True:
        pks = list(qs.values_list("pk", flat=True)[:PRUNE_BATCH])
        if not pks:
            return deleted
        deleted += qs.model.objects.filter(pk__in=pks).delete()[0]
