"""The group page and the worker page: one group with its members, their utilization and its latest
jobs; one worker with its utilization, signal spans, status history and its group's jobs."""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from workers.fleet.selectors.groups import GroupRow, group_rows
from workers.fleet.selectors.job_stats import job_stats_by_group
from workers.models import HybridWorker, Job, StatusChange, UtilizationHourly, UtilizationSample
from workers.rules import ranges, signals


@dataclass(frozen=True)
class UtilPoint:
    ts: datetime
    cpu: float | None
    mem: float | None


@dataclass(frozen=True)
class GroupDetail:
    group: GroupRow  # with its 24 h jobs
    members: list[HybridWorker]
    utilization: dict[int, list[UtilPoint]]
    recent_jobs: list[Job]


def group_detail(
    *, group_id: int, now: datetime, start: datetime | None = None, end: datetime | None = None, jobs_limit: int = 50
) -> GroupDetail | None:
    """A group (its row, with job stats over [start, end]), its members, their hourly CPU/memory over
    the same range (the last 24 h without ``start``), and its latest jobs. Five queries."""
    rows = group_rows(now=None, ids=[group_id])
    if not rows:
        return None
    since = start if start is not None else now - timedelta(hours=24)
    group = replace(rows[0], jobs=job_stats_by_group(since=since, group_ids=[group_id], until=end).get(group_id))
    members = list(HybridWorker.objects.filter(group_id=group_id, removed_at__isnull=True).order_by("name"))
    util: dict[int, list[UtilPoint]] = defaultdict(list)
    hourly = UtilizationHourly.objects.filter(
        worker__group_id=group_id, worker__removed_at__isnull=True, hour__gte=since
    )
    if end is not None:
        hourly = hourly.filter(hour__lte=end)
    for wid, hour, cpu, mem in hourly.order_by("worker_id", "hour").values_list("worker_id", "hour", "cpu_avg", "mem_avg"):
        util[wid].append(UtilPoint(hour, cpu, mem))
    jobs = list(Job.objects.filter(group_id=group_id).order_by("-created_at")[:jobs_limit])
    return GroupDetail(group=group, members=members, utilization=dict(util), recent_jobs=jobs)


WORKER_WINDOWS = {"24h": timedelta(hours=24), "7d": timedelta(days=7)}


@dataclass(frozen=True)
class WorkerDetail:
    worker: HybridWorker
    window: str
    utilization: list[UtilPoint]
    utilization_resolution: str
    sample_times: list[datetime]
    changes: list[StatusChange]
    group_jobs: list[Job]
    group_size: int
    jobs_attributed: bool
    # Signal source ("automation", "heartbeat") -> observed spans (start, end) in the window, oldest
    # first, clipped to [since, now]; a source with nothing in the window maps to [].
    spans: dict[str, list[tuple[datetime, datetime]]]


def worker_detail(
    *, worker_id: int, now: datetime, window: str = "24h", start: datetime | None = None, end: datetime | None = None,
    hourly: bool | None = None, jobs_limit: int = 50,
) -> WorkerDetail | None:
    """One worker: CPU/memory over [start, end], signal presence, its Automation/Heartbeat signal spans,
    status history, its group's jobs. Six queries.

    Without ``start`` the range is the named ``window`` ending now. Raw one-minute samples up to a
    day (``workers.rules.ranges.resolution_for``), the hourly rollup beyond, unless ``hourly`` says
    otherwise (what a page can afford at fleet scale). Signal spans come from the ``(worker, source,
    end_at)`` index: those still open at ``start``.
    """
    worker = HybridWorker.objects.select_related("group", "group__account").filter(pk=worker_id).first()
    if worker is None:
        return None
    since = start if start is not None else now - WORKER_WINDOWS[window]
    until = end if end is not None else now
    if hourly is None:
        hourly = ranges.resolution_for(until - since) == ranges.HOURLY
    bounded = end is not None  # a preset ends now: no upper bound (the same rows as ever)
    if not hourly:
        samples = UtilizationSample.objects.filter(worker_id=worker_id, ts__gte=since)
        if bounded:
            samples = samples.filter(ts__lte=until)
        util = [UtilPoint(ts, cpu, mem) for ts, cpu, mem in samples.order_by("ts").values_list("ts", "cpu_pct", "mem_pct")]
        resolution = ranges.RESOLUTION_TEXT[ranges.RAW]
    else:
        hours = UtilizationHourly.objects.filter(worker_id=worker_id, hour__gte=since)
        if bounded:
            hours = hours.filter(hour__lte=until)
        util = [UtilPoint(h, c, m) for h, c, m in hours.order_by("hour").values_list("hour", "cpu_avg", "mem_avg")]
        resolution = ranges.RESOLUTION_TEXT[ranges.HOURLY]
    sample_times = [p.ts for p in util]
    status_changes = StatusChange.objects.filter(worker_id=worker_id, created_at__gte=since)
    if bounded:
        status_changes = status_changes.filter(created_at__lte=until)
    changes = list(status_changes.order_by("created_at"))
    spans: dict[str, list[tuple[datetime, datetime]]] = {signals.AUTOMATION: [], signals.HEARTBEAT: []}
    span_rows = (
        worker.signal_spans.filter(end_at__gte=since, start_at__lte=until)
        .order_by("source", "start_at")
        .values_list("source", "start_at", "end_at")
    )
    for source, span_start, span_end in span_rows:
        spans.setdefault(source, []).append((max(span_start, since), min(span_end, until)))
    group_size = HybridWorker.objects.filter(group_id=worker.group_id, removed_at__isnull=True).count()
    jobs = list(Job.objects.filter(group_id=worker.group_id).order_by("-created_at")[:jobs_limit])
    return WorkerDetail(
        worker=worker, window=window, utilization=util, utilization_resolution=resolution, sample_times=sample_times,
        changes=changes, group_jobs=jobs, group_size=group_size, jobs_attributed=group_size == 1, spans=spans,
    )
