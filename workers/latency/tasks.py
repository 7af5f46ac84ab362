"""Celery task for the job latency rollups: a thin wrapper over workers.latency.rollups.

Found by Celery's autodiscovery over the capability packages. Beat does not schedule it: the
``rollup`` beat entry (``workers.fleet.tasks.rollup_recent``) already calls ``rollup_jobs`` every
ROLLUP_SECONDS; this task is for an on-demand run with a longer lookback (e.g. after a polling
gap). Safe to run twice or concurrently: ``rollup_jobs`` recomputes whole hours and serialises
writers (see its docstring).
"""
from __future__ import annotations

from datetime import timedelta
from typing import Any

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from workers.latency.rollups import rollup_jobs
from workers.task_options import DB_RETRY


@shared_task(**DB_RETRY, acks_late=True, soft_time_limit=240, time_limit=300)
def rollup_job_latency(lookback_hours: int | None = None) -> dict[str, Any]:
    """Recompute the job rollups of the last few hours (and of any older hour whose jobs changed).

    The lookback covers the polls' overlap window and late data; anything older that changed is
    found through Job.last_modified_at.
    """
    hours = lookback_hours if lookback_hours is not None else settings.JOB_ROLLUP_LOOKBACK_HOURS
    now = timezone.now()
    result = rollup_jobs(now - timedelta(hours=hours), now, now=now)
    return {"hours": result.hours, "days": result.days, "hourly_rows": result.hourly_rows, "daily_rows": result.daily_rows}
