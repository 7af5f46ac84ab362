"""Reads for the NOC wall (``/wall/`` and its JSON feed): every group as a tile, worst first, plus
fleet totals and how old the data is.

A wall polls this every few seconds from several screens, so the whole snapshot costs a fixed
number of queries whatever the fleet size (tests pin it): one for the groups with their member
counts (the same group rows as the overview: ``workers.fleet.selectors.groups``), one for the job data version,
one for open alerts, one for the groups' recent worker polls
(plus one for the error text when one failed), and the freshness query shared with the other pages;
once per jobs poll (``per_jobs_poll``) two more for the jobs queued now and the 24 h
queue-delay p95, which every screen then shares. Nothing here writes, so running it any
number of times is harmless.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Count, Q

from workers.db import p95_and_count
from workers.fleet.selectors.freshness import data_freshness
from workers.fleet.selectors.groups import GroupRow, group_rows
from workers.fleet.selectors.job_stats import FLEET_JOB_STATS_MAX_AGE, jobs_data_version, per_jobs_poll
from workers.models import Alert, AutomationAccount, Job
from workers.rules.health import GROUP_HEALTH_RANK

# Azure job statuses that mean "created, not picked up by a worker yet". "Queued" is not in the
# SDK's enum but real accounts (and the emulator) report it; unknown strings are simply not counted.
QUEUED_STATUSES: tuple[str, ...] = ("New", "Activating", "Queued", "Resuming")
P95_WINDOW = timedelta(hours=24)
# Hard cap on ?groups= names: a wall lists tens of groups by name, never thousands.
MAX_GROUP_FILTER = 500


@dataclass(frozen=True)
class WallFilters:
    """What the viewer asked for: group names (case-insensitive) and an account name."""

    groups: tuple[str, ...] = ()
    account: str = ""

    @property
    def active(self) -> bool:
        return bool(self.groups or self.account)


@dataclass(frozen=True)
class WallTile:
    """A group's tile: its row (the same one the overview and the API show) plus the wall's figures."""

    group: GroupRow
    queued: int  # jobs waiting for a worker now
    open_alerts: int
    acknowledged_alerts: int = 0  # of the open alerts, those someone acknowledged

    @property
    def label(self) -> str:
        """The tile's status word: the health, or NOT POLLED when the counts are not live."""
        return "NOT POLLED" if self.group.poll_problem else self.group.health.upper()

    @property
    def detail(self) -> str:
        """The tile's small print, e.g. "2 offline · 1 late · 4 jobs queued · 1 open alert · no HA"."""
        members = self.group.members
        parts = [f"last known {self.group.health}"] if self.group.poll_problem else []
        if members.offline:
            parts.append(f"{members.offline} offline")
        if members.late:
            parts.append(f"{members.late} late")
        if members.never:
            parts.append(f"{members.never} never reported")
        if self.queued:
            parts.append(f"{self.queued} job{'s' if self.queued != 1 else ''} queued")
        if self.open_alerts:
            parts.append(f"{self.open_alerts} open alert{'s' if self.open_alerts != 1 else ''}{self.acknowledged_note}")
        if self.group.single_member:
            parts.append("1 member: no HA")
        if self.group.system_group:
            parts.append("System group")
        return " · ".join(parts)

    @property
    def acknowledged_note(self) -> str:
        """", acknowledged" when every open alert is, " (1 acknowledged)" when some are, else ""."""
        if not self.acknowledged_alerts:
            return ""
        if self.acknowledged_alerts >= self.open_alerts:
            return ", acknowledged"
        return f" ({self.acknowledged_alerts} acknowledged)"

    def sort_key(self) -> tuple[object, ...]:
        """Worst first, the same key as every list of groups, open alerts breaking ties."""
        return self.group.sort_key(open_alerts=self.open_alerts)


