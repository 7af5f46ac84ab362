"""Reads for the latency and timeouts pages, the latency API and the overview's timeout counts.

Windows: ``1h`` is computed exactly from raw Job rows (a few thousand rows at most); ``24h`` and
``7d`` read JobHourly (trend per hour), ``30d`` reads JobDaily (trend per day); tables of 7d/30d read
JobDaily. Rollup windows start on a whole hour (24h) or a whole UTC day (7d, 30d), so they cover at
least the nominal window; ``WindowSpan`` states the exact start so every page can say it.

Jobs are placed by creation time. Percentiles count only jobs that started (queue delay) or ended
(duration); jobs still queued are reported separately with their current age, never dropped.
Every function here issues a fixed number of queries, independent of the number of groups or jobs.
"""
from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from django.conf import settings
from django.db.models import Count, F, Min, Q, QuerySet, Sum

from workers.rules import latency
from workers.models import JobDaily, JobHourly, RollupScope, RunbookThreshold, WorkerGroup
from workers.fleet.selectors import per_jobs_poll
from workers.latency.rollups import JOB_FIELDS, Accumulator, accumulate_jobs, hybrid_jobs, scope_keys

DEFAULT_LIST_LIMIT = 200
_COUNT_FIELDS = ("jobs", "completed", "failed", "stopped", "suspended", "other", "not_available", "queue_count", "duration_count")
_SUM_FIELDS = ("queue_sum", "duration_sum")
_MAX_FIELDS = ("queue_max", "duration_max")


class WindowError(ValueError):
    """An unknown window name (the message is safe to show)."""


class GroupNotFound(LookupError):
    pass


class AmbiguousGroup(ValueError):
    pass


@dataclass(frozen=True)
class WindowSpan:
    key: str
    start: datetime
    end: datetime
    source: str  # "raw" | "hourly" | "daily"

    @property
    def exact(self) -> bool:
        return self.source == "raw"

    @property
    def resolution(self) -> str:
        return latency.EXACT_TEXT if self.exact else latency.RESOLUTION_TEXT

    @property
    def label(self) -> str:
        return latency.WINDOW_LABELS[self.key]

    @property
    def trend_step(self) -> str:
        return {"raw": "5 min", "hourly": "hour", "daily": "day"}[self.source] if self.key != "7d" else "hour"


def parse_window(raw: str | None, default: str = "24h") -> str:
    value = (raw or default).strip()
    if value not in latency.WINDOWS:
        raise WindowError(f"window must be one of {', '.join(latency.WINDOWS)}")
    return value


def resolve_window(key: str, *, now: datetime) -> WindowSpan:
    """The exact time span and data source of a named window."""
    key = parse_window(key)
    length = latency.WINDOWS[key]
    if key == "1h":
        return WindowSpan(key, now - length, now, "raw")
    if key == "24h":
        return WindowSpan(key, latency.floor_hour(now - length), now, "hourly")
    return WindowSpan(key, latency.floor_day(now - length), now, "daily")


@dataclass(frozen=True)
class Percentiles:
    p50: float | None
    p95: float | None
    p99: float | None

    def as_dict(self) -> dict[str, float | None]:
        return {"p50": _round(self.p50), "p95": _round(self.p95), "p99": _round(self.p99)}


@dataclass(frozen=True)
class LatencyStats:
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
    start: datetime
    jobs: int
    queue: Percentiles
    duration: Percentiles


@dataclass(frozen=True)
class JobRow:
    """One job in a table, with the derived numbers the table shows (seconds)."""

    job_id: str
    runbook: str
    status: str
    group: str
    account: str
    created_at: datetime
    started_at: datetime | None
    ended_at: datetime | None
    queue_seconds: float | None
    duration_seconds: float | None
    exception: str = ""
    age_seconds: float | None = None
    kind: str = ""
    threshold_seconds: int | None = None


@dataclass(frozen=True)
class QueuedNow:
    count: int
    oldest_seconds: float | None
    jobs: list[JobRow]


@dataclass(frozen=True)
class LatencyReport:
    span: WindowSpan
    summary: LatencyStats
    by_group: list[LatencyStats]
    by_runbook: list[LatencyStats]
    by_worker: list[LatencyStats]
    trend: list[TrendPoint]
    queued: QueuedNow


@dataclass(frozen=True)
class JobList:
    total: int
    rows: list[JobRow]


