"""Celery tasks for alerting: thin wrappers over workers.alerting.outbox, .reminders and .sending.

Celery finds them through ``autodiscover_tasks`` over ``TASK_PACKAGES`` (dashboard/celery.py). Each
is safe to run twice: the services claim their rows with conditional UPDATEs and a lock (see their
docstrings).
"""
from __future__ import annotations

from typing import Any

from celery import shared_task
from django.utils import timezone

from workers.alerting.outbox import process_outbox
from workers.alerting.reminders import send_reminders
from workers.alerting.sending import send_pending
from workers.task_options import DB_RETRY


@shared_task(**DB_RETRY, acks_late=True, soft_time_limit=60, time_limit=90)
def send_pending_notifications() -> dict[str, Any]:
    """Send due alert emails (new ones and retries whose backoff has passed)."""
    result = send_pending(now=timezone.now())
    return {"sent": len(result.sent), "failed": len(result.failed)}


@shared_task(**DB_RETRY, acks_late=True, soft_time_limit=60, time_limit=90)
def process_alert_outbox() -> dict[str, Any]:
    """Turn new status changes into alerts; when emails were queued, send them at once."""
    result = process_outbox(now=timezone.now())
    if result.queued:
        send_pending_notifications.delay()
    return {"claimed": result.claimed, "opened": len(result.opened), "queued": len(result.queued)}


@shared_task(**DB_RETRY, acks_late=True, soft_time_limit=60, time_limit=90)
def send_alert_reminders() -> dict[str, Any]:
    """Queue "still down" reminders that are due, then send them."""
    queued = send_reminders(now=timezone.now())
    if queued:
        send_pending_notifications.delay()
    return {"queued": len(queued)}
