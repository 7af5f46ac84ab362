"""Raw jobs folded into rollup-shaped rows by the database, in one query.

``workers.latency.selectors.coverage`` reads whatever the rollups do not cover (the window's partial
first hour, its recent tail) from the raw jobs. At fleet scale that tail holds tens of thousands of
jobs, too many to fold in Python per page view, so the database aggregates them per period and key,
exactly as the rollup writer folds them (``workers.rules.job_rollups.accumulate_jobs``):

- the outcome of ``workers.rules.outcomes.outcome`` (lower-cased, trimmed status), and its
  "hybrid worker was not available" failure (the phrases of ``outcomes.NOT_AVAILABLE_PHRASES``);
- queue delay and duration clamped at 0 s, their counts, sums and maxima;
- histograms over ``workers.rules.latency.BUCKET_EDGES``: the database counts the values at or above
  each edge, and the bucket counts are the differences (a value lands in the bucket of the highest
  edge it reaches, which is ``latency.bucket_index``).

One query (a UNION ALL of one GROUP BY per scope) on PostgreSQL and SQLite alike.
"""
from __future__ import annotations

from datetime import UTC
from typing import Any

from django.db.models import BigIntegerField, Case, CharField, Count, F, Max, Q, QuerySet, Sum, Value, When
from django.db.models.functions import Cast, Lower, Trim, TruncDay, TruncHour

from workers.rules import job_rollups, latency, outcomes

_OUTCOMES = ("completed", "failed", "stopped", "suspended")
_NOT_AVAILABLE = (*outcomes.NOT_AVAILABLE_PHRASES, "hybrid worker wasn’t available")


def _clamped(field: str) -> Case:
    return Case(When(**{f"{field}__lt": 0}, then=Value(0.0)), default=F(field))


def _aggregates() -> dict[str, Any]:
    not_available = Q()
    for phrase in _NOT_AVAILABLE:
        not_available |= Q(exception_lower__contains=phrase)
    aggs: dict[str, Any] = {"jobs": Count("id")}
    for name in _OUTCOMES:
        aggs[name] = Count("id", filter=Q(outcome_status=name))
    aggs["not_available"] = Count("id", filter=Q(outcome_status="failed") & not_available)
    for prefix, field in (("queue", "queue_seconds"), ("duration", "duration_seconds")):
        aggs[f"{prefix}_count"] = Count(field)
        aggs[f"{prefix}_sum"] = Sum(_clamped(field))
        aggs[f"{prefix}_max"] = Max(_clamped(field))
        for i, edge in enumerate(latency.BUCKET_EDGES[1:], start=1):
            aggs[f"{prefix}_ge{i}"] = Count("id", filter=Q(**{f"{field}__gte": edge}))
    return aggs


def _hist(row: dict, prefix: str) -> str:
    """Bucket counts from "values at or above each edge" counts."""
    at_least = [row[f"{prefix}_count"]] + [row.pop(f"{prefix}_ge{i}") for i in range(1, latency.BUCKET_COUNT)]
    return job_rollups.dump_hist([at_least[i] - (at_least[i + 1] if i + 1 < len(at_least) else 0)
                                  for i in range(len(at_least))])


def fold_raw(qs: QuerySet, *, by_day: bool, scopes: tuple[str, ...], labels: bool) -> list[dict]:
    """Rollup-shaped rows (``coverage._ROW_FIELDS``, "period_" and, with ``labels``, the label fields)
    of the jobs in ``qs`` per period (UTC hour, or day when ``by_day``) and key of ``scopes``."""
    trunc = TruncDay("created_at", tzinfo=UTC) if by_day else TruncHour("created_at", tzinfo=UTC)
    base = qs.order_by().annotate(
        period_=trunc, outcome_status=Lower(Trim("status")), exception_lower=Lower("exception")
    )
    # Typed NULLs: PostgreSQL resolves two untyped NULLs of a UNION to text, which no bigint matches.
    none_int, none_text = Cast(Value(None), BigIntegerField()), Cast(Value(None), CharField())
    parts = {
        job_rollups.FLEET_SCOPE: dict(gid=none_int, wid=none_int, rb=Value(""), gname=none_text, aname=none_text, wname=none_text),
        job_rollups.GROUP_SCOPE: dict(gid=F("group_id"), wid=none_int, rb=Value(""), gname=F("group__name"),
                                      aname=F("group__account__name"), wname=none_text),
        job_rollups.RUNBOOK_SCOPE: dict(gid=none_int, wid=none_int, rb=F("runbook"), gname=none_text, aname=none_text, wname=none_text),
        job_rollups.WORKER_SCOPE: dict(gid=F("group_id"), wid=F("worker_id"), rb=Value(""), gname=F("group__name"),
                                       aname=F("group__account__name"), wname=F("worker__name")),
    }
    aggs = _aggregates()
    queries = []
    for scope in scopes:
        part = base.filter(worker_id__isnull=False) if scope == job_rollups.WORKER_SCOPE else base
        queries.append(
            part.annotate(scope_=Value(scope), **parts[scope])
            .values("period_", "scope_", "gid", "wid", "rb", "gname", "aname", "wname")
            .annotate(**aggs)
        )
    if not queries:
        return []
    union = queries[0].union(*queries[1:], all=True) if len(queries) > 1 else queries[0]
    out = []
    for row in union:
        scope = row.pop("scope_")
        gid, wid, rb = row.pop("gid"), row.pop("wid"), row.pop("rb")
        names = (row.pop("gname"), row.pop("aname"), row.pop("wname"))
        key = {job_rollups.FLEET_SCOPE: "fleet", job_rollups.GROUP_SCOPE: f"g:{gid}",
               job_rollups.RUNBOOK_SCOPE: f"r:{rb}", job_rollups.WORKER_SCOPE: f"w:{wid}"}[scope]
        row["other"] = row["jobs"] - sum(row[name] for name in _OUTCOMES)
        row["queue_sum"] = row["queue_sum"] or 0.0
        row["duration_sum"] = row["duration_sum"] or 0.0
        row["queue_hist"] = _hist(row, "queue")
        row["duration_hist"] = _hist(row, "duration")
        row.update(scope=scope, key=key, group_id=gid, worker_id=wid, runbook=rb or "")
        if labels:
            row.update(zip(("group__name", "group__account__name", "worker__name"), names))
        out.append(row)
    return out
