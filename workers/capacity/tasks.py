"""Celery task for the capacity analysis: a thin wrapper over workers.capacity.correlation.

Found by Celery's autodiscovery over the capability packages; beat runs
``workers.capacity.tasks.refresh_capacity`` every CAPACITY_REFRESH_SECONDS with ``expires`` set, so a
backlog of stale refreshes is dropped. Safe to run twice or concurrently: each run writes one complete
snapshot per window in a transaction and prunes older ones; readers take the newest.
"""
from __future__ import annotations

from typing import Any

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from workers.capacity.correlation import WINDOWS, compute_findings
from workers.task_options import DB_RETRY


@shared_task(
    **DB_RETRY,
    acks_late=True,
    soft_time_limit=settings.CAPACITY_TASK_SOFT_TIME_LIMIT,
    time_limit=settings.CAPACITY_TASK_TIME_LIMIT,
)
def refresh_capacity(window: str | None = None) -> dict[str, Any]:
    """Recompute correlation findings and group capacity for one window.

    Without a window (the beat entry), fan out one task per window (24h, 7d, 30d), so each gets its own
    time limit and several Celery workers share the load. Takes a window key, not objects.
    """
    if window is None:
        for key in WINDOWS:
            refresh_capacity.delay(key)
        return {"queued": list(WINDOWS)}
    run = compute_findings(window, timezone.now())
    return {window: {"run": run.pk, "pairs": run.pairs_examined, "duration_ms": run.duration_ms}}
