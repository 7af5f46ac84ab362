"""Reads for the pages and the JSON API. Views call these; nothing here writes.

Every function issues a fixed number of queries, independent of how many groups or workers exist
(tests pin the counts): aggregates are computed in SQL with one GROUP BY per concern, never a
query per group. Freshness comes from PollRun (the latest run, and the latest successful run, of
each kind per account), so a failed or overdue poll always reads as stale.
"""
from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Callable, Iterable, TypeVar

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.db.models import Aggregate, Count, Exists, F, FloatField, Max, OuterRef, Q, QuerySet, Subquery

from workers.rules import health
from workers.models import (
    AutomationAccount,
    HybridWorker,
    Job,
    PollKind,
    PollRun,
    StatusChange,
    UtilizationHourly,
    UtilizationSample,
    WorkerGroup,
    WorkerStatus,
)

T = TypeVar("T")

# --- job outcomes ----------------------------------------------------------------------------------
# Azure's job status is an open set; pages group it into these buckets (anything else is "other").
OUTCOMES = ("completed", "failed", "stopped", "suspended", "other")
_OUTCOME_OF = {"completed": "completed", "failed": "failed", "stopped": "stopped", "suspended": "suspended"}


def outcome_of(status: str) -> str:
    return _OUTCOME_OF.get((status or "").strip().lower(), "other")


def empty_outcomes() -> dict[str, int]:
    return {name: 0 for name in OUTCOMES}


class Percentile95(Aggregate):
    """95th percentile (continuous). PostgreSQL computes it; elsewhere see ``_p95``."""

    function = "PERCENTILE_CONT"
    template = "%(function)s(0.95) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = FloatField()


def _p95(values: list[float]) -> float | None:
    """Same definition as PERCENTILE_CONT(0.95): linear interpolation between closest ranks."""
    if not values:
        return None
    ordered = sorted(values)
    rank = 0.95 * (len(ordered) - 1)
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass(frozen=True)
class JobStats:
    outcomes: dict[str, int]
    queue_p95_seconds: float | None


def job_stats_by_group(*, since: datetime, group_ids: Iterable[int] | None = None) -> dict[int, JobStats]:
    """Job counts by outcome and queue-delay p95 (seconds) per group, for jobs created since ``since``.

    One query on every engine: PostgreSQL aggregates in SQL (filtered counts + PERCENTILE_CONT);
    elsewhere one narrow scan of (group, status, queue_seconds) is folded in Python.
    """
    jobs = Job.objects.filter(created_at__gte=since, group__isnull=False)
    if group_ids is not None:
        jobs = jobs.filter(group_id__in=list(group_ids))
    if connection.vendor == "postgresql":
        counts = {name: Count("id", filter=Q(status__iexact=name)) for name in OUTCOMES if name != "other"}
        rows = (
            jobs.values("group_id")
            .annotate(n_all=Count("id"), p95=Percentile95("queue_seconds"), **counts)
            .order_by()
        )
        result = {}
        for row in rows:
            outcomes = {name: row[name] for name in counts}
            outcomes["other"] = row["n_all"] - sum(outcomes.values())
            result[row["group_id"]] = JobStats(outcomes=outcomes, queue_p95_seconds=row["p95"])
        return result
    outcome_counts: dict[int, dict[str, int]] = defaultdict(empty_outcomes)
    delays: dict[int, list[float]] = defaultdict(list)
    for gid, status, seconds in jobs.values_list("group_id", "status", "queue_seconds").order_by().iterator(chunk_size=5000):
        outcome_counts[gid][outcome_of(status)] += 1
        if seconds is not None:
            delays[gid].append(seconds)
    return {gid: JobStats(outcomes=o, queue_p95_seconds=_p95(delays.get(gid, []))) for gid, o in outcome_counts.items()}


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


# --- freshness -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SourceFreshness:
    key: str
    label: str
    interval_seconds: int
    last_ok_at: datetime | None
    age_seconds: float | None
    stale: bool
    error: str


