"""Measure each group's load, utilization and saturation trend for the capacity-planning page.

``measure_group_capacity`` returns an UNSAVED ``GroupCapacity`` row; ``services.correlation.
compute_findings`` saves the rows of every group with the run in one transaction. It only reads,
so running it twice gives the same figures for the same data and window.

Sources: ``UtilizationHourly`` (the hourly rollup: percentiles are of hourly means per member, not
of minutes) and ``Job`` rows aggregated per hour in SQL (one row per hour, not per job), plus the
group's queue delays for p50/p95.
"""
from __future__ import annotations

import math
from collections import defaultdict
from datetime import datetime, timedelta, timezone

import numpy as np
from django.conf import settings
from django.db.models import Count, F, Sum

from workers.rules import analytics
from workers.models import GroupCapacity, HybridWorker, Job, UtilizationHourly, WorkerGroup, WorkerStatus
from workers.capacity.correlation import EpochBucket

HOUR = 3600
PICKUP_PER_WORKER_PER_HOUR = analytics.JOBS_PER_POLL * HOUR / analytics.POLL_INTERVAL_SECONDS  # 480


def pickup_capacity_per_hour(online: int) -> float:
    """Jobs per hour the online workers can pick up: 4 jobs per 30-s poll each (documented)."""
    return online * PICKUP_PER_WORKER_PER_HOUR


def cpu_threshold() -> float:
    """CPU p95 (percent) at which a group counts as saturated."""
    return float(getattr(settings, "CAPACITY_CPU_PRESSURE_PCT", 85))


def load_threshold(online: int) -> float:
    """Busiest-hour arrivals at which a group counts as saturated: 80 % of what it can pick up."""
    return 0.8 * pickup_capacity_per_hour(online)


def trend_inputs(daily: list[dict]) -> tuple[list[float], list[float | None], list[float | None]]:
    """(day offsets, CPU p95 per day, busiest-hour arrivals per day) for the forecast.

    The first and last days of a window are partial: they are left out so they do not bend the line.
    """
    full = daily[1:-1] if len(daily) > 2 else []
    offsets = [float(i + 1) for i in range(len(full))]
    return offsets, [row.get("cpu_p95") for row in full], [float(row.get("arrivals_peak") or 0) for row in full]


def _forecast_summary(days: list[float], values: list[float | None], *, threshold: float, first_day: str) -> dict:
    fc = analytics.forecast_saturation(days, values, threshold=threshold)
    if fc is None:
        return {"threshold": threshold, "first_day": first_day, "n": sum(v is not None for v in values), "status": "insufficient", "note": "fewer than 5 days of data: no trend"}

    def when(d: float | None) -> float | None:
        return None if d is None else round(d, 2)

    status = "no_crossing"
    if fc.saturated_now:
        status = "saturated"
    elif fc.day_crossing is not None:
        status = "crossing"
    elif fc.slope_per_day <= 0:
        status = "flat"
    return {
        "threshold": threshold,
        "first_day": first_day,
        "n": fc.n,
        "status": status,
        "slope_per_day": fc.slope_per_day,
        "intercept": fc.intercept,
        "day_crossing": when(fc.day_crossing),
        "day_earliest": when(fc.day_earliest),
        "day_latest": when(fc.day_latest),
        "horizon_days": fc.horizon_days,
        "last_day": max(d for d, v in zip(days, values) if v is not None),
        "note": fc.note,
    }


