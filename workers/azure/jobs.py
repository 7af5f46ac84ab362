"""What the jobs polls ask the Automation jobs list, whatever ``$filter`` grammar the service accepts.

The grammar is undocumented. Microsoft's own client filters on ``properties/startTime``,
``properties/endTime``, ``properties/status`` and ``properties/runbook/name``; public scripts use
``properties/creationTime ge``; ``lastModifiedTime`` and ``runOn`` filters appear nowhere. So each
listing here says how it can fail: ``JobFilterRefused`` when the service answers 400 to the filter,
or visibly ignores it (returns a job older than the bound), and the caller
(``workers.fleet.job_reading``) switches to another way of asking. Filters come only from
``workers.azure.queries`` (our own datetimes and fixed status names). SDK-free: the calls go through
``AzureClient.list_jobs_filtered`` / ``get_job``.
"""
from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from workers.azure.parse import ignored_filter
from workers.azure.queries import as_utc, jobs_created_filter, jobs_modified_filter, jobs_status_filter
from workers.azure.records import JobRecord

if TYPE_CHECKING:
    from workers.azure.client import AzureClient


def list_new_jobs(client: AzureClient, *, since: datetime) -> list[JobRecord]:
    """Jobs created at or after ``since`` (``properties/creationTime ge``)."""
    floor = as_utc(since)
    return client.list_jobs_filtered(
        "list new jobs", jobs_created_filter(since=since), reject=lambda item: ignored_filter("creationTime", item, floor)
    )


def list_recent_jobs(client: AzureClient, *, since: datetime) -> list[JobRecord]:
    """No filter at all: the list is newest first, so read down to ``since`` and stop paging there."""
    floor = as_utc(since)
    return client.list_jobs_filtered(
        "list recent jobs (no filter)", None, stop=lambda item: ignored_filter("creationTime", item, floor) is not None
    )


def list_changed_jobs(client: AzureClient, *, since: datetime, created_before: datetime | None = None) -> list[JobRecord]:
    """Jobs last modified at or after ``since`` (``properties/lastModifiedTime ge``), where accepted;
    with ``created_before``, only those created before it (``and properties/creationTime lt``)."""
    floor = as_utc(since)
    return client.list_jobs_filtered(
        "list changed jobs",
        jobs_modified_filter(since=since, created_before=created_before),
        reject=lambda item: ignored_filter("lastModifiedTime", item, floor),
    )


def list_jobs_in_status(client: AzureClient, status: str) -> list[JobRecord]:
    """Jobs in ``status`` now; ``status`` must be one of ``queries.UNFINISHED_JOB_STATUSES``."""
    return client.list_jobs_filtered(f"list {status} jobs", jobs_status_filter(status))
