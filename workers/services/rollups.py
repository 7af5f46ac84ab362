"""Hourly utilization rollups, so pages spanning days read one row per worker-hour, not 60.

``rollup_utilization`` recomputes every hour touched by ``[since, until)`` from the raw samples and
upserts it by ``(worker, hour)``: a re-run, an overlapping window or late samples simply rewrite
the same rows with complete figures. Called by the ``rollup_recent`` task and ``manage.py rollup``.
"""
from __future__ import annotations

from datetime import datetime, timedelta

from django.db.models import Avg, Count, Max
from django.db.models.functions import TruncHour

from workers.models import UtilizationHourly, UtilizationSample

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