@dataclass(frozen=True)
class TimeoutReport:
    span: WindowSpan
    thresholds: latency.ThresholdSet
    threshold_rows: list[latency.Threshold]
    over_now: list[JobRow]
    over_past: JobList
    suspended_stopped: JobList
    not_available: JobList


# --- building stats -------------------------------------------------------------------------------

def _round(value: float | None) -> float | None:
    return None if value is None else round(float(value), 3)


def _hist_percentiles(hist: Sequence[int], max_value: float | None) -> Percentiles:
    values = [latency.percentile_from_histogram(hist, q, max_value=max_value) for q in latency.PERCENTILES]
    return Percentiles(*values)


def _exact_percentiles(values: Sequence[float]) -> Percentiles:
    if not values:
        return Percentiles(None, None, None)
    p = np.percentile(np.asarray(values, dtype=float), latency.PERCENTILES)
    return Percentiles(float(p[0]), float(p[1]), float(p[2]))


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

def _parse_hists(texts: list[str]) -> np.ndarray:
    """Stack stored JSON arrays into an (n, BUCKET_COUNT) int matrix with one C-level parse."""
    if not texts:
        return np.zeros((0, latency.BUCKET_COUNT), dtype=np.int64)
    flat = np.fromstring(",".join(t.strip()[1:-1] for t in texts), dtype=np.int64, sep=",")
    if flat.size != len(texts) * latency.BUCKET_COUNT:
        raise ValueError("a stored histogram does not match BUCKET_EDGES; rebuild with manage.py rollup --hours 720")
    return flat.reshape(len(texts), latency.BUCKET_COUNT)


def _merge_rollup_rows(rows: list[dict], key_of: Callable[[dict], Hashable]) -> dict[Hashable, tuple[Accumulator, dict]]:
    """Merge rollup rows (dicts with _COUNT/_SUM/_MAX fields and the JSON text histograms) per key_of(row)."""
    keys: dict = {}
    index = np.empty(len(rows), dtype=np.int64)
    for i, row in enumerate(rows):
        index[i] = keys.setdefault(key_of(row), len(keys))
    n = len(keys)
    counts = np.zeros((n, len(_COUNT_FIELDS)), dtype=np.int64)
    sums = np.zeros((n, len(_SUM_FIELDS)))
    maxes = np.full((n, len(_MAX_FIELDS)), -1.0)
    qh = np.zeros((n, latency.BUCKET_COUNT), dtype=np.int64)
    dh = np.zeros((n, latency.BUCKET_COUNT), dtype=np.int64)
    if rows:
        np.add.at(counts, index, np.array([[r[f] for f in _COUNT_FIELDS] for r in rows], dtype=np.int64))
        np.add.at(sums, index, np.array([[r[f] for f in _SUM_FIELDS] for r in rows], dtype=float))
        np.maximum.at(maxes, index, np.array([[-1.0 if r[f] is None else r[f] for f in _MAX_FIELDS] for r in rows]))
        np.add.at(qh, index, _parse_hists([r["queue_hist"] for r in rows]))
        np.add.at(dh, index, _parse_hists([r["duration_hist"] for r in rows]))
    first: dict = {}
    for row in rows:
        first.setdefault(key_of(row), row)
    merged = {}
    for key, i in keys.items():
        row = first[key]
        acc = Accumulator(scope=row["scope"], key=row["key"], group_id=row.get("group_id"), worker_id=row.get("worker_id"),
                          runbook=row.get("runbook", ""))
        for j, name in enumerate(_COUNT_FIELDS):
            setattr(acc, name, int(counts[i, j]))
        acc.queue_sum, acc.duration_sum = float(sums[i, 0]), float(sums[i, 1])
        acc.queue_max = None if maxes[i, 0] < 0 else float(maxes[i, 0])
        acc.duration_max = None if maxes[i, 1] < 0 else float(maxes[i, 1])
        acc.queue_hist = [int(x) for x in qh[i]]
        acc.duration_hist = [int(x) for x in dh[i]]
        merged[key] = (acc, row)
    return merged


def _rollup_rows(qs: QuerySet, *extra: str) -> list[dict]:
    return list(
        qs.values("scope", "key", "group_id", "worker_id", "runbook", *_COUNT_FIELDS, *_SUM_FIELDS, *_MAX_FIELDS,
                  "queue_hist", "duration_hist", *extra)
    )


