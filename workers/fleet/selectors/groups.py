"""The group row: one live group as every list of groups shows it (the overview, /api/v1/groups,
the group page, the wall's tiles), from one query (``workers.db.live_groups``) and sorted by one key
(``workers.rules.health.worst_first``). Also: why a group's own worker poll is failing, and the
plain group and member lookups of the API and /metrics.

Every function issues a fixed number of queries, independent of how many groups or workers exist.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Count, Max, Q

from workers.db import live_groups
from workers.fleet.selectors.job_stats import JobStats
from workers.fleet.selectors.poll_evidence import stale_after_seconds
from workers.models import HybridWorker, PollKind, PollRun, WorkerGroup
from workers.rules import health
from workers.rules.outcomes import empty_outcomes


@dataclass(frozen=True)
class GroupRow:
    """One live group with its member counts, as the overview, the API, the group page and the wall
    show it (the wall's tile adds its own figures on top: ``workers.wall.selectors.WallTile``)."""

    id: int
    name: str
    account: str
    account_id: int
    group_type: str
    members: health.GroupSummary
    first_seen_at: datetime | None = None  # when a groups poll first listed it
    # Why this group's own worker poll is failing or overdue ("" when it is fine): its member
    # counts are then the last known state, not live, even if the account's other polls are fine.
    poll_problem: str = ""
    # The last 24 h of jobs; None when the group had none (or the caller did not ask: the wall).
    jobs: JobStats | None = None

    @property
    def health(self) -> str:
        return self.members.health

    @property
    def single_member(self) -> bool:
        return self.members.single_member

    @property
    def system_group(self) -> bool:
        return health.is_system_group(self.group_type)

    @property
    def flags(self) -> list[str]:
        """Codes of what deserves a second look, in display order."""
        flags = []
        if self.single_member:
            flags.append("single_member")
        if self.system_group:
            flags.append("system_group")
        if self.members.v1:
            flags.append("v1_worker")
        if self.members.never:
            flags.append("never_reported")
        if self.poll_problem:
            flags.append("worker_poll_failing")
        return flags

    @property
    def jobs_24h(self) -> dict[str, int]:
        """Jobs created in the last 24 h by outcome."""
        return dict(self.jobs.outcomes) if self.jobs else empty_outcomes()

    @property
    def jobs_24h_total(self) -> int:
        return sum(self.jobs_24h.values())

    @property
    def queue_p95_seconds_24h(self) -> float | None:
        return self.jobs.queue_p95_seconds if self.jobs else None

    def sort_key(self, *, open_alerts: int = 0) -> tuple[Any, ...]:
        """Where this group sorts in every list of groups, worst first (``health.worst_first``)."""
        return health.worst_first(
            self.members, poll_problem=bool(self.poll_problem), name=self.name, account=self.account, open_alerts=open_alerts,
        )


def group_rows(
    *, now: datetime | None, ids: Sequence[int] | None = None, account: str = "", names: Sequence[str] = (),
) -> list[GroupRow]:
    """The live groups (see ``workers.db.live_groups`` for the filters) as rows, unsorted, without jobs.

    With ``now``, each row says why its own worker poll is failing (``worker_poll_problems``: one
    more query, two when a poll failed); without it that is not looked at (the group page judges
    its own group's poll through its freshness). One query for the groups.
    """
    found = list(live_groups(ids=ids, account=account, names=names))
    problems: dict[tuple[int, str], str] = {}
    if now is not None:
        problems = worker_poll_problems(now=now, groups=[(r["account_id"], r["name"], r["first_seen_at"]) for r in found])
    return [
        GroupRow(
            id=r["id"], name=r["name"], account=r["account_name"], account_id=r["account_id"], group_type=r["group_type"],
            members=health.GroupSummary(
                total=r["n_total"], online=r["n_online"], late=r["n_late"], offline=r["n_offline"],
                never=r["n_never"], v1=r["n_v1"],
            ),
            first_seen_at=r["first_seen_at"],
            poll_problem=problems.get((r["account_id"], r["name"]), ""),
        )
        for r in found
    ]


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
    window = stale_after_seconds(PollKind.WORKERS)
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


def find_groups(*, name: str, account: str | None = None) -> list[WorkerGroup]:
    """Live groups with this name (a name can repeat across accounts). One query."""
    groups = WorkerGroup.objects.filter(name=name, removed_at__isnull=True).select_related("account")
    if account:
        groups = groups.filter(account__name=account)
    return list(groups)


def workers_in_groups(group_ids: list[int]) -> list[HybridWorker]:
    """Live members of these groups, with group and account names. One query."""
    return list(
        HybridWorker.objects.filter(group_id__in=group_ids, removed_at__isnull=True)
        .select_related("group", "group__account")
        .order_by("group__name", "name")
    )


def worker_status_counts() -> list[tuple[str, str, str, int]]:
    """(account, group, status, count) for every live group. One query."""
    rows = (
        HybridWorker.objects.filter(removed_at__isnull=True, group__removed_at__isnull=True)
        .values_list("group__account__name", "group__name", "status")
        .annotate(n=Count("id"))
        .order_by("group__account__name", "group__name", "status")
    )
    return list(rows)
