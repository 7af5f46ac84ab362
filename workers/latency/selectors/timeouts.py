"""Reads for the timeouts page and the overview's timeout counts.

A timeout is ours to define (hybrid jobs have no service time limit): a job queued or running longer
than its runbook's threshold (``RunbookThreshold``, resolved by ``workers.rules.latency.ThresholdSet``),
plus the service's own symptoms: Suspended, Stopped, and "hybrid worker was not available" failures.
Every function here issues a fixed number of queries, independent of the number of groups or jobs.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import Count, Q

from workers.fleet.selectors.job_stats import per_jobs_poll
from workers.latency.selectors.coverage import WindowPlan, plan_window, window_rows
from workers.latency.selectors.jobs import DEFAULT_LIST_LIMIT, JOB_ROW_FIELDS, JobList, JobRow, hybrid_jobs, job_row, listed
from workers.latency.selectors.windows import WindowSpan, resolve_window
from workers.models import RunbookThreshold
from workers.rules import latency, outcomes
from workers.rules.coverage import DataSpan


@dataclass(frozen=True)
class TimeoutReport:
    """Everything the timeouts page shows for one window."""

    span: WindowSpan
    thresholds: latency.ThresholdSet
    threshold_rows: list[latency.Threshold]
    over_now: list[JobRow]
    over_past: JobList
    suspended_stopped: JobList
    not_available: JobList
    data: DataSpan | None = None


def thresholds() -> tuple[latency.ThresholdSet, list[latency.Threshold]]:
    """The stored thresholds resolved against the built-in default. One query."""
    rows = list(RunbookThreshold.objects.values_list("runbook", "max_queue_seconds", "max_run_seconds"))
    tset = latency.ThresholdSet.build(rows)
    listed_rows = [tset.default] + sorted(tset.overrides.values(), key=lambda t: t.runbook)
    return tset, listed_rows


def over_threshold_now(*, now: datetime, tset: latency.ThresholdSet, limit: int | None = DEFAULT_LIST_LIMIT) -> list[JobRow]:
    """Open jobs past their runbook's threshold right now: queued too long, or running too long."""
    min_queue = min([tset.default.max_queue_seconds, *(t.max_queue_seconds for t in tset.overrides.values())])
    min_run = min([tset.default.max_run_seconds, *(t.max_run_seconds for t in tset.overrides.values())])
    qs = (
        hybrid_jobs()
        .filter(ended_at__isnull=True)
        .exclude(status__in=outcomes.TERMINAL_STATUSES)
        .filter(
            Q(started_at__isnull=True, created_at__lt=now - timedelta(seconds=min_queue))
            | Q(started_at__isnull=False, started_at__lt=now - timedelta(seconds=min_run))
        )
        .order_by("created_at")
        .values(*JOB_ROW_FIELDS)
    )
    out: list[JobRow] = []
    for r in qs.iterator(chunk_size=2000):
        t = tset.for_runbook(r["runbook"])
        if r["started_at"] is None:
            age = (now - r["created_at"]).total_seconds()
            if age > t.max_queue_seconds:
                out.append(job_row(r, age_seconds=age, kind="queued", threshold_seconds=t.max_queue_seconds))
        else:
            age = (now - r["started_at"]).total_seconds()
            if age > t.max_run_seconds:
                out.append(job_row(r, age_seconds=age, kind="running", threshold_seconds=t.max_run_seconds))
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


def over_threshold_in_window(span: WindowSpan, *, tset: latency.ThresholdSet, limit: int | None = DEFAULT_LIST_LIMIT) -> JobList:
    """Jobs created in the window whose recorded queue delay or duration exceeded their threshold."""
    qs = hybrid_jobs().filter(created_at__gte=span.start, created_at__lte=span.end).filter(_over_past_q(tset))
    found = listed(qs, limit, rare=True)
    rows = []
    for row in found.rows:
        t = tset.for_runbook(row.runbook)
        over_queue = row.queue_seconds is not None and row.queue_seconds > t.max_queue_seconds
        kind = "queue" if over_queue else "run"
        rows.append(replace(row, kind=kind, threshold_seconds=t.max_queue_seconds if over_queue else t.max_run_seconds))
    return JobList(total=found.total, rows=rows)


def _not_available_q() -> Q:
    q = Q()
    for phrase in outcomes.NOT_AVAILABLE_PHRASES:
        q |= Q(exception__icontains=phrase)
    return q


