"""How old the data is: per source (Automation, Jobs, Log Analytics, HybridWorkerPing), over the enabled accounts.

Freshness comes from PollRun (the latest run, and the latest successful run, of each kind per
account), so a failed or overdue poll always reads as stale. Which runs count (finished ones: a poll
in flight is neither a failure nor fresh data) and when data is stale are decided in
``workers.fleet.selectors.poll_evidence``, the rule the blind alert reads too. One query per call,
whatever the fleet size.

The ping is a source only for the accounts whose ping poll has succeeded at least once
(``poll_evidence.ping_ever_read``): an account where the metric is refused or has no series for us
was never watched through it, so it is listed as "not available" (``Freshness.unavailable``), never
stale. Once it has worked, a failing or overdue ping poll is stale like any other source.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Exists, OuterRef, Subquery

from workers.fleet.selectors.poll_evidence import finished_polls, poll_interval_seconds, stale_after_seconds
from workers.models import AutomationAccount, PollKind


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
    # Labels of the sources no account has (the ping where it was never read): shown as "not available".
    unavailable: tuple[str, ...] = ()

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


# Which accounts a source covers: every account, those with a Log Analytics workspace, or those
# whose poll of it has succeeded at least once (the ping: a metric we may never be able to read).
EVERY, WORKSPACE, EVER_READ = "every", "workspace", "ever_read"

# (key, label, poll kind, which accounts it covers)
_SOURCES = (
    ("automation", "Automation", PollKind.WORKERS, EVERY),
    ("jobs", "Jobs", PollKind.JOBS, EVERY),
    ("log_analytics", "Log Analytics", PollKind.HEARTBEAT, WORKSPACE),
    ("ping", "HybridWorkerPing", PollKind.PING, EVER_READ),
)


def _covers(row: dict[str, Any], key: str, covers: str) -> bool:
    if covers == WORKSPACE:
        return bool(row["workspace_id"])
    if covers == EVER_READ:
        # The latest successful run exists exactly when one ever succeeded (retention keeps it).
        return row[f"{key}_ok_at"] is not None
    return True


def _latest(account_ref: Any, kind: str, field_name: str, *, ok_only: bool, scope: str | None = None) -> Subquery:
    # Only finished runs count (poll_evidence): a poll in progress is neither a failure nor fresh data.
    runs = finished_polls(account=account_ref, kind=kind)
    if scope is not None:
        runs = runs.filter(scope=scope)
    if ok_only:
        runs = runs.filter(ok=True)
    return Subquery(runs.order_by("-started_at").values(field_name)[:1])


def _some_group_polled_ok(account_ref: Any, *, since: datetime) -> Exists:
    """Whether some group's latest worker poll since ``since`` succeeded: a successful run with no
    failed run of the same group (scope) after it. Worker polls run per group, so the account's
    newest worker poll is whichever group happened to finish last; judging the account by it would
    flip the banner between fresh and failing from one poll to the next when one group's poll
    fails. This judges it by every group at once (a failing group is flagged on its own row)."""
    later_failure = finished_polls(
        account=OuterRef("account"), kind=PollKind.WORKERS, scope=OuterRef("scope"), ok=False,
        started_at__gt=OuterRef("started_at"),
    )
    return Exists(
        finished_polls(account=account_ref, kind=PollKind.WORKERS, ok=True, started_at__gte=since).filter(~Exists(later_failure))
    )


def _freshness_rows(
    account_ids: Iterable[int] | None, *, now: datetime, group_name: str | None = None
) -> list[dict[str, Any]]:
    accounts = AutomationAccount.objects.filter(enabled=True)
    if account_ids is not None:
        accounts = accounts.filter(pk__in=list(account_ids))
    annotations: dict[str, Subquery | Exists] = {}
    for key, _label, kind, _covers_which in _SOURCES:
        # Worker polls run per group (scope = group name): a group page judges its own group's poll.
        scope = group_name if kind == PollKind.WORKERS else None
        annotations[f"{key}_ok_at"] = _latest(OuterRef("pk"), kind, "finished_at", ok_only=True, scope=scope)
        annotations[f"{key}_last_ok"] = _latest(OuterRef("pk"), kind, "ok", ok_only=False, scope=scope)
        annotations[f"{key}_last_error"] = _latest(OuterRef("pk"), kind, "error", ok_only=False, scope=scope)
    if group_name is None:
        since = now - timedelta(seconds=stale_after_seconds(PollKind.WORKERS))
        annotations["automation_some_group_ok"] = _some_group_polled_ok(OuterRef("pk"), since=since)
    return list(accounts.annotate(**annotations).values("pk", "workspace_id", *annotations.keys()))


def _fold_freshness(rows: list[dict[str, Any]], *, now: datetime) -> Freshness:
    sources: list[SourceFreshness] = []
    unavailable: list[str] = []
    ever_polled = False
    for key, label, kind, covers in _SOURCES:
        interval = poll_interval_seconds(kind)
        relevant = [r for r in rows if _covers(r, key, covers)]
        if not relevant:
            if rows and covers == EVER_READ:
                unavailable.append(label)
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
        stale = bool(errors) or age is None or age > stale_after_seconds(kind)
        sources.append(SourceFreshness(key, label, interval, oldest, age, stale, "; ".join(errors)))
    return Freshness(now=now, accounts=len(rows), ever_polled=ever_polled, sources=tuple(sources), unavailable=tuple(unavailable))


def data_freshness(*, now: datetime, account_ids: Iterable[int] | None = None, group_name: str | None = None) -> Freshness:
    """How old the data is per source, over every enabled account (the stalest account wins). One query.

    A source is stale when its latest finished poll failed, when it never succeeded, or when its
    latest success is older than STALE_AFTER_INTERVALS poll intervals. The ping counts only for the
    accounts where it was ever read; where no account has it, it is in ``unavailable`` instead. With ``group_name``, the
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
