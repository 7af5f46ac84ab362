"""Reads for the latency page and the latency API: percentiles, counts and trends per scope.

Windows are resolved by ``workers.latency.selectors.windows``: the 1 h window is computed exactly
from raw Job rows; longer ones merge JobHourly/JobDaily rows where the rollups cover the window and
fold raw rows the same way elsewhere (``workers.latency.selectors.coverage``), so their percentiles
come from the same histograms whether or not a rollup has run. The trend has one point per step of
the whole window: a step before the first job we hold has ``jobs=None`` (a gap, not a zero).
Jobs are placed by creation time. Percentiles count only jobs that started (queue delay) or ended
(duration); jobs still queued are reported separately with their current age, never dropped.
Every function here issues a fixed number of queries, independent of the number of groups or jobs.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from workers.fleet.selectors.job_stats import FLEET_JOB_STATS_MAX_AGE, per_jobs_poll
from workers.latency.selectors.coverage import LABEL_FIELDS, WindowPlan, plan_window, raw_rows, window_rows
from workers.latency.selectors.jobs import DEFAULT_LIST_LIMIT, QueuedNow, hybrid_jobs, queued_now
from workers.latency.selectors.windows import WindowSpan, resolve_window
from workers.models import RollupScope
from workers.rules import job_rollups, latency
from workers.rules.coverage import DataSpan
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
    """One step of the latency trend: jobs and percentiles of the jobs created in it (``jobs`` is
    None for a step before the first data we hold: missing, not zero)."""

    start: datetime
    jobs: int | None
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
    data: DataSpan | None = None


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

_STEPS = {"5 min": timedelta(minutes=5), "hour": timedelta(hours=1), "day": timedelta(days=1)}


def _trend_starts(span: WindowSpan) -> list[datetime]:
    """Every step of the window, from the step holding its start."""
    step = _STEPS[span.trend_step]
    if span.trend_step == "5 min":
        first = span.start
    else:
        first = latency.floor_day(span.start) if span.trend_step == "day" else latency.floor_hour(span.start)
    starts = []
    while first <= span.end:
        starts.append(first)
        first += step
    return starts


def filled_trend(span: WindowSpan, data: DataSpan, by_start: dict[datetime, Accumulator]) -> list[TrendPoint]:
    """One point per step of the window; steps ending before the first data are missing (None)."""
    step = _STEPS[span.trend_step]
    points = []
    for start in _trend_starts(span):
        acc = by_start.get(start)
        missing = data.first is None or start + step <= data.first
        if acc is None or missing or not acc.jobs:
            points.append(TrendPoint(start=start, jobs=None if missing else 0, queue=Percentiles(None, None, None),
                                     duration=Percentiles(None, None, None)))
            continue
        points.append(TrendPoint(start=start, jobs=acc.jobs, queue=_hist_percentiles(acc.queue_hist, acc.queue_max),
                                 duration=_hist_percentiles(acc.duration_hist, acc.duration_max)))
    return points


def _fleet_series(
    plan: WindowPlan, *, key: str, group_id: int | None = None, runbook: str | None = None, raw: list[dict] | None = None,
) -> tuple[LatencyStats, list[TrendPoint]]:
    """Summary and trend of one key (fleet, g:<id>, r:<runbook>) of the window: at most three queries
    (two when ``raw`` brings the raw rows, folded per trend step)."""
    span = plan.span
    rows = window_rows(plan, by_day=span.trend_step == "day", key=key, group_id=group_id, runbook=runbook, raw=raw)
    total = job_rollups.merge_rows(rows, lambda r: "all")
    by_period = job_rollups.merge_rows(rows, lambda r: r["period"])
    summary = _stats(total["all"][0], label="") if total else None
    trend = filled_trend(span, plan.data, {start: acc for start, (acc, _row) in by_period.items()})
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

_RAW_LABEL_FIELDS = LABEL_FIELDS


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
    first = min((r[3] for r in job_rows), default=None)
    data = DataSpan.of(span.key, span.start, span.end, first, span.end if first is not None else None)
    trend = filled_trend(span, data, {start: acc for (start, key), acc in buckets.items() if key == "fleet"})
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
    summary, _trend = _fleet_series(plan_window(span), key=key, group_id=group_id, runbook=runbook)
    return span, summary


# A named window's report is reused for at most this long (seconds) while no jobs poll has landed,
# so the window slides by at most this much; the 1 h window, exact from raw rows, by at most a minute.
REPORT_MAX_AGE = {"1h": 60}
# Windows of a week or more are reused across jobs polls too, for up to FLEET_JOB_STATS_MAX_AGE: a
# few minutes of new jobs barely move their figures, and recomputing them after every poll (each
# minute per account) would cost a capacity reviewer a slow page at every click.
LONG_WINDOWS = frozenset({"7d", "30d"})


def latency_report(
    window: str | WindowSpan, *, now: datetime, list_limit: int | None = DEFAULT_LIST_LIMIT, shared: bool = False,
) -> LatencyReport:
    """Everything the latency page shows, for a named window or any resolved span. A fixed number of
    queries (at most ten) for any window and fleet size.

    With ``shared`` (the page), a named window's figures are computed at most once per jobs poll
    (the 7 d and 30 d windows: at most once per ``FLEET_JOB_STATS_MAX_AGE`` seconds) and shared by every
    view (``per_jobs_poll``: the job rows change only when a poll lands); the page shows the span the
    figures cover, and the jobs queued now are always read afresh. A custom range is always computed.
    """
    span = window if isinstance(window, WindowSpan) else resolve_window(window, now=now)
    if shared and span.named:
        core = per_jobs_poll(
            f"latency-report-{span.key}", lambda: _report(span), now=now,
            max_age_seconds=REPORT_MAX_AGE.get(span.key, FLEET_JOB_STATS_MAX_AGE),
            version=() if span.key in LONG_WINDOWS else None,
        )
    else:
        core = _report(span)
    return replace(core, queued=queued_now(now=now, limit=list_limit))


_NO_QUEUED = QueuedNow(count=0, oldest_seconds=None, jobs=[])


def _report(span: WindowSpan) -> LatencyReport:
    """The report of ``span`` without the jobs queued now (``latency_report`` adds them)."""
    data: DataSpan
    if span.exact:
        stats, trend = _raw_report(span)
        summary = stats.get("fleet") or _empty()
        by_scope: dict[str, list[LatencyStats]] = {"group": [], "runbook": [], "worker": []}
        for s in stats.values():
            if s.scope in by_scope:
                by_scope[s.scope].append(s)
        breakdown = by_scope
        first = min((p.start for p in trend if p.jobs), default=None)
        data = DataSpan.of(span.key, span.start, span.end, first, span.end if first is not None else None)
    else:
        plan = plan_window(span)
        data = plan.data
        # The raw stretches folded once for both reads, per trend step (the tables merge per key only).
        raw = raw_rows(plan, by_day=span.trend_step == "day", labels=True)
        summary, trend = _fleet_series(plan, key="fleet", raw=[r for r in raw if r["key"] == "fleet"])
        rows = window_rows(plan, by_day=span.source == "daily", labels=True, periods=False,
                           scopes=(RollupScope.GROUP.value, RollupScope.RUNBOOK.value, RollupScope.WORKER.value),
                           raw=[r for r in raw if r["key"] != "fleet"])
        breakdown = {"group": [], "runbook": [], "worker": []}
        for acc, row in job_rollups.merge_rows(rows, lambda r: r["key"]).values():
            name, account = _label(row)
            breakdown[row["scope"]].append(_stats(acc, label=name, account=account))
    return LatencyReport(
        span=span,
        summary=summary,
        by_group=_sorted_breakdown(breakdown["group"]),
        by_runbook=_sorted_breakdown(breakdown["runbook"]),
        by_worker=_sorted_breakdown(breakdown["worker"]),
        trend=trend,
        queued=_NO_QUEUED,
        data=data,
    )
