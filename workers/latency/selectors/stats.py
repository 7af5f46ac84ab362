"""Reads for the latency page and the latency API: percentiles, counts and trends per scope.

Windows are resolved by ``workers.latency.selectors.windows``: the 1 h window is computed exactly
from raw Job rows, longer ones merge JobHourly/JobDaily rows (``workers.rules.job_rollups``).
Jobs are placed by creation time. Percentiles count only jobs that started (queue delay) or ended
(duration); jobs still queued are reported separately with their current age, never dropped.
Every function here issues a fixed number of queries, independent of the number of groups or jobs.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import QuerySet

from workers.latency.selectors.jobs import DEFAULT_LIST_LIMIT, QueuedNow, hybrid_jobs, queued_now
from workers.latency.selectors.windows import WindowSpan, resolve_window, rollups_in
from workers.models import RollupScope
from workers.rules import job_rollups, latency
from workers.rules.job_rollups import Accumulator
from workers.rules.stats import percentile


@dataclass(frozen=True)
class Percentiles:
    """p50, p95 and p99 of one measure (seconds), None without data."""

    p50: float | None
    p95: float | None
    p99: float | None

    def as_dict(self) -> dict[str, float | None]:
        return {"p50": _round(self.p50), "p95": _round(self.p95), "p99": _round(self.p99)}


@dataclass(frozen=True)
class LatencyStats:
    """Counts and latency figures of one scope (the fleet, a group, a runbook or a worker) in a window."""

    scope: str
    key: str
    label: str
    account: str
    group_id: int | None
    worker_id: int | None
    runbook: str
    jobs: int
    counts: dict[str, int]
    not_available: int
    queue: Percentiles
    duration: Percentiles
    queue_n: int
    duration_n: int
    queue_mean: float | None
    duration_mean: float | None
    queue_max: float | None
    duration_max: float | None
    queue_hist: tuple[int, ...]
    duration_hist: tuple[int, ...]
    exact: bool


@dataclass(frozen=True)
class TrendPoint:
    """One step of the latency trend: jobs and percentiles of the jobs created in it."""

    start: datetime
    jobs: int
    queue: Percentiles
    duration: Percentiles


@dataclass(frozen=True)
class LatencyReport:
    """Everything the latency page shows for one window."""

    span: WindowSpan
    summary: LatencyStats
    by_group: list[LatencyStats]
    by_runbook: list[LatencyStats]
    by_worker: list[LatencyStats]
    trend: list[TrendPoint]
    queued: QueuedNow


# --- building stats -------------------------------------------------------------------------------

def _round(value: float | None) -> float | None:
    return None if value is None else round(float(value), 3)


def _hist_percentiles(hist: Sequence[int], max_value: float | None) -> Percentiles:
    values = [latency.percentile_from_histogram(hist, q, max_value=max_value) for q in latency.PERCENTILES]
    return Percentiles(*values)


def _exact_percentiles(values: Sequence[float]) -> Percentiles:
    return Percentiles(*(percentile(values, q) for q in latency.PERCENTILES))


def _stats(acc: Accumulator, *, label: str, account: str = "", raw: tuple[list[float], list[float]] | None = None) -> LatencyStats:
    if raw is not None:
        queue, duration = _exact_percentiles(raw[0]), _exact_percentiles(raw[1])
    else:
        queue = _hist_percentiles(acc.queue_hist, acc.queue_max)
        duration = _hist_percentiles(acc.duration_hist, acc.duration_max)
    return LatencyStats(
        scope=acc.scope, key=acc.key, label=label, account=account, group_id=acc.group_id, worker_id=acc.worker_id,
        runbook=acc.runbook, jobs=acc.jobs, counts=acc.counts(), not_available=acc.not_available,
        queue=queue, duration=duration, queue_n=acc.queue_count, duration_n=acc.duration_count,
        queue_mean=acc.queue_sum / acc.queue_count if acc.queue_count else None,
        duration_mean=acc.duration_sum / acc.duration_count if acc.duration_count else None,
        queue_max=acc.queue_max, duration_max=acc.duration_max,
        queue_hist=tuple(acc.queue_hist), duration_hist=tuple(acc.duration_hist), exact=raw is not None,
    )


def _empty(scope: str = RollupScope.FLEET.value, key: str = "fleet", label: str = "All hybrid jobs") -> LatencyStats:
    return _stats(Accumulator(scope=scope, key=key), label=label)


# --- reading rollup rows --------------------------------------------------------------------------

def _rollup_rows(qs: QuerySet, *extra: str) -> list[dict]:
    return list(
        qs.values(*job_rollups.KEY_FIELDS, *job_rollups.COUNT_FIELDS, *job_rollups.SUM_FIELDS, *job_rollups.MAX_FIELDS,
                  *job_rollups.HIST_FIELDS, *extra)
    )


def _fleet_series(span: WindowSpan, *, key: str) -> tuple[LatencyStats, list[TrendPoint]]:
    """Summary and trend of one rollup key (fleet, g:<id>, r:<runbook>) from ONE query."""
    in_window, period = rollups_in(span, trend=True)
    rows = _rollup_rows(in_window.filter(key=key), period)
    total = job_rollups.merge_rows(rows, lambda r: "all")
    by_period = job_rollups.merge_rows(rows, lambda r: r[period])
    summary = _stats(total["all"][0], label="") if total else None
    trend = [
        TrendPoint(start=start, jobs=acc.jobs, queue=_hist_percentiles(acc.queue_hist, acc.queue_max),
                   duration=_hist_percentiles(acc.duration_hist, acc.duration_max))
        for start, (acc, _row) in sorted(by_period.items())
    ]
    return (summary or _empty(), trend)


def _label(row: dict) -> tuple[str, str]:
    scope = row["scope"]
    if scope == RollupScope.RUNBOOK:
        return (row["runbook"] or "(no runbook name)", "")
    if scope == RollupScope.WORKER:
        return (row.get("worker__name") or f"worker {row['worker_id']}", row.get("group__account__name") or "")
    return (row.get("group__name") or f"group {row['group_id']}", row.get("group__account__name") or "")


def _sorted_breakdown(stats: Iterable[LatencyStats]) -> list[LatencyStats]:
    # Worst first: highest p95 queue delay, then most jobs.
    return sorted(stats, key=lambda s: (-(s.queue.p95 or -1), -s.jobs, s.label))


# --- raw rows (1h, and group+runbook cuts) --------------------------------------------------------

_RAW_LABEL_FIELDS = ("group__name", "group__account__name", "worker__name")


def _raw_report(
    span: WindowSpan, *, group_id: int | None = None, runbook: str | None = None
) -> tuple[dict[str, LatencyStats], list[TrendPoint]]:
    """Exact stats per rollup key ("fleet", "g:<id>", ...) from raw rows, and the trend per 5 min. One query."""
    qs = hybrid_jobs().filter(created_at__gte=span.start, created_at__lte=span.end)
    if group_id is not None:
        qs = qs.filter(group_id=group_id)
    if runbook is not None:
        qs = qs.filter(runbook=runbook)
    rows = list(qs.values_list(*job_rollups.JOB_FIELDS, *_RAW_LABEL_FIELDS))
    job_rows = [r[: len(job_rollups.JOB_FIELDS)] for r in rows]
    accs = job_rollups.accumulate_jobs(job_rows, lambda _t: span.start)
    raw_values: dict[str, tuple[list[float], list[float]]] = {}
    labels: dict[str, dict] = {}
    for row in rows:
        group_id_, worker_id, runbook_, _created, _status, queue_s, duration_s, _exc, gname, aname, wname = row
        for scope, key, _g, _w, _rb in job_rollups.scope_keys(group_id_, runbook_, worker_id):
            q, d = raw_values.setdefault(key, ([], []))
            if queue_s is not None:
                q.append(max(0.0, queue_s))
            if duration_s is not None:
                d.append(max(0.0, duration_s))
            labels.setdefault(key, {"scope": scope, "group_id": group_id_, "worker_id": worker_id, "runbook": runbook_,
                                    "group__name": gname, "group__account__name": aname, "worker__name": wname})
    stats: dict[str, LatencyStats] = {}
    for (_start, key), acc in accs.items():
        name, account = _label(labels[key])
        stats[key] = _stats(acc, label=name, account=account, raw=raw_values.get(key, ([], [])))
    step = timedelta(minutes=5)
    buckets = job_rollups.accumulate_jobs(job_rows, lambda t: span.start + step * int((t - span.start) / step))
    trend = [
        TrendPoint(start=start, jobs=acc.jobs, queue=_hist_percentiles(acc.queue_hist, acc.queue_max),
                   duration=_hist_percentiles(acc.duration_hist, acc.duration_max))
        for (start, key), acc in sorted(buckets.items()) if key == "fleet"
    ]
    return stats, trend


# --- public reads ---------------------------------------------------------------------------------

def latency_summary(window: str, *, now: datetime, group_id: int | None = None, runbook: str | None = None) -> tuple[WindowSpan, LatencyStats]:
    """Percentiles and counts for the fleet, one group, one runbook, or both (API and page header)."""
    span = resolve_window(window, now=now)
    if span.exact or (group_id is not None and runbook is not None):
        # No rollup holds a group+runbook cut: one group's rows are few (index job_group_created).
        stats, _trend = _raw_report(span, group_id=group_id, runbook=runbook)
        return span, stats.get("fleet") or _empty()
    key = f"g:{group_id}" if group_id is not None else (f"r:{runbook}" if runbook is not None else "fleet")
    summary, _trend = _fleet_series(span, key=key)
    return span, summary


def latency_report(window: str, *, now: datetime, list_limit: int | None = DEFAULT_LIST_LIMIT) -> LatencyReport:
    """Everything the latency page shows. Four queries for any window and fleet size."""
    span = resolve_window(window, now=now)
    if span.exact:
        stats, trend = _raw_report(span)
        summary = stats.get("fleet") or _empty()
        by_scope: dict[str, list[LatencyStats]] = {"group": [], "runbook": [], "worker": []}
        for s in stats.values():
            if s.scope in by_scope:
                by_scope[s.scope].append(s)
        breakdown = by_scope
    else:
        summary, trend = _fleet_series(span, key="fleet")
        in_window, _period = rollups_in(span)
        rows = _rollup_rows(
            in_window.filter(scope__in=[RollupScope.GROUP, RollupScope.RUNBOOK, RollupScope.WORKER]), *_RAW_LABEL_FIELDS
        )
        breakdown = {"group": [], "runbook": [], "worker": []}
        for key, (acc, row) in job_rollups.merge_rows(rows, lambda r: r["key"]).items():
            name, account = _label(row)
            breakdown[row["scope"]].append(_stats(acc, label=name, account=account))
    return LatencyReport(
        span=span,
        summary=summary,
        by_group=_sorted_breakdown(breakdown["group"]),
        by_runbook=_sorted_breakdown(breakdown["runbook"]),
        by_worker=_sorted_breakdown(breakdown["worker"]),
        trend=trend,
        queued=queued_now(now=now, limit=list_limit),
    )


