"""SQL helpers shared by the reads (and the writes that need the same SQL): one home each.

- ``Percentile95``: the SQL percentile. PostgreSQL computes ``PERCENTILE_CONT(0.95)``; on the other
  engines callers fold the values with ``workers.rules.stats.percentile`` (the same definition:
  linear interpolation between closest ranks), so a figure is the same whichever engine computed it.
  ``p95_and_count`` does either for one queryset.
- The live groups with their member counts by status (``member_counts``, ``live_groups``): the
  one query behind every group row (overview, API, group page, wall).
- Time buckets (``EpochBucket``, ``EpochSeconds``): timestamps as bucket numbers or epoch seconds,
  computed by the database on PostgreSQL and SQLite alike.

Nothing here writes.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from django.db import connection
from django.db.models import Aggregate, Count, F, FloatField, Func, IntegerField, Q, QuerySet

from workers.models import WorkerGroup, WorkerStatus
from workers.rules.stats import percentile


class Percentile95(Aggregate):
    """95th percentile (continuous), PostgreSQL only; elsewhere ``workers.rules.stats.percentile``."""

    function = "PERCENTILE_CONT"
    template = "%(function)s(0.95) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = FloatField()


def p95_and_count(rows: QuerySet[Any], field: str) -> tuple[float | None, int]:
    """The 95th percentile of ``field`` over ``rows`` (rows where it is NULL left out) and how many
    values it was computed over. One query on every engine: in SQL on PostgreSQL, else one narrow
    scan folded by ``workers.rules.stats.percentile``."""
    rows = rows.filter(**{f"{field}__isnull": False})
    if connection.vendor == "postgresql":
        row = rows.aggregate(p95=Percentile95(field), n=Count("pk"))
        return row["p95"], row["n"]
    values = list(rows.values_list(field, flat=True))
    return percentile(values, 95), len(values)


def member_counts() -> dict[str, Count]:
    """Annotations counting a group's live members by status, and its V1 workers, for group querysets:
    ``n_total``, ``n_online``, ``n_late``, ``n_offline``, ``n_never``, ``n_v1``."""
    live = Q(workers__removed_at__isnull=True)
    return {
        "n_total": Count("workers", filter=live),
        # V1 (agent-based, retired) members never count as online capacity (rules.health.GroupSummary).
        "n_online": Count("workers", filter=live & Q(workers__status=WorkerStatus.ONLINE) & ~Q(workers__worker_type__iexact="HybridV1")),
        "n_late": Count("workers", filter=live & Q(workers__status=WorkerStatus.LATE)),
        "n_offline": Count("workers", filter=live & Q(workers__status=WorkerStatus.OFFLINE)),
        "n_never": Count("workers", filter=live & Q(workers__status=WorkerStatus.NEVER)),
        "n_v1": Count("workers", filter=live & Q(workers__worker_type__iexact="HybridV1")),
    }


# The fields of a live-group row (``live_groups``): plain values, no model instances (a wall or
# the overview shows hundreds of groups, every few seconds).
GROUP_ROW_FIELDS: tuple[str, ...] = ("id", "name", "group_type", "account_id", "account_name", "first_seen_at", *member_counts())


def live_groups(
    *, ids: Sequence[int] | None = None, account: str = "", names: Sequence[str] = (),
) -> QuerySet[WorkerGroup, dict[str, Any]]:
    """Groups not removed from Azure, in enabled accounts, as plain dicts with ``GROUP_ROW_FIELDS``
    (the member counts are ``member_counts``), in no particular order. One query.

    ``ids`` keeps those groups; ``account`` one account (name, case-insensitive); ``names`` the
    groups with any of these names (case-insensitive, each a parameter: no string pasted into SQL).
    """
    groups = WorkerGroup.objects.filter(removed_at__isnull=True, account__enabled=True)
    if ids is not None:
        groups = groups.filter(pk__in=list(ids))
    if account:
        groups = groups.filter(account__name__iexact=account)
    if names:
        by_name = Q()
        for name in names:
            by_name |= Q(name__iexact=name)
        groups = groups.filter(by_name)
    # The stubs' row TypedDict omits the member_counts annotations: the rows are plain dicts.
    return cast("QuerySet[WorkerGroup, dict[str, Any]]", (
        groups.values("id", "name", "group_type", "account_id", "first_seen_at", account_name=F("account__name"))
        .annotate(**member_counts())
        .order_by()
    ))


# --- time buckets (the capacity analysis buckets jobs and utilization in SQL) --------------------


class EpochBucket(Func):
    """Integer bucket number of a timestamp: floor(epoch seconds / size), on PostgreSQL and SQLite."""

    output_field = IntegerField()

    def __init__(self, expression: Any, size: int) -> None:
        super().__init__(expression)
        self.size = int(size)

    def as_sql(self, compiler, connection, **extra):  # type: ignore[override]
        sql, params = compiler.compile(self.source_expressions[0])
        return f"CAST(FLOOR(EXTRACT(EPOCH FROM {sql}) / {self.size}) AS BIGINT)", params

    def as_sqlite(self, compiler, connection, **extra):  # type: ignore[override]
        sql, params = compiler.compile(self.source_expressions[0])
        return f"(CAST(ROUND((julianday({sql}) - 2440587.5) * 86400) AS INTEGER) / {self.size})", params


class EpochSeconds(Func):
    """A timestamp as float epoch seconds, on PostgreSQL and SQLite."""

    output_field = FloatField()

    def as_sql(self, compiler, connection, **extra):  # type: ignore[override]
        sql, params = compiler.compile(self.source_expressions[0])
        return f"CAST(EXTRACT(EPOCH FROM {sql}) AS DOUBLE PRECISION)", params

    def as_sqlite(self, compiler, connection, **extra):  # type: ignore[override]
        sql, params = compiler.compile(self.source_expressions[0])
        return f"((julianday({sql}) - 2440587.5) * 86400.0)", params
