"""The job aggregates the pages share: outcome counts and queue-delay p95 per group, computed at most
once per jobs poll (``per_jobs_poll``) and shared by every view and screen.

Every function issues a fixed number of queries, independent of how many groups or jobs exist.
"""
from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar, cast

from django.core.cache import cache
from django.db import connection
from django.db.models import Count, Q, QuerySet

from workers.db import Percentile95
from workers.models import AutomationAccount, Job
from workers.rules.outcomes import OUTCOMES, empty_outcomes, outcome
from workers.rules.stats import percentile

T = TypeVar("T")


@dataclass(frozen=True)
class JobStats:
    """A group's jobs over a window: counts by outcome, and the queue-delay p95 of those that started."""

    outcomes: dict[str, int]
    queue_p95_seconds: float | None


def job_stats_by_group(
    *, since: datetime, group_ids: Iterable[int] | None = None, until: datetime | None = None
) -> dict[int, JobStats]:
    """Job counts by outcome and queue-delay p95 (seconds) per group, for jobs created since ``since``
    (and up to ``until`` when given).

    One query on every engine: PostgreSQL aggregates in SQL (filtered counts + PERCENTILE_CONT);
    elsewhere one narrow scan of (group, status, queue_seconds) is folded in Python.
    """
    jobs = Job.objects.filter(created_at__gte=since, group__isnull=False)
    if group_ids is not None:
        jobs = jobs.filter(group_id__in=list(group_ids))
    if until is not None:
        jobs = jobs.filter(created_at__lte=until)
    if connection.vendor == "postgresql":
        counts = {name: Count("id", filter=Q(status__iexact=name)) for name in OUTCOMES if name != "other"}
        # The stubs' row TypedDict omits the **counts annotations: the rows are plain dicts.
        rows = cast("QuerySet[Job, dict[str, Any]]", (
            jobs.values("group_id")
            .annotate(n_all=Count("id"), p95=Percentile95("queue_seconds"), **counts)
            .order_by()
        ))
        result = {}
        for row in rows:
            outcomes = {name: row[name] for name in counts}
            outcomes["other"] = row["n_all"] - sum(outcomes.values())
            result[row["group_id"]] = JobStats(outcomes=outcomes, queue_p95_seconds=row["p95"])
        return result
    outcome_counts: dict[int, dict[str, int]] = defaultdict(empty_outcomes)
    delays: dict[int, list[float]] = defaultdict(list)
    for gid, status, seconds in jobs.values_list("group_id", "status", "queue_seconds").order_by().iterator(chunk_size=5000):
        outcome_counts[gid][outcome(status)] += 1
        if seconds is not None:
            delays[gid].append(seconds)
    return {gid: JobStats(outcomes=o, queue_p95_seconds=percentile(delays.get(gid, []), 95)) for gid, o in outcome_counts.items()}


def jobs_data_version() -> tuple[tuple[int, Any], ...]:
    """What identifies the stored job rows: each account's ``jobs_watermark``. One tiny query.

    Job rows change only when a jobs poll succeeds, and every successful poll advances its account's
    watermark, so an unchanged version means unchanged job rows.
    """
    return tuple(AutomationAccount.objects.order_by("pk").values_list("pk", "jobs_watermark"))


def per_jobs_poll(
    name: str, compute: Callable[[], T], *, now: datetime, max_age_seconds: float,
    version: tuple[tuple[int, Any], ...] | None = None, extra: Any = (),
) -> T:
    """``compute()`` at most once per jobs poll (and per ``max_age_seconds``), shared by every view.

    The cache key holds the job data version (see ``jobs_data_version``) plus ``extra`` (whatever
    else the result depends on, e.g. the thresholds), so a new poll means a fresh result. The value
    is stored with the time it was computed and reused only while it is less than ``max_age_seconds``
    old: windows relative to "now" (the last 24 h, "open for longer than its threshold") keep
    sliding when polling has stopped. A cached result therefore describes the job rows of the latest
    poll as of less than ``max_age_seconds`` ago. A clock earlier than the stored time (a test's frozen
    clock) recomputes.
    """
    if version is None:
        version = jobs_data_version()
    digest = hashlib.sha256(repr((version, extra)).encode()).hexdigest()[:32]
    key = f"per-jobs-poll:{name}:{digest}"
    hit = cache.get(key)
    if hit is not None and 0 <= (now - hit[0]).total_seconds() < max_age_seconds:
        return hit[1]
    value = compute()
    cache.set(key, (now, value), timeout=max(1, int(max_age_seconds)))
    return value


# The 24 h job aggregate may be this old when a view reuses it (the window slides by at most this).
FLEET_JOB_STATS_MAX_AGE = 300


def fleet_job_stats(*, since: datetime, now: datetime, version: tuple[tuple[int, Any], ...] | None = None) -> dict[int, JobStats]:
    """``job_stats_by_group`` for every group, computed once per jobs poll rather than per page view
    (see ``per_jobs_poll``). The aggregate is the costly part of the overview at fleet scale (a 24 h
    scan with PERCENTILE_CONT per group); ``warm_job_caches`` computes it right after each jobs poll.
    """
    return per_jobs_poll(
        "fleet-job-stats", lambda: job_stats_by_group(since=since), now=now,
        max_age_seconds=FLEET_JOB_STATS_MAX_AGE, version=version,
    )
