"""Reads of the fleet for the pages and the JSON API. Views call these; nothing here writes.

Every function issues a fixed number of queries, independent of how many groups or workers exist
(tests pin the counts): aggregates are computed in SQL with one GROUP BY per concern, never a query
per group.

- ``job_stats``: 24 h job outcomes and queue p95 per group, shared once per jobs poll;
- ``freshness``: how old the data is, per source and account;
- ``groups``: the one group row (``GroupRow``) every list of groups shows, and why a group's own
  worker poll fails;
- ``overview``: the overview page and /api/v1/groups;
- ``detail``: the group and worker pages;
- ``jobs``: the jobs list;
- ``live``: the workers under CPU/memory pressure now, and current vs last-known utilization.
"""
from workers.fleet.selectors.detail import WORKER_WINDOWS, GroupDetail, UtilPoint, WorkerDetail, group_detail, worker_detail
from workers.fleet.selectors.freshness import (
    Freshness,
    SourceFreshness,
    data_freshness,
    freshness_by_account,
    last_successful_poll_at,
)
from workers.fleet.selectors.groups import (
    GroupRow,
    find_groups,
    group_rows,
    worker_poll_problems,
    worker_status_counts,
    workers_in_groups,
)
from workers.fleet.selectors.job_stats import (
    FLEET_JOB_STATS_MAX_AGE,
    JobStats,
    fleet_job_stats,
    job_stats_by_group,
    jobs_data_version,
    per_jobs_poll,
)
from workers.fleet.selectors.jobs import JOBS_COUNT_CAP, JobPage, group_choices, jobs_page
from workers.fleet.selectors.live import PressureWorker, pressure_workers, utilization_is_current
from workers.fleet.selectors.overview import FleetTotals, Overview, fleet_overview

__all__ = [
    "FLEET_JOB_STATS_MAX_AGE", "JOBS_COUNT_CAP", "WORKER_WINDOWS",
    "FleetTotals", "Freshness", "GroupDetail", "GroupRow", "JobPage", "JobStats", "Overview", "PressureWorker", "SourceFreshness",
    "UtilPoint", "WorkerDetail",
    "data_freshness", "find_groups", "fleet_job_stats", "fleet_overview", "freshness_by_account", "group_choices",
    "group_detail", "group_rows", "job_stats_by_group", "jobs_data_version", "jobs_page", "last_successful_poll_at",
    "per_jobs_poll", "pressure_workers", "utilization_is_current", "worker_detail", "worker_poll_problems", "worker_status_counts", "workers_in_groups",
]