def measure_group_capacity(group: WorkerGroup, *, start: datetime, end: datetime) -> GroupCapacity:
    """One group's figures over [start, end) (unsaved; the caller attaches the run)."""
    members = list(HybridWorker.objects.filter(group=group, removed_at__isnull=True).values_list("pk", "status"))
    member_ids = [pk for pk, _ in members]
    online = sum(1 for _, status in members if status == WorkerStatus.ONLINE)

    util = list(
        UtilizationHourly.objects.filter(worker_id__in=member_ids, hour__gte=start, hour__lt=end).values_list("hour", "cpu_avg", "mem_avg")
    )
    job_hours = list(
        Job.objects.filter(group=group, started_at__gte=start, started_at__lt=end)
        .annotate(bucket=EpochBucket(F("started_at"), HOUR))
        .values("bucket")
        .annotate(n=Count("pk"), qs=Sum("queue_seconds"), qn=Count("queue_seconds"), ds=Sum("duration_seconds"), dn=Count("duration_seconds"))
        .values_list("bucket", "n", "qs", "qn", "ds", "dn")
    )
    queue = np.asarray(
        list(Job.objects.filter(group=group, started_at__gte=start, started_at__lt=end, queue_seconds__isnull=False).values_list("queue_seconds", flat=True)),
        dtype=float,
    )

    window_hours = max((end - start).total_seconds() / HOUR, 1e-9)
    first_bucket = math.floor(start.timestamp() / HOUR)
    last_bucket = math.ceil(end.timestamp() / HOUR)  # exclusive
    per_hour = {int(b): (n, qs, qn, ds, dn) for b, n, qs, qn, ds, dn in job_hours}
    counts = np.asarray([per_hour.get(b, (0,))[0] for b in range(first_bucket, last_bucket)], dtype=float)
    jobs = int(counts.sum())
    dur_sum = sum(row[3] or 0.0 for row in per_hour.values())
    dur_n = sum(row[4] for row in per_hour.values())

    # Hour of week (Monday 00 first): mean jobs started per such hour, mean queue delay.
    hw_hours = np.zeros(168)
    hw_jobs = np.zeros(168)
    hw_qsum = np.zeros(168)
    hw_qn = np.zeros(168)
    for b in range(first_bucket, last_bucket):
        ts = datetime.fromtimestamp(b * HOUR, tz=timezone.utc)
        slot = ts.weekday() * 24 + ts.hour
        hw_hours[slot] += 1
        n, qs, qn, _ds, _dn = per_hour.get(b, (0, 0.0, 0, 0.0, 0))
        hw_jobs[slot] += n
        hw_qsum[slot] += qs or 0.0
        hw_qn[slot] += qn
    heat_load = [round(float(j / h), 3) if h else None for j, h in zip(hw_jobs, hw_hours)]
    heat_queue = [round(float(s / n), 2) if n else None for s, n in zip(hw_qsum, hw_qn)]

    # Daily series for the trend: utilization p95 of hourly means, jobs, busiest hour's arrivals.
    start_day = start.astimezone(timezone.utc).date()
    day_cpu: dict[int, list[float]] = defaultdict(list)
    day_mem: dict[int, list[float]] = defaultdict(list)
    for hour, cpu, mem in util:
        d = (hour.astimezone(timezone.utc).date() - start_day).days
        if cpu is not None:
            day_cpu[d].append(cpu)
        if mem is not None:
            day_mem[d].append(mem)
    day_jobs: dict[int, int] = defaultdict(int)
    day_peak: dict[int, int] = defaultdict(int)
    for b, (n, *_rest) in per_hour.items():
        d = (datetime.fromtimestamp(b * HOUR, tz=timezone.utc).date() - start_day).days
        day_jobs[d] += n
        day_peak[d] = max(day_peak[d], n)
    n_days = (end.astimezone(timezone.utc).date() - start_day).days + 1
    daily = []
    for d in range(n_days):
        daily.append(
            {
                "day": (start_day + timedelta(days=d)).isoformat(),
                "cpu_p95": analytics.percentile(day_cpu.get(d, []), 95),
                "mem_p95": analytics.percentile(day_mem.get(d, []), 95),
                "jobs": day_jobs.get(d, 0),
                "arrivals_peak": day_peak.get(d, 0),
            }
        )
    offsets, cpu_series, load_series = trend_inputs(daily)
    forecast = {
        "cpu": _forecast_summary(offsets, cpu_series, threshold=cpu_threshold(), first_day=start_day.isoformat()),
    }
    if online:
        forecast["load"] = _forecast_summary(offsets, load_series, threshold=load_threshold(online), first_day=start_day.isoformat())
    else:
        forecast["load"] = {"status": "no_workers", "note": "no online worker: the group has no capacity at all", "threshold": 0.0}

    cpu_vals = [c for _, c, _ in util]
    mem_vals = [m for _, _, m in util]
    return GroupCapacity(
        group=group,
        members=len(members),
        online=online,
        cpu_p50=analytics.percentile(cpu_vals, 50),
        cpu_p95=analytics.percentile(cpu_vals, 95),
        mem_p50=analytics.percentile(mem_vals, 50),
        mem_p95=analytics.percentile(mem_vals, 95),
        jobs=jobs,
        arrival_rate_mean=jobs / window_hours,
        arrival_rate_peak=float(np.percentile(counts, 95)) if counts.size else 0.0,
        mean_service_seconds=(dur_sum / dur_n) if dur_n else None,
        queue_p50=float(np.percentile(queue, 50)) if queue.size else None,
        queue_p95=float(np.percentile(queue, 95)) if queue.size else None,
        concurrency_mean=dur_sum / (window_hours * HOUR),
        concurrency_peak=max(((row[3] or 0.0) / HOUR for row in per_hour.values()), default=0.0),
        heat_load=heat_load,
        heat_queue=heat_queue,
        daily=daily,
        forecast=forecast,
    )
