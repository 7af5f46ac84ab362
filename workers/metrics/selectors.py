"""The figures behind /metrics, read at scrape time from the database.

Windows are fixed and named in the metric names: poll runs started in the last hour (PollRun rows
are kept for POLL_RUN_RETENTION_HOURS), job latency over the last 24 hours of the hourly rollups.
Each function is one to three queries whatever the fleet size (grouped aggregates, index walks).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import accumulate
from typing import Any

from django.db.models import Case, Count, Min, OuterRef, Q, Subquery, Sum, Value, When
from django.db.models.functions import Coalesce

from workers.fleet.selectors.poll_evidence import finished_polls
from workers.models import (
    Alert,
    AlertState,
    AutomationAccount,
    JobHourly,
    Notification,
    NotificationStatus,
    PollKind,
    PollRun,
    RollupScope,
    StatusChange,
)
from workers.rules import arm_budget, job_rollups
from workers.rules.latency import BUCKET_EDGES

POLL_WINDOW = timedelta(hours=1)
JOB_WINDOW = timedelta(hours=24)
# Upper bounds (seconds) of the poll duration histogram.
POLL_DURATION_BUCKETS: tuple[float, ...] = (0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
# Upper bounds of the job latency histograms: every other power of two, each one of the stored
# histograms' edges (``workers.rules.latency.BUCKET_EDGES``), so the stored buckets add up exactly.
JOB_LATENCY_BUCKETS: tuple[float, ...] = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536)


@dataclass
class PollFigures:
    account: str
    kind: str
    outcome: str  # ok, transient (retried), failed
    runs: int
    rows: int
    duration_sum: float
    buckets: list[int]  # cumulative counts per POLL_DURATION_BUCKETS upper bound


def poll_runs(*, now: datetime) -> list[PollFigures]:
    """Poll runs started in the last hour and finished, by account, kind and outcome. Two queries.

    Filtering on every (account, kind) pair lets PostgreSQL read the hour from the ``pollrun_latest``
    index instead of scanning the whole retention (about 7x faster at 5 million runs).
    """
    accounts = dict(AutomationAccount.objects.values_list("pk", "name"))
    outcome = Case(
        When(ok=True, then=Value("ok")),
        When(error__startswith="transient", then=Value("transient")),
        default=Value("failed"),
    )
    buckets = {f"le_{i}": Count("id", filter=Q(duration_ms__lte=int(b * 1000))) for i, b in enumerate(POLL_DURATION_BUCKETS)}
    rows = (
        PollRun.objects.filter(account_id__in=list(accounts), kind__in=PollKind.values, started_at__gt=now - POLL_WINDOW,
                               finished_at__isnull=False)
        .annotate(outcome=outcome)
        .values("account_id", "kind", "outcome")
        .annotate(runs=Count("id"), rows_sum=Coalesce(Sum("rows"), 0), ms=Coalesce(Sum("duration_ms"), 0), **buckets)
        .order_by()
    )
    out = []
    for row in rows:
        r: dict[str, Any] = dict(row)
        out.append(PollFigures(
            account=accounts[r["account_id"]], kind=r["kind"], outcome=r["outcome"], runs=r["runs"], rows=r["rows_sum"],
            duration_sum=r["ms"] / 1000.0, buckets=[r[f"le_{i}"] for i in range(len(POLL_DURATION_BUCKETS))],
        ))
    return sorted(out, key=lambda f: (f.account, f.kind, f.outcome))


def last_successful_polls() -> list[tuple[str, str, datetime]]:
    """(account, kind, finished_at of the newest successful run) for every pair that has one. One
    query: a latest-run subquery per kind walks the ``pollrun_latest`` index."""
    annotations = {
        f"ok_{kind}": Subquery(finished_polls(account=OuterRef("pk"), kind=kind, ok=True).order_by("-started_at")
                               .values("finished_at")[:1])
        for kind in PollKind.values
    }
    out = []
    for name, *times in AutomationAccount.objects.annotate(**annotations).order_by("name").values_list("name", *annotations):
        out += [(name, kind, t) for kind, t in zip(PollKind.values, times, strict=True) if t is not None]
    return out


def polls_in_flight() -> dict[str, int]:
    """Started, not finished, by kind. One query."""
    rows = PollRun.objects.filter(finished_at__isnull=True).values_list("kind").annotate(n=Count("id")).order_by("kind")
    return dict(rows)


@dataclass
class AlertingFigures:
    outbox_backlog: int
    outbox_oldest: datetime | None
    notifications: dict[tuple[str, str], int]  # (kind, status) -> count
    retrying: int  # pending after at least one failed attempt
    open_alerts: dict[str, int] = field(default_factory=dict)


def alerting(*, now: datetime) -> AlertingFigures:
    """The alert outbox (unprocessed status changes), notifications by kind and status, open alerts
    by kind. Three queries."""
    backlog = StatusChange.objects.filter(processed_at__isnull=True).aggregate(n=Count("id"), oldest=Min("created_at"))
    notifications = (
        Notification.objects.values_list("kind", "status")
        .annotate(n=Count("id"), retrying=Count("id", filter=Q(status=NotificationStatus.PENDING, attempts__gt=0)))
        .order_by("kind", "status")
    )
    counts: dict[tuple[str, str], int] = {}
    retrying = 0
    for kind, status, n, retry in notifications:
        counts[(kind, status)] = n
        retrying += retry
    open_alerts = dict(Alert.objects.filter(state=AlertState.OPEN).values_list("kind").annotate(n=Count("id")).order_by("kind"))
    return AlertingFigures(outbox_backlog=backlog["n"], outbox_oldest=backlog["oldest"], notifications=counts,
                           retrying=retrying, open_alerts=open_alerts)


@dataclass
class LatencyFigures:
    account: str
    group: str
    queue_buckets: list[int]  # cumulative per JOB_LATENCY_BUCKETS, then +Inf
    queue_sum: float
    duration_buckets: list[int]
    duration_sum: float


# Where each bound sits among the stored edges (an error at import if one is not an edge).
_BOUND_INDEX: tuple[int, ...] = tuple(BUCKET_EDGES.index(float(b)) for b in JOB_LATENCY_BUCKETS)


def _cumulative(hist: Sequence[int]) -> list[int]:
    """Stored buckets [edge_i, edge_i+1) as cumulative counts below each upper bound, +Inf last."""
    running = [0, *accumulate(hist)]
    return [running[i] for i in _BOUND_INDEX] + [running[-1]]


_ROLLUP_FIELDS = (*job_rollups.KEY_FIELDS, *job_rollups.COUNT_FIELDS, *job_rollups.SUM_FIELDS, *job_rollups.MAX_FIELDS,
                  *job_rollups.HIST_FIELDS)


def job_latency_by_group(*, now: datetime) -> list[LatencyFigures]:
    """Queue delay and duration histograms per live group over the hourly rollups of the last 24 h.
    One query; the JSON histograms are merged with numpy (``job_rollups.merge_rows``)."""
    rows = list(
        JobHourly.objects.filter(scope=RollupScope.GROUP, hour__gte=now - JOB_WINDOW, group__removed_at__isnull=True)
        .values(*_ROLLUP_FIELDS, "group__name", "group__account__name")
    )
    merged = job_rollups.merge_rows(rows, lambda r: r["group_id"])
    out = [
        LatencyFigures(account=row["group__account__name"], group=row["group__name"],
                       queue_buckets=_cumulative(acc.queue_hist), queue_sum=acc.queue_sum,
                       duration_buckets=_cumulative(acc.duration_hist), duration_sum=acc.duration_sum)
        for acc, row in merged.values()
    ]
    return sorted(out, key=lambda f: (f.account, f.group))


@dataclass(frozen=True)
class ArmBudgetStats:
    """One ARM read budget (subscription and principal, hashed) as every process counted it."""

    budget: str  # the bucket key's hash part: no subscription id or principal in the metric
    responses: int
    throttled: int
    remaining: float | None


def arm_budget_stats(client: Any) -> list[ArmBudgetStats]:
    """ARM response counts the shared throttle keeps in Redis (``workers.azure.throttle.RedisStats``)."""
    out: list[ArmBudgetStats] = []
    for raw in sorted(client.scan_iter(match=arm_budget.stats_key(arm_budget.BUCKET_PREFIX + "*"), count=100)):
        key = raw.decode() if isinstance(raw, bytes) else str(raw)
        budget = arm_budget.budget_of_stats_key(key)
        if budget is None:
            continue
        fields = {(k.decode() if isinstance(k, bytes) else k): v for k, v in client.hgetall(key).items()}
        out.append(ArmBudgetStats(
            budget=budget,
            responses=int(_number(fields, "responses") or 0), throttled=int(_number(fields, "throttled") or 0),
            remaining=_number(fields, "remaining"),
        ))
    return out


def _number(fields: dict[str, Any], name: str) -> float | None:
    try:
        return float(fields[name])
    except (KeyError, TypeError, ValueError):
        return None
