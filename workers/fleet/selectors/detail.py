"""The group page and the worker page: one group with its members, their utilization and its latest
jobs; one worker with its utilization, signal spans, status history and its group's jobs."""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from workers.fleet.selectors.groups import GroupRow, group_rows
from workers.fleet.selectors.job_stats import job_stats_by_group
from workers.models import HybridWorker, Job, StatusChange, UtilizationHourly, UtilizationSample
from workers.rules import signals


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


def group_detail(*, group_id: int, now: datetime, jobs_limit: int = 50) -> GroupDetail | None:
    """A group (its row, with 24 h job stats), its members, their 24 h hourly CPU/memory, and its
    latest jobs. Five queries."""
    rows = group_rows(now=None, ids=[group_id])
    if not rows:
        return None
    since = now - timedelta(hours=24)
    group = replace(rows[0], jobs=job_stats_by_group(since=since, group_ids=[group_id]).get(group_id))
    members = list(HybridWorker.objects.filter(group_id=group_id, removed_at__isnull=True).order_by("name"))
    util: dict[int, list[UtilPoint]] = defaultdict(list)
    hourly = (
        UtilizationHourly.objects.filter(worker__group_id=group_id, worker__removed_at__isnull=True, hour__gte=since)
        .order_by("worker_id", "hour")
        .values_list("worker_id", "hour", "cpu_avg", "mem_avg")
    )
    for wid, hour, cpu, mem in hourly:
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


def worker_detail(*, worker_id: int, now: datetime, window: str = "24h", jobs_limit: int = 50) -> WorkerDetail | None:
    """One worker: CPU/memory over the window, signal presence, its Automation/Heartbeat signal spans,
    status history, its group's jobs. Six queries.

    24 h reads one-minute samples; 7 d reads the hourly rollup (what a page can afford at fleet scale).
    Signal spans come from the ``(worker, source, end_at)`` index: those still open at ``since``.
    """
    worker = HybridWorker.objects.select_related("group", "group__account").filter(pk=worker_id).first()
    if worker is None:
        return None
    since = now - WORKER_WINDOWS[window]
    if window == "24h":
        rows = list(
            UtilizationSample.objects.filter(worker_id=worker_id, ts__gte=since).order_by("ts").values_list("ts", "cpu_pct", "mem_pct")
        )
        util = [UtilPoint(ts, cpu, mem) for ts, cpu, mem in rows]
        resolution = "1-minute samples"
    else:
        hourly = UtilizationHourly.objects.filter(worker_id=worker_id, hour__gte=since).order_by("hour")
        util = [UtilPoint(h, c, m) for h, c, m in hourly.values_list("hour", "cpu_avg", "mem_avg")]
        resolution = "hourly averages"
    sample_times = [p.ts for p in util]
    changes = list(StatusChange.objects.filter(worker_id=worker_id, created_at__gte=since).order_by("created_at"))
    spans: dict[str, list[tuple[datetime, datetime]]] = {signals.AUTOMATION: [], signals.HEARTBEAT: []}
    span_rows = (
        worker.signal_spans.filter(end_at__gte=since, start_at__lte=now)
        .order_by("source", "start_at")
        .values_list("source", "start_at", "end_at")
    )
    for source, start, end in span_rows:
        spans.setdefault(source, []).append((max(start, since), min(end, now)))
    group_size = HybridWorker.objects.filter(group_id=worker.group_id, removed_at__isnull=True).count()
    jobs = list(Job.objects.filter(group_id=worker.group_id).order_by("-created_at")[:jobs_limit])
    return WorkerDetail(
        worker=worker, window=window, utilization=util, utilization_resolution=resolution, sample_times=sample_times,
        changes=changes, group_jobs=jobs, group_size=group_size, jobs_attributed=group_size == 1, spans=spans,
    )
