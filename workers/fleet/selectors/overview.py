"""The overview page and /api/v1/groups: every live group worst first, plus the fleet's totals."""
from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from workers.fleet.selectors.groups import GroupRow, group_rows
from workers.fleet.selectors.job_stats import fleet_job_stats
from workers.rules.health import GroupHealth
from workers.rules.outcomes import empty_outcomes


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
    groups: list[GroupRow]
    totals: FleetTotals
    window_hours: int = 24

    @property
    def unpolled(self) -> list[GroupRow]:
        """The groups whose own worker poll is failing or overdue (their counts are the last known state)."""
        return [g for g in self.groups if g.poll_problem]


def fleet_overview(*, now: datetime, version: tuple[tuple[int, Any], ...] | None = None) -> Overview:
    """All live groups worst first, with their 24 h job outcomes and queue p95, plus fleet totals,
    and which groups' own worker polls are failing. Three queries (the groups, the recent worker
    polls, the job data version unless passed in; one more when a poll is failing), plus the job
    aggregate once per jobs poll (``fleet_job_stats``)."""
    rows = group_rows(now=now)
    stats = fleet_job_stats(since=now - timedelta(hours=24), now=now, version=version)
    groups = sorted((replace(g, jobs=stats.get(g.id)) for g in rows), key=lambda g: g.sort_key())
    jobs: dict[str, int] = empty_outcomes()
    for g in groups:
        for k, v in g.jobs_24h.items():
            jobs[k] += v
    totals = FleetTotals(
        groups=len(groups),
        workers_total=sum(g.members.total for g in groups),
        workers_online=sum(g.members.online for g in groups),
        workers_late=sum(g.members.late for g in groups),
        workers_offline=sum(g.members.offline for g in groups),
        groups_down=sum(1 for g in groups if g.health == GroupHealth.DOWN),
        groups_degraded=sum(1 for g in groups if g.health == GroupHealth.DEGRADED),
        jobs_24h=jobs,
    )
    return Overview(groups=groups, totals=totals)
