"""Close polls whose process died: a ``PollRun`` that never finished is closed as failed, with a reason.

A poll writes its ``PollRun`` when it starts and completes it when it ends (``workers.fleet.polling``).
If the Celery worker process is killed mid-poll (the hard time limit, an OOM kill, a restart), the run
would stay open forever: never a failure, never fresh data, invisible to every rule that judges only
finished polls (``workers.fleet.selectors.poll_evidence``). Past the task's hard time limit plus a
margin no live process can still be running it, so the periodic sweep (the ``close_abandoned_polls``
task) records it as the failure it was. Safe to run twice or concurrently: the UPDATE only touches
runs that are still open, and a poll that does finish after all simply overwrites the verdict.
"""
from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings

from workers.models import PollRun

# Beyond CELERY_TASK_TIME_LIMIT: the hard limit kills the task then, and the process that ran it
# needs a moment to write its last row; no poll is still alive this long after it.
ABANDONED_MARGIN_SECONDS = 60
ABANDONED_REASON = "poll never finished: the worker process died or was killed"


def abandoned_deadline(*, now: datetime) -> datetime:
    """Runs started before this and still open are abandoned."""
    return now - timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT + ABANDONED_MARGIN_SECONDS)


def close_abandoned_polls(*, now: datetime) -> int:
    """Close every open run started before the deadline as failed, finished ``now``; how many were closed."""
    return PollRun.objects.filter(finished_at__isnull=True, started_at__lt=abandoned_deadline(now=now)).update(
        finished_at=now,
        ok=False,
        error=f"{ABANDONED_REASON} (no result within {settings.CELERY_TASK_TIME_LIMIT + ABANDONED_MARGIN_SECONDS} s)",
    )