def _fleet_series(span: WindowSpan, *, key: str) -> tuple[LatencyStats, list[TrendPoint]]:
    """Summary and trend of one rollup key (fleet, g:<id>, r:<runbook>) from ONE query."""
    per_day = span.source == "daily" and span.key == "30d"
    model, period = (JobDaily, "day") if per_day else (JobHourly, "hour")
    rows = _rollup_rows(model.objects.filter(key=key, **{f"{period}__gte": span.start, f"{period}__lte": span.end}), period)
    total = _merge_rollup_rows(rows, lambda r: "all")
    by_period = _merge_rollup_rows(rows, lambda r: r[period])
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
    rows = list(qs.values_list(*JOB_FIELDS, *_RAW_LABEL_FIELDS))
    job_rows = [r[: len(JOB_FIELDS)] for r in rows]
    accs = accumulate_jobs(job_rows, lambda _t: span.start)
    raw_values: dict[str, tuple[list[float], list[float]]] = {}
    labels: dict[str, dict] = {}
    for row in rows:
        group_id_, worker_id, runbook_, _created, _status, queue_s, duration_s, _exc, gname, aname, wname = row
        for scope, key, _g, _w, _rb in scope_keys(group_id_, runbook_, worker_id):
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
    buckets = accumulate_jobs(job_rows, lambda t: span.start + step * int((t - span.start) / step))
    trend = [
        TrendPoint(start=start, jobs=acc.jobs, queue=_hist_percentiles(acc.queue_hist, acc.queue_max),
                   duration=_hist_percentiles(acc.duration_hist, acc.duration_max))
        for (start, key), acc in sorted(buckets.items()) if key == "fleet"
    ]
    return stats, trend


# --- public reads ---------------------------------------------------------------------------------

def find_group(name: str, account: str | None = None) -> WorkerGroup:
    """A group by name (and account name when two accounts share a group name)."""
    qs = WorkerGroup.objects.filter(name=name).select_related("account")
    if account:
        qs = qs.filter(account__name=account)
    groups = list(qs[:2])
    if not groups:
        raise GroupNotFound(name)
    if len(groups) > 1:
        raise AmbiguousGroup(f"group {name!r} exists in more than one account; add account=")
    return groups[0]


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


def queued_now(*, now: datetime, group_id: int | None = None, runbook: str | None = None, limit: int | None = DEFAULT_LIST_LIMIT) -> QueuedNow:
    """Jobs not started yet (any non-terminal status, unknown strings included), oldest first. Two queries."""
    qs = _queued_qs(group_id=group_id, runbook=runbook)
    agg = qs.aggregate(n=Count("id"), oldest=Min("created_at"))
    rows_qs = qs.order_by("created_at").values(*_JOB_ROW_FIELDS)
    if limit is not None:
        rows_qs = rows_qs[:limit]
    rows = [_job_row(r, age_seconds=(now - r["created_at"]).total_seconds()) for r in rows_qs] if agg["n"] else []
    oldest = (now - agg["oldest"]).total_seconds() if agg["oldest"] else None
    return QueuedNow(count=agg["n"], oldest_seconds=oldest, jobs=rows)


def _queued_qs(*, group_id: int | None = None, runbook: str | None = None) -> QuerySet:
    # ended_at IS NULL first: that is the partial index job_open.
    qs = hybrid_jobs().filter(ended_at__isnull=True, started_at__isnull=True).exclude(status__in=latency.TERMINAL_STATUSES)
    if group_id is not None:
        qs = qs.filter(group_id=group_id)
    if runbook is not None:
        qs = qs.filter(runbook=runbook)
    return qs


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
        model, period = (JobDaily, "day") if span.source == "daily" else (JobHourly, "hour")
        rows = _rollup_rows(
            model.objects.filter(
                scope__in=[RollupScope.GROUP, RollupScope.RUNBOOK, RollupScope.WORKER],
                **{f"{period}__gte": span.start, f"{period}__lte": span.end},
            ),
            *_RAW_LABEL_FIELDS,
        )
        breakdown = {"group": [], "runbook": [], "worker": []}
        for key, (acc, row) in _merge_rollup_rows(rows, lambda r: r["key"]).items():
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


# --- timeouts -------------------------------------------------------------------------------------

_JOB_ROW_FIELDS = ("job_id", "runbook", "status", "group__name", "group__account__name", "created_at", "started_at",
                   "ended_at", "queue_seconds", "duration_seconds", "exception")