def symptom_counts(span: WindowSpan, plan: WindowPlan | None = None) -> dict[str, int]:
    """Suspended, Stopped and "not available" counts in the window: from the raw rows for 1h; for
    24h/7d/30d from the fleet rollup rows where they cover the window and the raw rows elsewhere
    (``workers.latency.selectors.coverage``), so the count never depends on whether a rollup ran."""
    if span.exact:
        in_window = hybrid_jobs().filter(created_at__gte=span.start, created_at__lte=span.end)
        agg = in_window.aggregate(
            suspended=Count("id", filter=Q(status="Suspended")),
            stopped=Count("id", filter=Q(status="Stopped")),
            not_available=Count("id", filter=Q(status="Failed") & _not_available_q()),
        )
        return {k: int(v or 0) for k, v in agg.items()}
    rows = window_rows(plan or plan_window(span, with_data=False), by_day=span.source == "daily", key="fleet")
    return {name: sum(int(r[name]) for r in rows) for name in ("suspended", "stopped", "not_available")}


def suspended_or_stopped(span: WindowSpan, *, limit: int | None = DEFAULT_LIST_LIMIT, total: int | None = None) -> JobList:
    """Suspended and Stopped jobs created in the window, newest first."""
    qs = hybrid_jobs().filter(status__in=["Suspended", "Stopped"], created_at__gte=span.start, created_at__lte=span.end)
    return listed(qs, limit, total=total)


def not_available_failures(span: WindowSpan, *, limit: int | None = DEFAULT_LIST_LIMIT, total: int | None = None) -> JobList:
    """Jobs created in the window that failed because no hybrid worker was available, newest first."""
    qs = hybrid_jobs().filter(status="Failed", created_at__gte=span.start, created_at__lte=span.end).filter(_not_available_q())
    return listed(qs, limit, total=total)


def timeout_report(
    window: str | WindowSpan, *, now: datetime, list_limit: int | None = DEFAULT_LIST_LIMIT, shared: bool = False,
) -> TimeoutReport:
    """Everything the timeouts page shows, for a named window or any resolved span. At most eleven
    queries for any window and fleet size.

    With ``shared`` (the page), a named window's report is computed at most once per jobs poll and
    per jobs-poll interval and shared by every view, like the overview's ``timeout_counts`` (the
    thresholds and the list limit are part of the key). A custom range is always computed.
    """
    span = window if isinstance(window, WindowSpan) else resolve_window(window, now=now)
    tset, threshold_rows = thresholds()
    if shared and span.named:
        return per_jobs_poll(
            f"timeout-report-{span.key}", lambda: _timeout_report(span, now, tset, threshold_rows, list_limit),
            now=now, max_age_seconds=settings.POLL_JOBS_SECONDS, extra=(tuple(threshold_rows), list_limit),
        )
    return _timeout_report(span, now, tset, threshold_rows, list_limit)


def _timeout_report(
    span: WindowSpan, now: datetime, tset: latency.ThresholdSet, threshold_rows: list[latency.Threshold],
    list_limit: int | None,
) -> TimeoutReport:
    plan = None if span.exact else plan_window(span)
    counts = symptom_counts(span, plan)
    return TimeoutReport(
        data=plan.data if plan is not None else None,
        span=span, thresholds=tset, threshold_rows=threshold_rows,
        over_now=over_threshold_now(now=now, tset=tset, limit=list_limit),
        over_past=over_threshold_in_window(span, tset=tset, limit=list_limit),
        suspended_stopped=suspended_or_stopped(span, limit=list_limit, total=counts["suspended"] + counts["stopped"]),
        not_available=not_available_failures(span, limit=list_limit, total=counts["not_available"]),
    )


def timeout_counts(window: str = "24h", *, now: datetime, version: tuple[tuple[int, Any], ...] | None = None) -> dict[str, int | str]:
    """Counts for the overview: open jobs over threshold now, finished over threshold in the window,
    Suspended, Stopped and "hybrid worker was not available" failures in the window.

    One query for the thresholds, then (at most once per jobs poll and per jobs-poll interval, see
    ``workers.fleet.selectors.job_stats.per_jobs_poll``; the thresholds are part of the key) four
    more: job rows only change when a jobs poll lands, so "over its threshold now" is as current as
    the data it is computed from.
    """
    tset, threshold_rows = thresholds()

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
        version=version, extra=tuple(threshold_rows),
    )
