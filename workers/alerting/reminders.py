"""Reminders and acknowledgement: "STILL DOWN" (blind, jobs failing: "STILL ...") emails every
ALERT_REMINDER_HOURS until someone acknowledges the alert (or it resolves)."""
from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import F

from workers.alerting import content as alert_content
from workers.alerting.content import RenderedEmail
from workers.alerting.incidents import DOWN_KINDS
from workers.alerting.jobs_content import render_jobs_failing
from workers.alerting.maintenance import covered_worker_ids
from workers.alerting.notifications import queue_email
from workers.models import Alert, AlertKind, AlertState, NotificationKind


def send_reminders(*, now: datetime) -> list[int]:
    """Queue a "STILL DOWN" email for every open, notified, unacknowledged alert whose reminder is due.

    Each reminder is claimed by moving ``next_reminder_at`` with a conditional UPDATE, and has its
    own dedupe key, so two callers queue it once. Alerts whose every down worker is under
    maintenance skip this round. Called by the ``send_alert_reminders`` task (beat, every minute).
    """
    hours = timedelta(hours=settings.ALERT_REMINDER_HOURS)
    queued: list[int] = []
    due = Alert.objects.filter(
        state=AlertState.OPEN,
        kind__in=(*DOWN_KINDS, AlertKind.BLIND, AlertKind.JOBS_FAILING),
        notified_at__isnull=False,
        acknowledged_at__isnull=True,
        next_reminder_at__lte=now,
    ).select_related("group", "account")
    for alert in due:
        claimed = Alert.objects.filter(pk=alert.pk, next_reminder_at=alert.next_reminder_at, acknowledged_at__isnull=True).update(
            next_reminder_at=now + hours, reminders_sent=F("reminders_sent") + 1
        )
        if not claimed:
            continue
        down_ids = set(alert.members.filter(recovered_at__isnull=True).values_list("worker_id", flat=True))
        if alert.kind != AlertKind.BLIND and down_ids and down_ids <= covered_worker_ids(down_ids, now=now):
            continue
        number = alert.reminders_sent + 1
        if alert.kind == AlertKind.BLIND:
            email = alert_content.render_blind(alert, now=now)
            email = RenderedEmail("STILL " + email.subject, email.text, email.html)
        elif alert.kind == AlertKind.JOBS_FAILING:
            email = render_jobs_failing(alert, now=now, reminder=True)
        else:
            email = alert_content.render_down(alert, now=now, reminder=True)
        note = queue_email(alert, NotificationKind.REMINDER, f"alert:{alert.pk}:reminder:{number}", email, now=now)
        if note is not None:
            queued.append(note.pk)
            Alert.objects.filter(pk=alert.pk).update(last_notified_at=now)
    return queued


def acknowledge(*, alert_id: int, user: object, now: datetime) -> bool:
    """Stop reminders for an open alert and record who acknowledged it. Repeating is a no-op."""
    user_id = getattr(user, "pk", None) if getattr(user, "is_authenticated", False) else None
    updated = Alert.objects.filter(pk=alert_id, state=AlertState.OPEN, acknowledged_at__isnull=True).update(
        acknowledged_at=now, acknowledged_by_id=user_id, next_reminder_at=None
    )
    return updated > 0