def _job_row(r: dict, **extra) -> JobRow:
    return JobRow(
        job_id=r["job_id"], runbook=r["runbook"], status=r["status"], group=r["group__name"] or "",
        account=r["group__account__name"] or "", created_at=r["created_at"], started_at=r["started_at"],
        ended_at=r["ended_at"], queue_seconds=r["queue_seconds"], duration_seconds=r["duration_seconds"],
        exception=(r["exception"] or "")[:500], **extra,
    )


def thresholds() -> tuple[latency.ThresholdSet, list[latency.Threshold]]:
    """The stored thresholds resolved against the built-in default. One query."""
    rows = list(RunbookThreshold.objects.values_list("runbook", "max_queue_seconds", "max_run_seconds"))
    tset = latency.ThresholdSet.build(rows)
    listed = [tset.default] + sorted(tset.overrides.values(), key=lambda t: t.runbook)
    return tset, listed


def over_threshold_now(*, now: datetime, tset: latency.ThresholdSet, limit: int | None = DEFAULT_LIST_LIMIT) -> list[JobRow]:
    """Open jobs past their runbook's threshold right now: queued too long, or running too long."""
    min_queue = min([tset.default.max_queue_seconds, *(t.max_queue_seconds for t in tset.overrides.values())])
    min_run = min([tset.default.max_run_seconds, *(t.max_run_seconds for t in tset.overrides.values())])
    qs = (
        hybrid_jobs()
        .filter(ended_at__isnull=True)
        .exclude(status__in=latency.TERMINAL_STATUSES)
        .filter(
            Q(started_at__isnull=True, created_at__lt=now - timedelta(seconds=min_queue))
            | Q(started_at__isnull=False, started_at__lt=now - timedelta(seconds=min_run))
        )
        .order_by("created_at")
        .values(*_JOB_ROW_FIELDS)
    )
    out: list[JobRow] = []
    for r in qs.iterator(chunk_size=2000):
        t = tset.for_runbook(r["runbook"])
        if r["started_at"] is None:
            age = (now - r["created_at"]).total_seconds()
            if age > t.max_queue_seconds:
                out.append(_job_row(r, age_seconds=age, kind="queued", threshold_seconds=t.max_queue_seconds))
        else:
            age = (now - r["started_at"]).total_seconds()
            if age > t.max_run_seconds:
                out.append(_job_row(r, age_seconds=age, kind="running", threshold_seconds=t.max_run_seconds))
        if limit is not None and len(out) >= limit:
            break
    return out


def _over_past_q(tset: latency.ThresholdSet) -> Q:
    named = list(tset.overrides)
    q = Q(~Q(runbook__in=named) if named else Q(), Q(queue_seconds__gt=tset.default.max_queue_seconds)
          | Q(duration_seconds__gt=tset.default.max_run_seconds))
    for name, t in tset.overrides.items():
        q |= Q(runbook=name) & (Q(queue_seconds__gt=t.max_queue_seconds) | Q(duration_seconds__gt=t.max_run_seconds))
    return q


def _listed(qs: QuerySet, limit: int | None, *, total: int | None = None, rare: bool = False) -> JobList:
    """Newest rows first. ``total`` from the rollups saves the count (and the list when it is 0).

    ``rare``: the matches are few and found through their own indexes; ordering with NULLS LAST (a
    no-op, created_at is NOT NULL) stops PostgreSQL from walking job_created backwards through
    millions of rows to find them under a LIMIT.
    """
    if total is None:
        total = qs.count()
    order = F("created_at").desc(nulls_last=True) if rare else F("created_at").desc()
    rows_qs = qs.order_by(order).values(*_JOB_ROW_FIELDS)
    if limit is not None:
        rows_qs = rows_qs[:limit]
    rows = [_job_row(r) for r in rows_qs] if total else []
    # The rollup may lag the raw rows by one run: never claim fewer than we list.
    return JobList(total=max(total, len(rows)), rows=rows)


