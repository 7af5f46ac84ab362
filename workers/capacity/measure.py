"""Measure each group's load, utilization and saturation trend for the capacity-planning page.

``measure_group_capacity`` returns an UNSAVED ``GroupCapacity`` row; ``workers.capacity.correlation.
compute_findings`` saves the rows of every group with the run in one transaction. It only reads,
so running it twice gives the same figures for the same data and window.

Sources: ``UtilizationHourly`` (the hourly rollup: percentiles are of hourly means per member, not
of minutes) and ``Job`` rows aggregated per hour in SQL (one row per hour, not per job), plus the
group's queue delays for p50/p95. When a group counts as saturated, and how its forecast is
summarised, are pure rules (``workers.rules.saturation``).

Every rate divides by the covered span (``fleet_data_start``): from the first job or utilization
hour the fleet has in the window to the window's end (polls run up to now, so a quiet last hour is
data, a stretch before the first data is not). Hours before it are missing: they count in no mean,
percentile or heat-map cell, and days before it have ``None`` in the daily series.
"""
from __future__ import annotations

import math
from collections import defaultdict
from datetime import UTC, datetime, timedelta

import numpy as np
from django.db.models import Count, F, Min, Sum

from workers.db import EpochBucket
from workers.models import GroupCapacity, HybridWorker, Job, UtilizationHourly, WorkerGroup, WorkerStatus
from workers.rules import saturation
from workers.rules.health import is_v1_worker
from workers.rules.pressure import PressureLimits
from workers.rules.stats import percentile

HOUR = saturation.HOUR_SECONDS


def fleet_data_start(start: datetime, end: datetime) -> datetime | None:
    """The first data the fleet has in [start, end): the earliest job start on a group or utilization
    hour (two index reads), or None without any. The covered span runs from there to ``end``."""
    first_job = Job.objects.filter(group__isnull=False, started_at__gte=start, started_at__lt=end).aggregate(m=Min("started_at"))["m"]
    first_util = UtilizationHourly.objects.filter(hour__gte=start, hour__lt=end).aggregate(m=Min("hour"))["m"]
    found = [t for t in (first_job, first_util) if t is not None]
    return min(found) if found else None


def measure_group_capacity(
    group: WorkerGroup, *, start: datetime, end: datetime, data_start: datetime | None = None, known_start: bool = False
) -> GroupCapacity:
    """One group's figures over [start, end) (unsaved; the caller attaches the run).

    ``data_start`` is the first data the fleet holds in the window (``fleet_data_start``; looked up
    when not given and ``known_start`` is False): rates, peaks, heat maps and daily series cover only
    [data_start, end), never hours before we had any data.
    """
    if data_start is None and not known_start:
        data_start = fleet_data_start(start, end)
    members = list(HybridWorker.objects.filter(group=group, removed_at__isnull=True).values_list("pk", "status", "worker_type"))
    member_ids = [pk for pk, _, _ in members]
    # V1 (agent-based, retired) members never count as capacity: their jobs no longer run.
    online = sum(1 for _, status, kind in members if status == WorkerStatus.ONLINE and not is_v1_worker(kind))

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
    queue = list(
        Job.objects.filter(group=group, started_at__gte=start, started_at__lt=end, queue_seconds__isnull=False).values_list("queue_seconds", flat=True)
    )

    # From the hour holding the first data: the hourly buckets are whole hours.
    covered_from = max(start, data_start.replace(minute=0, second=0, microsecond=0)) if data_start is not None else end
    window_hours = max((end - covered_from).total_seconds() / HOUR, 1e-9)
    first_bucket = math.floor(covered_from.timestamp() / HOUR)
    last_bucket = math.ceil(end.timestamp() / HOUR) if data_start is not None else first_bucket  # exclusive
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
        ts = datetime.fromtimestamp(b * HOUR, tz=UTC)
        slot = ts.weekday() * 24 + ts.hour
        hw_hours[slot] += 1
        n, qs, qn, _ds, _dn = per_hour.get(b, (0, 0.0, 0, 0.0, 0))
        hw_jobs[slot] += n
        hw_qsum[slot] += qs or 0.0
        hw_qn[slot] += qn
    heat_load = [round(float(j / h), 3) if h else None for j, h in zip(hw_jobs, hw_hours)]
    heat_queue = [round(float(s / n), 2) if n else None for s, n in zip(hw_qsum, hw_qn)]

    # Daily series for the trend: utilization p95 of hourly means, jobs, busiest hour's arrivals.
    start_day = start.astimezone(UTC).date()
    day_cpu: dict[int, list[float]] = defaultdict(list)
    day_mem: dict[int, list[float]] = defaultdict(list)
    for hour, cpu, mem in util:
        d = (hour.astimezone(UTC).date() - start_day).days
        if cpu is not None:
            day_cpu[d].append(cpu)
        if mem is not None:
            day_mem[d].append(mem)
    day_jobs: dict[int, int] = defaultdict(int)
    day_peak: dict[int, int] = defaultdict(int)
    for b, (n, *_rest) in per_hour.items():
        d = (datetime.fromtimestamp(b * HOUR, tz=UTC).date() - start_day).days
        day_jobs[d] += n
        day_peak[d] = max(day_peak[d], n)
    n_days = (end.astimezone(UTC).date() - start_day).days + 1
    first_covered_day = (covered_from.astimezone(UTC).date() - start_day).days
    daily = []
    for d in range(n_days):
        covered = d >= first_covered_day and data_start is not None
        daily.append(
            {
                "day": (start_day + timedelta(days=d)).isoformat(),
                "cpu_p95": percentile(day_cpu.get(d, []), 95),
                "mem_p95": percentile(day_mem.get(d, []), 95),
                "jobs": day_jobs.get(d, 0) if covered else None,
                "arrivals_peak": day_peak.get(d, 0) if covered else None,
            }
        )
    offsets, cpu_series, load_series = saturation.trend_inputs(daily)
    cpu_limit = PressureLimits.from_settings().cpu_pct
    forecast = {
        "cpu": saturation.forecast_summary(offsets, cpu_series, threshold=cpu_limit, first_day=start_day.isoformat()),
    }
    if online:
        forecast["load"] = saturation.forecast_summary(
            offsets, load_series, threshold=saturation.load_threshold(online), first_day=start_day.isoformat()
        )
    else:
        forecast["load"] = {"status": "no_workers", "note": "no online worker: the group has no capacity at all", "threshold": 0.0}

    cpu_vals = [c for _, c, _ in util]
    mem_vals = [m for _, _, m in util]
    arrival_rate_peak = percentile(counts.tolist(), 95) if counts.size else 0.0
    assert arrival_rate_peak is not None  # finite hourly job counts: a non-empty array always has a p95
    return GroupCapacity(
        group=group,
        members=len(members),
        online=online,
        cpu_p50=percentile(cpu_vals, 50),
        cpu_p95=percentile(cpu_vals, 95),
        mem_p50=percentile(mem_vals, 50),
        mem_p95=percentile(mem_vals, 95),
        jobs=jobs,
        arrival_rate_mean=jobs / window_hours,
        arrival_rate_peak=arrival_rate_peak,
        mean_service_seconds=(dur_sum / dur_n) if dur_n else None,
        queue_p50=percentile(queue, 50),
        queue_p95=percentile(queue, 95),
        concurrency_mean=dur_sum / (window_hours * HOUR),
        concurrency_peak=max(((row[3] or 0.0) / HOUR for row in per_hour.values()), default=0.0),
        heat_load=heat_load,
        heat_queue=heat_queue,
        daily=daily,
        forecast=forecast,
    )
