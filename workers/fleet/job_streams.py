"""A job's streams (output, errors, warnings), read from Azure on demand for the job page.

One listing per request, through the same adapter and shared ARM read budget as the polls, and
remembered for ``STREAMS_CACHE_SECONDS`` so a reloaded page or several viewers do not read it again.
Nothing is stored in the database: streams can be large and are Azure's to keep (30 days). An error
is returned as text for the page, never raised: a page must not fail because Azure did.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

from django.core.cache import cache

from workers.azure.errors import AzureError, AzureTransientError
from workers.azure.records import JobStreamRecord
from workers.fleet.polling import azure_client
from workers.models import Job

log = logging.getLogger(__name__)

STREAMS_CACHE_SECONDS = 60
MAX_STREAMS = 500


@dataclass(frozen=True)
class JobStreams:
    ok: bool
    streams: list[JobStreamRecord] = field(default_factory=list)
    error: str = ""
    truncated: bool = False


def read_job_streams(job: Job) -> JobStreams:
    """The job's streams as Azure lists them (at most ``MAX_STREAMS``), or why they could not be read."""
    key = f"job-streams:{job.account_id}:{job.job_id}"
    cached = cache.get(key)
    if isinstance(cached, JobStreams):
        return cached
    try:
        streams = azure_client(job.account).job_streams(job.job_id)
    except AzureTransientError as exc:
        return JobStreams(ok=False, error=f"Azure is busy or unreachable, try again shortly ({exc})")
    except AzureError as exc:
        return JobStreams(ok=False, error=str(exc))
    result = JobStreams(ok=True, streams=streams[:MAX_STREAMS], truncated=len(streams) > MAX_STREAMS)
    cache.set(key, result, STREAMS_CACHE_SECONDS)
    return result
