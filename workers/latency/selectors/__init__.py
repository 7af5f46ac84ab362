"""Reads for the latency and timeouts pages, the latency API and the overview's timeout counts.

- ``windows``: the named windows (1h exact from raw rows; 24h, 7d, 30d from the rollups).
- ``jobs``: the hybrid-job QuerySet, job rows and lists, jobs queued now, group lookup.
- ``stats``: percentiles, counts and trends per scope (the latency page and API).
- ``timeouts``: thresholds, jobs over them, the service's own symptoms (the timeouts page, the overview).

The package re-exports the public API so pages can ``from workers.latency import selectors as sel``.
"""
from __future__ import annotations

from workers.latency.selectors.jobs import (
    DEFAULT_LIST_LIMIT,
    AmbiguousGroup,
    GroupNotFound,
    JobList,
    JobRow,
    QueuedNow,
    find_group,
    hybrid_jobs,
    queued_now,
)
from workers.latency.selectors.stats import LatencyReport, LatencyStats, Percentiles, TrendPoint, latency_report, latency_summary
from workers.latency.selectors.timeouts import (
    TimeoutReport,
    not_available_failures,
    over_threshold_in_window,
    over_threshold_now,
    suspended_or_stopped,
    symptom_counts,
    thresholds,
    timeout_counts,
    timeout_report,
)
from workers.latency.selectors.windows import WindowError, WindowSpan, parse_window, resolve_window, span_between

__all__ = [
    "DEFAULT_LIST_LIMIT", "AmbiguousGroup", "GroupNotFound", "JobList", "JobRow", "LatencyReport", "LatencyStats",
    "Percentiles", "QueuedNow", "TimeoutReport", "TrendPoint", "WindowError", "WindowSpan", "find_group", "hybrid_jobs",
    "latency_report", "latency_summary", "not_available_failures", "over_threshold_in_window", "over_threshold_now",
    "parse_window", "queued_now", "resolve_window", "span_between", "suspended_or_stopped", "symptom_counts",
    "thresholds", "timeout_counts", "timeout_report",
]