@dataclass(frozen=True)
class Freshness:
    now: datetime
    accounts: int
    ever_polled: bool
    sources: tuple[SourceFreshness, ...]

    @property
    def stale(self) -> bool:
        return self.accounts > 0 and any(s.stale for s in self.sources)

    @property
    def age_seconds(self) -> float | None:
        """Age of the oldest source's data (what a single "data age" figure must report)."""
        ages = [s.age_seconds for s in self.sources]
        if not ages or any(a is None for a in ages):
            return None
        return max(a for a in ages if a is not None)


# (key, label, poll kind, interval setting, needs a Log Analytics workspace)
_SOURCES = (
    ("automation", "Automation", PollKind.WORKERS, "POLL_WORKERS_SECONDS", False),
    ("jobs", "Jobs", PollKind.JOBS, "POLL_JOBS_SECONDS", False),
    ("log_analytics", "Log Analytics", PollKind.HEARTBEAT, "POLL_LOGS_SECONDS", True),
)


def _latest(account_ref: Any, kind: str, field_name: str, *, ok_only: bool, scope: str | None = None) -> Subquery:
    # Only finished runs count: services record a PollRun (ok=False) when a poll starts, and a poll in
    # progress is neither a failure nor fresh data.
    runs = PollRun.objects.filter(account=account_ref, kind=kind, finished_at__isnull=False)
    if scope is not None:
        runs = runs.filter(scope=scope)
    if ok_only:
        runs = runs.filter(ok=True)
    return Subquery(runs.order_by("-started_at").values(field_name)[:1])


def worker_poll_window_seconds() -> int:
    """The stale window of the per-group worker polls: STALE_AFTER_INTERVALS × POLL_WORKERS_SECONDS."""
    return int(settings.STALE_AFTER_INTERVALS) * int(settings.POLL_WORKERS_SECONDS)


def _some_group_polled_ok(account_ref: Any, *, since: datetime) -> Exists:
    """Whether some group's latest worker poll since ``since`` succeeded: a successful run with no
    failed run of the same group (scope) after it. Worker polls run per group, so the account's
    newest worker poll is whichever group happened to finish last; judging the account by it would
    flip the banner between fresh and failing from one poll to the next when one group's poll
    fails. This judges it by every group at once (a failing group is flagged on its own row)."""
    later_failure = PollRun.objects.filter(
        account=OuterRef("account"), kind=PollKind.WORKERS, scope=OuterRef("scope"), ok=False,
        finished_at__isnull=False, started_at__gt=OuterRef("started_at"),
    )
    return Exists(
        PollRun.objects.filter(
            account=account_ref, kind=PollKind.WORKERS, ok=True, finished_at__isnull=False, started_at__gte=since,
        ).filter(~Exists(later_failure))
    )


def _freshness_rows(
    account_ids: Iterable[int] | None, *, now: datetime, group_name: str | None = None
) -> list[dict[str, Any]]:
    accounts = AutomationAccount.objects.filter(enabled=True)
    if account_ids is not None:
        accounts = accounts.filter(pk__in=list(account_ids))
    annotations: dict[str, Subquery | Exists] = {}
    for key, _label, kind, _setting, _needs_ws in _SOURCES:
        # Worker polls run per group (scope = group name): a group page judges its own group's poll.
        scope = group_name if kind == PollKind.WORKERS else None
        annotations[f"{key}_ok_at"] = _latest(OuterRef("pk"), kind, "finished_at", ok_only=True, scope=scope)
        annotations[f"{key}_last_ok"] = _latest(OuterRef("pk"), kind, "ok", ok_only=False, scope=scope)
        annotations[f"{key}_last_error"] = _latest(OuterRef("pk"), kind, "error", ok_only=False, scope=scope)
    if group_name is None:
        since = now - timedelta(seconds=worker_poll_window_seconds())
        annotations["automation_some_group_ok"] = _some_group_polled_ok(OuterRef("pk"), since=since)
    return list(accounts.annotate(**annotations).values("pk", "workspace_id", *annotations.keys()))


