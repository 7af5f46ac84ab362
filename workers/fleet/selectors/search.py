"""The top bar's search: workers, groups, runbooks and job ids matching what someone typed.

``q`` is untrusted: the view caps its length; here it only ever reaches the ORM as a bound
parameter (``icontains`` / ``iexact`` / ``startswith``), never SQL or a KQL/OData filter. Every kind
is looked up with a limit, so a one-letter query costs the same as a precise one:

- workers and groups: ``icontains`` on the live rows (a fleet has thousands of workers, not
  millions; ``HybridWorker.name`` is indexed for the exact match that redirects);
- runbooks: the names in the daily runbook rollup (``JobDaily``, scope ``runbook``: one row per
  runbook per day, not the millions of raw jobs) plus the runbook thresholds;
- job ids: the exact id through the unique ``(account, job_id)`` index (``account_id IN (…)`` on
  its leading column); a prefix of at least ``JOB_PREFIX_MIN`` id characters is matched only among
  the jobs of the last ``JOB_PREFIX_DAYS`` days (index ``job_created``), newest first, so a typo
  never scans months of jobs.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from workers.models import AutomationAccount, HybridWorker, Job, JobDaily, RollupScope, RunbookThreshold, WorkerGroup

QUERY_MAX = 200  # longer input is refused by the view (Azure names stop at 260, job ids at 36)
LIMIT = 20  # rows per kind
JOB_PREFIX_MIN = 8
JOB_PREFIX_DAYS = 30
RUNBOOK_JOBS_DAYS = 30
RUNBOOK_JOBS_LIMIT = 50
_JOB_ID = re.compile(r"^[0-9A-Fa-f-]+$")


@dataclass(frozen=True)
class WorkerHit:
    id: int
    name: str
    group_id: int
    group: str
    account: str
    status: str


@dataclass(frozen=True)
class GroupHit:
    id: int
    name: str
    account: str
    group_type: str


@dataclass(frozen=True)
class JobHit:
    job_id: str
    account_id: int
    account: str
    runbook: str
    status: str
    group: str
    created_at: datetime


@dataclass(frozen=True)
class SearchResults:
    query: str
    workers: list[WorkerHit] = field(default_factory=list)
    groups: list[GroupHit] = field(default_factory=list)
    runbooks: list[str] = field(default_factory=list)
    jobs: list[JobHit] = field(default_factory=list)
    limit: int = LIMIT

    @property
    def total(self) -> int:
        return len(self.workers) + len(self.groups) + len(self.runbooks) + len(self.jobs)

    @property
    def full(self) -> dict[str, bool]:
        """Per kind, whether it hit the limit (more may match: the page says "first N")."""
        return {kind: len(getattr(self, kind)) >= self.limit for kind in ("workers", "groups", "runbooks", "jobs")}

    @property
    def exact_job(self) -> JobHit | None:
        """The one job whose id is exactly the query (any case), if exactly one is."""
        exact = [j for j in self.jobs if j.job_id.lower() == self.query.lower()]
        return exact[0] if len(exact) == 1 else None

    @property
    def exact_worker(self) -> WorkerHit | None:
        """The one live worker whose name is exactly the query (any case), if exactly one is."""
        exact = [w for w in self.workers if w.name.lower() == self.query.lower()]
        return exact[0] if len(exact) == 1 else None


def looks_like_job_id(query: str) -> bool:
    return len(query) <= 64 and bool(_JOB_ID.match(query))


def search(query: str, *, now: datetime, limit: int = LIMIT) -> SearchResults:
    """Everything matching ``query`` (already stripped and length-checked), at most ``limit`` per
    kind. At most six queries, whatever the fleet size; an empty query finds nothing."""
    if not query:
        return SearchResults(query=query, limit=limit)
    return SearchResults(
        query=query, workers=_workers(query, limit), groups=_groups(query, limit), runbooks=_runbooks(query, limit),
        jobs=_jobs(query, now=now, limit=limit), limit=limit,
    )


def _workers(query: str, limit: int) -> list[WorkerHit]:
    rows = (
        HybridWorker.objects.filter(removed_at__isnull=True, group__removed_at__isnull=True, name__icontains=query)
        .order_by("name", "group__name", "pk")
        .values_list("pk", "name", "group_id", "group__name", "group__account__name", "status")[:limit]
    )
    hits = [WorkerHit(*row) for row in rows]
    # The exact name first (it may sort after longer names that contain it).
    return sorted(hits, key=lambda h: h.name.lower() != query.lower())


def _groups(query: str, limit: int) -> list[GroupHit]:
    rows = (
        WorkerGroup.objects.filter(removed_at__isnull=True, name__icontains=query)
        .order_by("name", "account__name", "pk")
        .values_list("pk", "name", "account__name", "group_type")[:limit]
    )
    return sorted((GroupHit(*row) for row in rows), key=lambda h: h.name.lower() != query.lower())


def _runbooks(query: str, limit: int) -> list[str]:
    rolled = (
        JobDaily.objects.filter(scope=RollupScope.RUNBOOK, runbook__icontains=query)
        .order_by("runbook").values_list("runbook", flat=True).distinct()[:limit]
    )
    named = RunbookThreshold.objects.filter(runbook__icontains=query).values_list("runbook", flat=True)[:limit]
    names = sorted({*rolled, *(n for n in named if n != "*")}, key=lambda n: (n.lower() != query.lower(), n.lower()))
    return names[:limit]


def _jobs(query: str, *, now: datetime, limit: int) -> list[JobHit]:
    if not looks_like_job_id(query):
        return []
    accounts = list(AutomationAccount.objects.values_list("pk", flat=True))
    if not accounts:
        return []
    columns = ("job_id", "account_id", "account__name", "runbook", "status", "group__name", "created_at")
    exact = Job.objects.filter(account_id__in=accounts, job_id__in={query, query.lower(), query.upper()})
    hits = [_job_hit(row) for row in exact.values_list(*columns)[:limit]]
    if len(query) >= JOB_PREFIX_MIN and not hits:
        recent = (
            Job.objects.filter(created_at__gte=now - timedelta(days=JOB_PREFIX_DAYS), job_id__istartswith=query)
            .order_by("-created_at", "-pk")
        )
        hits = [_job_hit(row) for row in recent.values_list(*columns)[:limit]]
    return hits


def _job_hit(row: tuple) -> JobHit:  # type: ignore[type-arg]
    job_id, account_id, account, runbook, status, group, created_at = row
    return JobHit(job_id=job_id, account_id=account_id, account=account, runbook=runbook, status=status,
                  group=group or "", created_at=created_at)


def runbook_jobs(runbook: str, *, now: datetime, limit: int = RUNBOOK_JOBS_LIMIT) -> list[Job]:
    """The newest jobs of one runbook (exact name) in the last ``RUNBOOK_JOBS_DAYS`` days, for the
    search page's runbook view. One query, walking the ``job_created`` index newest first."""
    return list(
        Job.objects.select_related("group", "account")
        .filter(runbook=runbook, created_at__gte=now - timedelta(days=RUNBOOK_JOBS_DAYS))
        .order_by("-created_at", "-pk")[:limit]
    )