@dataclass(frozen=True)
class WallTotals:
    groups: int
    groups_by_health: dict[str, int]
    workers_total: int
    workers_online: int
    workers_late: int
    workers_offline: int
    workers_never: int
    jobs_queued: int
    queue_p95_seconds_24h: float | None
    queue_jobs_24h: int  # how many started jobs the p95 is computed over
    open_alerts: int
    acknowledged_alerts: int = 0


@dataclass(frozen=True)
class WallFreshness:
    """How old the tiles are. ``last_ok_at`` (the oldest source's last good poll) dates what is on screen."""

    accounts: int
    ever_polled: bool
    stale: bool
    last_ok_at: datetime | None
    age_seconds: float | None
    fresh_for_seconds: float | None  # None when already stale
    reasons: tuple[str, ...] = ()


@dataclass(frozen=True)
class WallSnapshot:
    now: datetime
    filters: WallFilters
    tiles: list[WallTile]
    totals: WallTotals
    freshness: WallFreshness
    unmatched_groups: tuple[str, ...] = field(default=())
    account_found: bool = True


def _queued_by_group(group_ids: Sequence[int]) -> dict[int, int]:
    rows = (
        Job.objects.filter(group_id__in=group_ids, status__in=QUEUED_STATUSES, started_at__isnull=True, ended_at__isnull=True)
        .values_list("group_id")
        .annotate(n=Count("id"))
        .order_by()
    )
    return {gid: n for gid, n in rows}


def _queue_p95(group_ids: Sequence[int], *, now: datetime) -> tuple[float | None, int]:
    return p95_and_count(Job.objects.filter(group_id__in=group_ids, created_at__gte=now - P95_WINDOW), "queue_seconds")


def _open_alerts_by_group(
    group_ids: Sequence[int], account_ids: Sequence[int], *, filtered: bool
) -> tuple[dict[int, int], int, dict[int, int], int]:
    """Open alerts per group and in total, then the acknowledged ones among them (per group, total).

    Alerts without a group (e.g. "monitoring is blind" for an account) count in the total for the
    accounts on screen; with a ``?groups=`` filter only the listed groups' alerts count.
    """
    scope = Q(group_id__in=group_ids)
    if not filtered:
        scope |= Q(group__isnull=True, account_id__in=account_ids) | Q(group__isnull=True, account__isnull=True)
    rows = (
        Alert.objects.filter(scope, state="open").values_list("group_id")
        .annotate(n=Count("id"), acked=Count("id", filter=Q(acknowledged_at__isnull=False))).order_by()
    )
    per_group: dict[int, int] = {}
    acked_per_group: dict[int, int] = {}
    total = acked_total = 0
    for gid, n, acked in rows:
        total += n
        acked_total += acked
        if gid is not None:
            per_group[gid] = n
            acked_per_group[gid] = acked
    return per_group, total, acked_per_group, acked_total


def _freshness(*, now: datetime, account_ids: Sequence[int] | None) -> WallFreshness:
    fresh = data_freshness(now=now, account_ids=account_ids)
    multiple = int(settings.STALE_AFTER_INTERVALS)
    reasons: list[str] = []
    for source in fresh.sources:
        if not source.stale:
            continue
        if source.error:
            reasons.append(f"{source.label}: latest poll failed: {source.error[:200]}")
        elif source.last_ok_at is None:
            reasons.append(f"{source.label}: no successful poll yet")
        else:
            reasons.append(
                f"{source.label}: no successful poll for {int(source.age_seconds or 0)} s "
                f"(expected every {source.interval_seconds} s)"
            )
    ok_times = [s.last_ok_at for s in fresh.sources]
    last_ok = min(t for t in ok_times if t is not None) if ok_times and None not in ok_times else None
    # Seconds until the first source crosses its stale threshold: the wall's script greys the
    # tiles on its own when that moment passes without a newer answer (server stopped polling,
    # or the wall cannot reach the server).
    remaining = [
        multiple * s.interval_seconds - s.age_seconds for s in fresh.sources if s.age_seconds is not None and not s.stale
    ]
    fresh_for = max(0.0, min(remaining)) if remaining and not fresh.stale else None
    return WallFreshness(
        accounts=fresh.accounts,
        ever_polled=fresh.ever_polled,
        stale=fresh.stale,
        last_ok_at=last_ok,
        age_seconds=fresh.age_seconds,
        fresh_for_seconds=fresh_for,
        reasons=tuple(reasons),
    )