def _fold_freshness(rows: list[dict[str, Any]], *, now: datetime) -> Freshness:
    multiple = getattr(settings, "STALE_AFTER_INTERVALS", 3)
    sources: list[SourceFreshness] = []
    ever_polled = False
    for key, label, _kind, setting_name, needs_ws in _SOURCES:
        interval = int(getattr(settings, setting_name, 60))
        relevant = [r for r in rows if r["workspace_id"] or not needs_ws]
        if not relevant:
            continue
        ok_times = [r[f"{key}_ok_at"] for r in relevant]
        ever_polled = ever_polled or any(t is not None for t in ok_times)
        oldest = None if any(t is None for t in ok_times) else min(ok_times)
        # An account's worker polls (one per group) count as failing when no group's latest one
        # succeeded; a single group's failure is that group's flag (worker_poll_problems).
        errors = [
            r[f"{key}_last_error"] or "poll failed" for r in relevant
            if r[f"{key}_last_ok"] is False and not r.get(f"{key}_some_group_ok", False)
        ]
        age = (now - oldest).total_seconds() if oldest is not None else None
        stale = bool(errors) or age is None or age > multiple * interval
        sources.append(SourceFreshness(key, label, interval, oldest, age, stale, "; ".join(errors)))
    return Freshness(now=now, accounts=len(rows), ever_polled=ever_polled, sources=tuple(sources))


def data_freshness(*, now: datetime, account_ids: Iterable[int] | None = None, group_name: str | None = None) -> Freshness:
    """How old the data is per source, over every enabled account (the stalest account wins). One query.

    A source is stale when its latest finished poll failed, when it never succeeded, or when its
    latest success is older than STALE_AFTER_INTERVALS poll intervals. With ``group_name``, the
    Automation source is that group's own worker poll; without it, the account's worker polls
    failed when the latest one of every group polled in that window failed (one group's failing
    poll is flagged on that group: ``worker_poll_problems``).
    """
    return _fold_freshness(_freshness_rows(account_ids, now=now, group_name=group_name), now=now)


def freshness_by_account(*, now: datetime) -> tuple[Freshness, dict[int, Freshness]]:
    """The fleet's freshness and each enabled account's, from the same single query."""
    rows = _freshness_rows(None, now=now)
    return _fold_freshness(rows, now=now), {r["pk"]: _fold_freshness([r], now=now) for r in rows}


def last_successful_poll_at() -> datetime | None:
    """For /healthz and /metrics: each enabled account's newest successful poll (any kind), then the
    oldest of those, so one account whose polling died is visible. None when there is no enabled
    account or one has never polled successfully. One query: a latest-run subquery per (account, kind)
    walks the ``pollrun_latest`` index instead of scanning every PollRun.
    """
    annotations = {f"ok_{kind}": _latest(OuterRef("pk"), kind, "finished_at", ok_only=True) for kind in PollKind.values}
    rows = AutomationAccount.objects.filter(enabled=True).annotate(**annotations).values_list(*annotations)
    newest_per_account: list[datetime] = []
    for row in rows:
        times = [t for t in row if t is not None]
        if not times:
            return None
        newest_per_account.append(max(times))
    return min(newest_per_account) if newest_per_account else None


# --- overview --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class GroupSummary:
    id: int
    name: str
    account: str
    account_id: int
    group_type: str
    health: str
    workers_total: int
    workers_online: int
    workers_late: int
    workers_offline: int
    workers_never: int
    v1_workers: int
    jobs_24h: dict[str, int]
    queue_p95_seconds_24h: float | None
    # Why this group's own worker poll is failing or overdue ("" when it is fine): its member
    # counts are then the last known state, not live, even if the account's other polls are fine.
    poll_problem: str = ""
    first_seen_at: datetime | None = None  # when a groups poll first listed it

    @property
    def single_member(self) -> bool:
        return health.is_single_member(self.workers_total)

    @property
    def system_group(self) -> bool:
        return health.is_system_group(self.group_type)

    @property
    def flags(self) -> list[str]:
        flags = []
        if self.single_member:
            flags.append("single_member")
        if self.system_group:
            flags.append("system_group")
        if self.v1_workers:
            flags.append("v1_worker")
        if self.workers_never:
            flags.append("never_reported")
        if self.poll_problem:
            flags.append("worker_poll_failing")
        return flags

    @property
    def jobs_24h_total(self) -> int:
        return sum(self.jobs_24h.values())


