"""Job rows for the latency and timeouts pages, and the job QuerySet the rollup writer shares.

``hybrid_jobs`` is the one definition of "the jobs latency is about" (jobs on a hybrid worker group
we know); the rollup writer (``workers.latency.rollups``) folds the same rows. Lists are newest or
oldest first with a limit, and a count that never claims fewer rows than are listed.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Count, F, Min, QuerySet

from workers.models import Job, WorkerGroup
from workers.rules import outcomes

DEFAULT_LIST_LIMIT = 200

JOB_ROW_FIELDS: tuple[str, ...] = (
    "job_id", "runbook", "status", "group__name", "group__account__name", "created_at", "started_at",
    "ended_at", "queue_seconds", "duration_seconds", "exception",
)


class GroupNotFound(LookupError):
    """No group of that name (and account)."""


class AmbiguousGroup(ValueError):
    """Two accounts have a group of that name: the caller has to name the account."""


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
class JobList:
    """A limited list of jobs and the total that matched."""

    total: int
    rows: list[JobRow]


@dataclass(frozen=True)
class QueuedNow:
    """Jobs not started yet: how many, the oldest one's age, and the oldest first."""

    count: int
    oldest_seconds: float | None
    jobs: list[JobRow]


def hybrid_jobs() -> QuerySet[Job]:
    """Jobs that ran (or were meant to run) on a hybrid worker group we know; sandbox jobs are excluded."""
    return Job.objects.filter(group__isnull=False)


def job_row(r: dict, **extra) -> JobRow:
    """A ``values(*JOB_ROW_FIELDS)`` dict as a JobRow (the exception text cut to 500 characters)."""
    return JobRow(
        job_id=r["job_id"], runbook=r["runbook"], status=r["status"], group=r["group__name"] or "",
        account=r["group__account__name"] or "", created_at=r["created_at"], started_at=r["started_at"],
        ended_at=r["ended_at"], queue_seconds=r["queue_seconds"], duration_seconds=r["duration_seconds"],
        exception=(r["exception"] or "")[:500], **extra,
    )


def listed(qs: QuerySet, limit: int | None, *, total: int | None = None, rare: bool = False) -> JobList:
    """Newest rows first. ``total`` from the rollups saves the count (and the list when it is 0).

    ``rare``: the matches are few and found through their own indexes; ordering with NULLS LAST (a
    no-op, created_at is NOT NULL) stops PostgreSQL from walking job_created backwards through
    millions of rows to find them under a LIMIT.
    """
    if total is None:
        total = qs.count()
    order = F("created_at").desc(nulls_last=True) if rare else F("created_at").desc()
    rows_qs = qs.order_by(order).values(*JOB_ROW_FIELDS)
    if limit is not None:
        rows_qs = rows_qs[:limit]
    rows = [job_row(r) for r in rows_qs] if total else []
    # The rollup may lag the raw rows by one run: never claim fewer than we list.
    return JobList(total=max(total, len(rows)), rows=rows)


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


def _queued_qs(*, group_id: int | None = None, runbook: str | None = None) -> QuerySet[Job]:
    # ended_at IS NULL first: that is the partial index job_open.
    qs = hybrid_jobs().filter(ended_at__isnull=True, started_at__isnull=True).exclude(status__in=outcomes.TERMINAL_STATUSES)
    if group_id is not None:
        qs = qs.filter(group_id=group_id)
    if runbook is not None:
        qs = qs.filter(runbook=runbook)
    return qs


def queued_now(*, now: datetime, group_id: int | None = None, runbook: str | None = None, limit: int | None = DEFAULT_LIST_LIMIT) -> QueuedNow:
    """Jobs not started yet (any non-terminal status, unknown strings included), oldest first. Two queries."""
    qs = _queued_qs(group_id=group_id, runbook=runbook)
    agg = qs.aggregate(n=Count("id"), oldest=Min("created_at"))
    rows_qs = qs.order_by("created_at").values(*JOB_ROW_FIELDS)
    if limit is not None:
        rows_qs = rows_qs[:limit]
    rows = [job_row(r, age_seconds=(now - r["created_at"]).total_seconds()) for r in rows_qs] if agg["n"] else []
    oldest = (now - agg["oldest"]).total_seconds() if agg["oldest"] else None
    return QueuedNow(count=agg["n"], oldest_seconds=oldest, jobs=rows)