def wall_snapshot(*, now: datetime, filters: WallFilters | None = None) -> WallSnapshot:
    """Every matching live group as a tile (worst first), fleet totals over those groups, open
    alerts, jobs queued now, queue-delay p95 over 24 h, and the data's freshness. Fixed query count."""
    filters = filters or WallFilters()
    rows = group_rows(now=now, account=filters.account, names=filters.groups)
    group_ids = [g.id for g in rows]
    account_ids = sorted({g.account_id for g in rows})
    # Job rows change only when a jobs poll lands: screens refreshing every few seconds share one
    # computation per poll (the 24 h p95 window slides by at most FLEET_JOB_STATS_MAX_AGE).
    version = jobs_data_version()
    queued = per_jobs_poll(
        "wall-queued", lambda: _queued_by_group(group_ids) if group_ids else {}, now=now,
        max_age_seconds=settings.POLL_JOBS_SECONDS, version=version, extra=tuple(group_ids),
    )
    p95, p95_n = per_jobs_poll(
        "wall-p95", lambda: _queue_p95(group_ids, now=now) if group_ids else (None, 0), now=now,
        max_age_seconds=FLEET_JOB_STATS_MAX_AGE, version=version, extra=tuple(group_ids),
    )
    alerts_by_group, alerts_total, acked_by_group, acked_total = _open_alerts_by_group(
        group_ids, account_ids, filtered=bool(filters.groups)
    )
    tiles = sorted(
        (
            WallTile(group=g, queued=queued.get(g.id, 0), open_alerts=alerts_by_group.get(g.id, 0),
                     acknowledged_alerts=acked_by_group.get(g.id, 0))
            for g in rows
        ),
        key=WallTile.sort_key,
    )

    by_health = {h: 0 for h in GROUP_HEALTH_RANK}
    for tile in tiles:
        by_health[tile.group.health] = by_health.get(tile.group.health, 0) + 1
    totals = WallTotals(
        groups=len(tiles),
        groups_by_health=by_health,
        workers_total=sum(t.group.members.total for t in tiles),
        workers_online=sum(t.group.members.online for t in tiles),
        workers_late=sum(t.group.members.late for t in tiles),
        workers_offline=sum(t.group.members.offline for t in tiles),
        workers_never=sum(t.group.members.never for t in tiles),
        jobs_queued=sum(queued.values()),
        queue_p95_seconds_24h=p95,
        queue_jobs_24h=p95_n,
        open_alerts=alerts_total,
        acknowledged_alerts=acked_total,
    )
    # Freshness covers the accounts on screen. When the filter matched no group, a named account's
    # own polls still say whether "nothing here" is current; otherwise the whole fleet's do.
    account_found = True
    freshness_accounts: list[int] | None = None
    if account_ids and filters.active:
        freshness_accounts = account_ids
    elif filters.account:
        freshness_accounts = _account_ids_named(filters.account)
        account_found = bool(freshness_accounts)
    freshness = _freshness(now=now, account_ids=freshness_accounts)

    unmatched: tuple[str, ...] = ()
    if filters.groups:
        present = {t.group.name.lower() for t in tiles}
        unmatched = tuple(n for n in filters.groups if n.lower() not in present)
    return WallSnapshot(
        now=now, filters=filters, tiles=tiles, totals=totals, freshness=freshness,
        unmatched_groups=unmatched, account_found=account_found,
    )


def _account_ids_named(name: str) -> list[int]:
    return list(AutomationAccount.objects.filter(name__iexact=name, enabled=True).values_list("pk", flat=True))