@dataclass(frozen=True)
class FleetTotals:
    groups: int
    workers_total: int
    workers_online: int
    workers_late: int
    workers_offline: int
    groups_down: int
    groups_degraded: int
    jobs_24h: dict[str, int]


@dataclass(frozen=True)
class Overview:
    groups: list[GroupSummary]
    totals: FleetTotals
    window_hours: int = 24

    @property
    def unpolled(self) -> list[GroupSummary]:
        """The groups whose own worker poll is failing or overdue (their counts are the last known state)."""
        return [g for g in self.groups if g.poll_problem]


def member_counts(*, v1: bool = True) -> dict[str, Count]:
    """Annotations counting a group's live members by status (and V1 workers), for group querysets."""
    live = Q(workers__removed_at__isnull=True)
    counts = {
        "n_total": Count("workers", filter=live),
        "n_online": Count("workers", filter=live & Q(workers__status=WorkerStatus.ONLINE)),
        "n_late": Count("workers", filter=live & Q(workers__status=WorkerStatus.LATE)),
        "n_offline": Count("workers", filter=live & Q(workers__status=WorkerStatus.OFFLINE)),
        "n_never": Count("workers", filter=live & Q(workers__status=WorkerStatus.NEVER)),
    }
    if v1:
        counts["n_v1"] = Count("workers", filter=live & Q(workers__worker_type__iexact="HybridV1"))
    return counts


def _live_groups() -> QuerySet[WorkerGroup]:
    return (
        WorkerGroup.objects.filter(removed_at__isnull=True, account__enabled=True)
        .select_related("account")
        .annotate(**member_counts())
    )


# What a group row of the overview needs; plain values, no model instances (hundreds of rows).
_ROW_FIELDS = ("id", "name", "group_type", "account_id", "first_seen_at", *member_counts())


def _live_group_rows() -> list[dict[str, Any]]:
    """Every live group as a plain dict with its member counts. One query."""
    return list(
        WorkerGroup.objects.filter(removed_at__isnull=True, account__enabled=True)
        .values("id", "name", "group_type", "account_id", "first_seen_at", account_name=F("account__name"))
        .annotate(**member_counts())
        .order_by()
    )


def _row_of(group: WorkerGroup) -> dict[str, Any]:
    row = {name: getattr(group, name) for name in _ROW_FIELDS}
    row["account_name"] = group.account.name
    return row


def group_summaries(
    *, now: datetime, groups: list[WorkerGroup] | None = None, version: tuple[tuple[int, Any], ...] | None = None,
) -> list[GroupSummary]:
    """Groups (default: every live group) with member counts, 24 h job outcomes and queue p95, worst
    first. For every live group: the groups query, the job data version and, once per jobs poll, the
    job aggregate (``fleet_job_stats``). For ``groups`` rows from ``_live_groups``: one query."""
    since = now - timedelta(hours=24)
    if groups is not None:
        rows = [_row_of(g) for g in groups]
        stats = job_stats_by_group(since=since, group_ids=[g.pk for g in groups])
    else:
        rows = _live_group_rows()
        stats = fleet_job_stats(since=since, now=now, version=version)
    summaries = []
    for r in rows:
        total, online, late = r["n_total"], r["n_online"], r["n_late"]
        found = stats.get(r["id"])
        summaries.append(
            GroupSummary(
                id=r["id"], name=r["name"], account=r["account_name"], account_id=r["account_id"], group_type=r["group_type"],
                health=health.health_from_counts(total=total, online=online, late=late),
                workers_total=total, workers_online=online, workers_late=late,
                workers_offline=r["n_offline"], workers_never=r["n_never"], v1_workers=r["n_v1"],
                jobs_24h=dict(found.outcomes) if found else empty_outcomes(),
                queue_p95_seconds_24h=found.queue_p95_seconds if found else None,
                first_seen_at=r["first_seen_at"],
            )
        )
    rank = health.GROUP_HEALTH_RANK
    summaries.sort(key=lambda s: (rank.get(s.health, 9), -s.workers_offline, -(s.workers_total - s.workers_online), s.name.lower(), s.account))
    return summaries


