"""When an alert's opening email goes: after the group wait, after maintenance, after settling.

A worker under a maintenance window gets an alert held as ``maintenance`` (state tracked, no
email); if it is still down when the window ends, the email goes then. A down alert waits until
its ``notify_at`` only while another live member of the group has its own deadline inside that
wait (it went silent at about the same time and is about to cross): a site that goes dark gives
one email, a lone failure goes at once. The email is rendered once and queued with a unique key.
"""
from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings

from workers.alerting import content as alert_content
from workers.alerting.flapping import transitions
from workers.alerting.incidents import DOWN_KINDS, OFFLINE, SETTLING, OutboxResult
from workers.alerting.jobs_content import render_jobs_failing
from workers.alerting.maintenance import covered_worker_ids
from workers.alerting.notifications import queue_email
from workers.models import (
    Alert,
    AlertKind,
    AlertMember,
    AlertState,
    HybridWorker,
    NotificationKind,
)


def release_maintenance(*, now: datetime) -> None:
    """Alerts held for maintenance whose window is over (or deleted) become due now."""
    held = list(Alert.objects.filter(state=AlertState.OPEN, suppressed="maintenance"))
    if not held:
        return
    for alert in held:
        down_ids = set(alert.members.filter(recovered_at__isnull=True).values_list("worker_id", flat=True))
        if down_ids and down_ids <= covered_worker_ids(down_ids, now=now):
            continue
        # The window is over (or was deleted) and the worker is still down: the email goes now.
        Alert.objects.filter(pk=alert.pk, suppressed="maintenance").update(suppressed="", notify_at=now)


def _siblings_about_to_cross(alert: Alert) -> bool:
    """Another live member of the alert's group will be declared down before the wait ends."""
    if alert.group_id is None or alert.notify_at is None:
        return False
    members = alert.members.values_list("worker_id", flat=True)
    already_down = AlertMember.objects.filter(
        recovered_at__isnull=True, alert__state=AlertState.OPEN, alert__kind__in=DOWN_KINDS
    ).values_list("worker_id", flat=True)
    return (
        HybridWorker.objects.filter(group_id=alert.group_id, removed_at__isnull=True, alert_after__lte=alert.notify_at)
        .exclude(status=OFFLINE)
        .exclude(pk__in=members)
        .exclude(pk__in=already_down)
        .exists()
    )


def dispatch_due(*, now: datetime, result: OutboxResult) -> None:
    """Queue the opening email of every open alert that is due, and store the workers' snapshot."""
    candidates = (
        Alert.objects.filter(
            state=AlertState.OPEN, notified_at__isnull=True, suppressed__in=("", SETTLING), notify_at__isnull=False
        )
        .select_related("group", "account")
        .order_by("notify_at", "pk")
    )
    for alert in candidates:
        assert alert.notify_at is not None
        waiting = alert.suppressed == SETTLING or alert.kind not in DOWN_KINDS or _siblings_about_to_cross(alert)
        if alert.notify_at > now and waiting:
            continue
        if alert.kind == AlertKind.BLIND:
            email = alert_content.render_blind(alert, now=now)
        elif alert.kind == AlertKind.FLAPPING:
            window = timedelta(minutes=settings.FLAP_WINDOW_MINUTES)
            member = alert.members.select_related("worker").first()
            count = transitions(member.worker, since=now - window, until=now) if member else 0
            email = alert_content.render_flapping(alert, now=now, transitions=count)
        elif alert.kind == AlertKind.PRESSURE:
            email = alert_content.render_pressure(alert, now=now)
        elif alert.kind == AlertKind.JOBS_FAILING:
            email = render_jobs_failing(alert, now=now)
        else:
            email = alert_content.render_down(alert, now=now)
        snapshot = {
            str(m.worker_id): alert_content.worker_snapshot(m.worker, now=now)
            for m in alert.members.select_related("worker__group")
        }
        Alert.objects.filter(pk=alert.pk).update(
            notified_at=now,
            last_notified_at=now,
            title=email.subject[:400],
            diagnosis=snapshot,
            next_reminder_at=None if alert.kind in (AlertKind.FLAPPING, AlertKind.PRESSURE) else now + timedelta(hours=settings.ALERT_REMINDER_HOURS),
        )
        note = queue_email(alert, NotificationKind.ALERT, f"alert:{alert.pk}:open", email, now=now)
        if note is not None:
            result.queued.append(note.pk)