def over_threshold_in_window(span: WindowSpan, *, tset: latency.ThresholdSet, limit: int | None = DEFAULT_LIST_LIMIT) -> JobList:
    """Jobs created in the window whose recorded queue delay or duration exceeded their threshold."""
    qs = hybrid_jobs().filter(created_at__gte=span.start, created_at__lte=span.end).filter(_over_past_q(tset))
    listed = _listed(qs, limit, rare=True)
    rows = []
    for row in listed.rows:
        t = tset.for_runbook(row.runbook)
        over_queue = row.queue_seconds is not None and row.queue_seconds > t.max_queue_seconds
        kind = "queue" if over_queue else "run"
        rows.append(replace(row, kind=kind, threshold_seconds=t.max_queue_seconds if over_queue else t.max_run_seconds))
    return JobList(total=listed.total, rows=rows)


def symptom_counts(span: WindowSpan) -> dict[str, int]:
    """Suspended, Stopped and "not available" counts in the window: from the fleet rollup rows
    (one small query) for 24h/7d/30d, from the raw rows for 1h."""
    if span.exact:
        in_window = hybrid_jobs().filter(created_at__gte=span.start, created_at__lte=span.end)
        agg = in_window.aggregate(
            suspended=Count("id", filter=Q(status="Suspended")),
            stopped=Count("id", filter=Q(status="Stopped")),
            not_available=Count("id", filter=Q(status="Failed") & _not_available_q()),
        )
        return {k: int(v or 0) for k, v in agg.items()}
    model, period = (JobDaily, "day") if span.source == "daily" else (JobHourly, "hour")
    agg = model.objects.filter(key="fleet", **{f"{period}__gte": span.start, f"{period}__lte": span.end}).aggregate(
        suspended=Sum("suspended"), stopped=Sum("stopped"), not_available=Sum("not_available")
    )
    return {k: int(v or 0) for k, v in agg.items()}


def suspended_or_stopped(span: WindowSpan, *, limit: int | None = DEFAULT_LIST_LIMIT, total: int | None = None) -> JobList:
    qs = hybrid_jobs().filter(status__in=["Suspended", "Stopped"], created_at__gte=span.start, created_at__lte=span.end)
    return _listed(qs, limit, total=total)


def _not_available_q() -> Q:
    q = Q()
    for phrase in latency.NOT_AVAILABLE_PHRASES:
        q |= Q(exception__icontains=phrase)
    return q


def not_available_failures(span: WindowSpan, *, limit: int | None = DEFAULT_LIST_LIMIT, total: int | None = None) -> JobList:
    qs = hybrid_jobs().filter(status="Failed", created_at__gte=span.start, created_at__lte=span.end).filter(_not_available_q())
    return _listed(qs, limit, total=total)


def timeout_report(window: str, *, now: datetime, list_limit: int | None = DEFAULT_LIST_LIMIT) -> TimeoutReport:
    """Everything the timeouts page shows. At most seven queries for any window and fleet size."""
    span = resolve_window(window, now=now)
    tset, listed = thresholds()
    counts = symptom_counts(span)
    return TimeoutReport(
        span=span, thresholds=tset, threshold_rows=listed,
        over_now=over_threshold_now(now=now, tset=tset, limit=list_limit),
        over_past=over_threshold_in_window(span, tset=tset, limit=list_limit),
        suspended_stopped=suspended_or_stopped(span, limit=list_limit, total=counts["suspended"] + counts["stopped"]),
        not_available=not_available_failures(span, limit=list_limit, total=counts["not_available"]),
    )


def timeout_counts(window: str = "24h", *, now: datetime, version: tuple[tuple[int, Any], ...] | None = None) -> dict[str, int | str]:
    """Counts for the overview: open jobs over threshold now, finished over threshold in the window,
    Suspended, Stopped and "hybrid worker was not available" failures in the window.

    One query for the thresholds, then (at most once per jobs poll and per jobs-poll interval, see
    ``selectors.per_jobs_poll``; the thresholds are part of the key) four more: job rows only change
    when a jobs poll lands, so "over its threshold now" is as current as the data it is computed from.
    """
    tset, listed = thresholds()

    def compute() -> dict[str, int | str]:
        span = resolve_window(window, now=now)
        over_now = over_threshold_now(now=now, tset=tset, limit=None)
        in_window = hybrid_jobs().filter(created_at__gte=span.start, created_at__lte=span.end)
        return {
            "window": span.key,
            "over_threshold_now": len(over_now),
            "over_threshold_in_window": in_window.filter(_over_past_q(tset)).count(),
            **symptom_counts(span),
        }

    return per_jobs_poll(
        f"timeout-counts-{window}", compute, now=now, max_age_seconds=settings.POLL_JOBS_SECONDS,
        version=version, extra=tuple(listed),
    )