def poll_problem_rank(rank: float, poll_problem: bool) -> float:
    """Where a group sorts, worst first: its health's rank, except that a group whose own worker poll
    is failing (its counts are the last known state) sorts no later than just after degraded groups."""
    return min(rank, health.GROUP_HEALTH_RANK[health.GroupHealth.DEGRADED] + 0.5) if poll_problem else rank


def worker_poll_problems(*, now: datetime, groups: Iterable[tuple[int, str, datetime | None]]) -> dict[tuple[int, str], str]:
    """(account id, group name) -> why that group's own worker poll is failing or overdue.

    Worker polls run per group, so one group's poll can fail (its name was renamed, a permission,
    a throttled call) while the account's other polls carry on and the account looks fresh. Looks at
    the finished worker polls of the last STALE_AFTER_INTERVALS intervals (the stale window): a group
    whose latest one failed is reported with the error; a group with none in the window, in an
    account whose other groups were polled in it, is reported as overdue (``groups``: the live
    groups as (account id, name, first_seen_at)). One query over that
    window's PollRuns (the ``pollrun_latest`` index), plus one for the error texts when a poll failed.
    """
    window = worker_poll_window_seconds()
    since = now - timedelta(seconds=window)
    recent = PollRun.objects.filter(
        kind=PollKind.WORKERS, started_at__gte=since, finished_at__isnull=False, account__enabled=True,
    )
    latest = {
        (r["account_id"], r["scope"]): r
        for r in recent.values("account_id", "scope").annotate(last=Max("started_at"), last_ok=Max("started_at", filter=Q(ok=True))).order_by()
    }
    problems: dict[tuple[int, str], str] = {}
    failing = [key for key, r in latest.items() if r["last_ok"] is None or r["last_ok"] < r["last"]]
    if failing:
        errors: dict[tuple[int, str], str] = {}
        for account_id, scope, error in (
            recent.filter(ok=False, scope__in={scope for _a, scope in failing}).order_by("-started_at").values_list("account_id", "scope", "error")
        ):
            errors.setdefault((account_id, scope), error)
        for key in failing:
            problems[key] = f"worker poll failing: {errors.get(key) or 'poll failed'}"[:300]
    polled_accounts = {account_id for account_id, _scope in latest}
    for account_id, name, first_seen_at in groups:
        key = (account_id, name)
        # A group first listed inside the window may simply not have been polled yet.
        if account_id in polled_accounts and key not in latest and first_seen_at is not None and first_seen_at < since:
            problems[key] = f"no worker poll of this group for over {window} s"
    return problems


def fleet_overview(*, now: datetime, version: tuple[tuple[int, Any], ...] | None = None) -> Overview:
    """The overview page and /api/v1/groups: all groups worst first, plus fleet totals, and which
    groups' own worker polls are failing. Three queries (the groups, the recent worker polls, the job
    data version unless passed in; one more when a poll is failing), plus the job aggregate once per
    jobs poll."""
    groups = group_summaries(now=now, version=version)
    problems = worker_poll_problems(now=now, groups=[(g.account_id, g.name, g.first_seen_at) for g in groups])
    if problems:
        groups = [replace(g, poll_problem=problems[(g.account_id, g.name)]) if (g.account_id, g.name) in problems else g for g in groups]
        # Last known state is not "healthy": a group nobody can poll ranks right after the degraded ones.
        groups.sort(key=lambda g: poll_problem_rank(health.GROUP_HEALTH_RANK.get(g.health, 9), bool(g.poll_problem)))
    jobs: dict[str, int] = empty_outcomes()
    for g in groups:
        for k, v in g.jobs_24h.items():
            jobs[k] += v
    totals = FleetTotals(
        groups=len(groups),
        workers_total=sum(g.workers_total for g in groups),
        workers_online=sum(g.workers_online for g in groups),
        workers_late=sum(g.workers_late for g in groups),
        workers_offline=sum(g.workers_offline for g in groups),
        groups_down=sum(1 for g in groups if g.health == "down"),
        groups_degraded=sum(1 for g in groups if g.health == "degraded"),
        jobs_24h=jobs,
    )
    return Overview(groups=groups, totals=totals)


def find_groups(*, name: str, account: str | None = None) -> list[WorkerGroup]:
    """Live groups with this name (a name can repeat across accounts). One query."""
    groups = WorkerGroup.objects.filter(name=name, removed_at__isnull=True).select_related("account")
    if account:
        groups = groups.filter(account__name=account)
    return list(groups)


# --- group detail ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class UtilPoint:
    ts: datetime
    cpu: float | None
    mem: float | None


@dataclass(frozen=True)
class GroupDetail:
    group: WorkerGroup
    summary: GroupSummary
    members: list[HybridWorker]
    utilization: dict[int, list[UtilPoint]]
    recent_jobs: list[Job]


def group_detail(*, group_id: int, now: datetime, jobs_limit: int = 50) -> GroupDetail | None:
    """A group, its members, their 24 h hourly CPU/memory, and its latest jobs. Five queries."""
    rows = list(_live_groups().filter(pk=group_id))
    if not rows:
        return None
    group = rows[0]
    summary = group_summaries(now=now, groups=rows)[0]
    members = list(HybridWorker.objects.filter(group_id=group_id, removed_at__isnull=True).order_by("name"))
    since = now - timedelta(hours=24)
    util: dict[int, list[UtilPoint]] = defaultdict(list)
    hourly = (
        UtilizationHourly.objects.filter(worker__group_id=group_id, worker__removed_at__isnull=True, hour__gte=since)
        .order_by("worker_id", "hour")
        .values_list("worker_id", "hour", "cpu_avg", "mem_avg")
    )
    for wid, hour, cpu, mem in hourly:
        util[wid].append(UtilPoint(hour, cpu, mem))
    jobs = list(Job.objects.filter(group_id=group_id).order_by("-created_at")[:jobs_limit])
    return GroupDetail(group=group, summary=summary, members=members, utilization=dict(util), recent_jobs=jobs)


# --- worker detail ---------------------------------------------------------------------------------
WORKER_WINDOWS = {"24h": timedelta(hours=24), "7d": timedelta(days=7)}


@dataclass(frozen=True)
class WorkerDetail:
    worker: HybridWorker
    window: str
    utilization: list[UtilPoint]
    utilization_resolution: str
    sample_times: list[datetime]
    changes: list[StatusChange]
    group_jobs: list[Job]
    group_size: int
    jobs_attributed: bool
    # Signal source ("automation", "heartbeat") -> observed spans (start, end) in the window, oldest
    # first, clipped to [since, now]; a source with nothing in the window maps to [].
    spans: dict[str, list[tuple[datetime, datetime]]]


def worker_detail(*, worker_id: int, now: datetime, window: str = "24h", jobs_limit: int = 50) -> WorkerDetail | None:
    """One worker: CPU/memory over the window, signal presence, its Automation/Heartbeat signal spans,
    status history, its group's jobs. Six queries.

    24 h reads one-minute samples; 7 d reads the hourly rollup (what a page can afford at fleet scale).
    Signal spans come from the ``(worker, source, end_at)`` index: those still open at ``since``.
    """
    worker = HybridWorker.objects.select_related("group", "group__account").filter(pk=worker_id).first()
    if worker is None:
        return None
    since = now - WORKER_WINDOWS[window]
    if window == "24h":
        rows = list(
            UtilizationSample.objects.filter(worker_id=worker_id, ts__gte=since).order_by("ts").values_list("ts", "cpu_pct", "mem_pct")
        )
        util = [UtilPoint(ts, cpu, mem) for ts, cpu, mem in rows]
        resolution = "1-minute samples"
    else:
        hourly = UtilizationHourly.objects.filter(worker_id=worker_id, hour__gte=since).order_by("hour")
        util = [UtilPoint(h, c, m) for h, c, m in hourly.values_list("hour", "cpu_avg", "mem_avg")]
        resolution = "hourly averages"
    sample_times = [p.ts for p in util]
    changes = list(StatusChange.objects.filter(worker_id=worker_id, created_at__gte=since).order_by("created_at"))
    spans: dict[str, list[tuple[datetime, datetime]]] = {health.AUTOMATION: [], health.HEARTBEAT: []}
    span_rows = (
        worker.signal_spans.filter(end_at__gte=since, start_at__lte=now)
        .order_by("source", "start_at")
        .values_list("source", "start_at", "end_at")
    )
    for source, start, end in span_rows:
        spans.setdefault(source, []).append((max(start, since), min(end, now)))
    group_size = HybridWorker.objects.filter(group_id=worker.group_id, removed_at__isnull=True).count()
    jobs = list(Job.objects.filter(group_id=worker.group_id).order_by("-created_at")[:jobs_limit])
    return WorkerDetail(
        worker=worker, window=window, utilization=util, utilization_resolution=resolution, sample_times=sample_times,
        changes=changes, group_jobs=jobs, group_size=group_size, jobs_attributed=group_size == 1, spans=spans,
    )


# --- workers list (API) ----------------------------------------------------------------------------
def workers_in_groups(group_ids: list[int]) -> list[HybridWorker]:
    """Live members of these groups, with group and account names. One query."""
    return list(
        HybridWorker.objects.filter(group_id__in=group_ids, removed_at__isnull=True)
        .select_related("group", "group__account")
        .order_by("group__name", "name")
    )


# --- jobs list -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class JobPage:
    jobs: list[Job]
    total: int  # exact when ``total_capped`` is False, else JOBS_COUNT_CAP ("at least")
    page: int
    page_size: int
    total_capped: bool = False
    more: bool = False  # a row exists after this page (known without counting every match)

    @property
    def has_next(self) -> bool:
        return self.more

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.page_size))


# Counting every job of a 30-day fleet (millions of rows) costs more than the page itself; the
# count stops here and the pages say "more than 10,000".
JOBS_COUNT_CAP = 10_000


def jobs_page(
    *, group_ids: list[int] | None = None, status: str | None = None, since: datetime | None = None,
    page: int = 1, page_size: int = 50,
) -> JobPage:
    """Jobs newest first, filtered and paginated. Two queries (a count that stops after
    JOBS_COUNT_CAP matches, then the page plus one row to know whether another page follows)."""
    jobs = Job.objects.select_related("group", "account")
    if group_ids is not None:
        jobs = jobs.filter(group_id__in=group_ids)
    if status:
        jobs = jobs.filter(status__iexact=status)
    if since is not None:
        jobs = jobs.filter(created_at__gte=since)
    counted = jobs.order_by()[: JOBS_COUNT_CAP + 1].count()
    capped = counted > JOBS_COUNT_CAP
    total = min(counted, JOBS_COUNT_CAP)
    offset = (page - 1) * page_size
    rows: list[Job] = []
    if offset < counted or capped:
        rows = list(jobs.order_by("-created_at", "-pk")[offset : offset + page_size + 1])
    more = len(rows) > page_size
    return JobPage(jobs=rows[:page_size], total=total, page=page, page_size=page_size, total_capped=capped, more=more)


def group_choices() -> list[tuple[int, str, str]]:
    """(id, name, account) of live groups for filter drop-downs. One query."""
    return list(
        WorkerGroup.objects.filter(removed_at__isnull=True).order_by("name", "account__name").values_list("pk", "name", "account__name")
    )


# --- /metrics --------------------------------------------------------------------------------------
def worker_status_counts() -> list[tuple[str, str, str, int]]:
    """(account, group, status, count) for every live group. One query."""
    rows = (
        HybridWorker.objects.filter(removed_at__isnull=True, group__removed_at__isnull=True)
        .values_list("group__account__name", "group__name", "status")
        .annotate(n=Count("id"))
        .order_by("group__account__name", "group__name", "status")
    )
    return list(rows)
