"""Flapping: a worker that keeps going in and out of offline gets one ``flapping`` alert.

FLAP_TRANSITIONS changes in or out of offline within FLAP_WINDOW_MINUTES open it; the worker's own
down alerts are closed without a recovery email and its changes are held until there has been no
change for FLAP_STABLE_MINUTES. Then a "stable" email says its status, and a down alert opens if
it is still down.
"""
from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Max, Q

from workers.alerting.incidents import (
    DOWN_KINDS,
    OFFLINE,
    OutboxResult,
    is_down,
    open_flapping,
    open_memberships,
    resolve,
    worker_down,
)
from workers.alerting.maintenance import covered_worker_ids
from workers.models import (
    Alert,
    AlertKind,
    AlertMember,
    AlertState,
    HybridWorker,
    StatusChange,
)


def transitions(worker: HybridWorker, *, since: datetime, until: datetime) -> int:
    """How many of the worker's changes in (since, until] went in or out of offline."""
    return (
        StatusChange.objects.filter(worker=worker, created_at__gt=since, created_at__lte=until)
        .filter(Q(old_status=OFFLINE) | Q(new_status=OFFLINE))
        .count()
    )


def check_flapping(worker: HybridWorker, change: StatusChange, *, now: datetime, result: OutboxResult) -> bool:
    """Open the worker's flapping alert when it crosses the threshold. True = this change is absorbed."""
    if open_flapping(worker) is not None:
        return True
    window = timedelta(minutes=settings.FLAP_WINDOW_MINUTES)
    count = transitions(worker, since=change.created_at - window, until=change.created_at)
    if count < settings.FLAP_TRANSITIONS:
        return False
    held = "maintenance" if worker.pk in covered_worker_ids([worker.pk], now=now) else ""
    alert = Alert.objects.create(
        kind=AlertKind.FLAPPING,
        account_id=worker.group.account_id,
        group=worker.group,
        title=f"{worker.name} flapping",
        detail=f"{count} changes in or out of offline within {settings.FLAP_WINDOW_MINUTES} min",
        opened_at=change.created_at,
        notify_at=now,
        suppressed=held,
    )
    AlertMember.objects.create(alert=alert, worker=worker, down_at=change.created_at, reason=change.reason[:300])
    result.opened.append(alert.pk)
    # The worker's own down alerts are superseded: closed without a recovery email (the flapping
    # email explains), and the worker leaves any rollup still gathering.
    for member in open_memberships(worker):
        down_alert = member.alert
        AlertMember.objects.filter(pk=member.pk).update(recovered_at=change.created_at)
        if not down_alert.members.filter(recovered_at__isnull=True).exists():
            Alert.objects.filter(pk=down_alert.pk, state=AlertState.OPEN).update(
                state=AlertState.RESOLVED, resolved_at=change.created_at, suppressed="flapping", next_reminder_at=None
            )
            result.resolved.append(down_alert.pk)
    return True


def settle_flapping(*, now: datetime, result: OutboxResult) -> None:
    """Resolve flapping alerts whose worker has been stable long enough; reopen as down if it is down."""
    stable_for = timedelta(minutes=settings.FLAP_STABLE_MINUTES)
    for alert in Alert.objects.filter(kind=AlertKind.FLAPPING, state=AlertState.OPEN).select_related("group"):
        member = alert.members.select_related("worker__group").first()
        if member is None:
            continue
        worker = member.worker
        last = (
            StatusChange.objects.filter(worker=worker)
            .filter(Q(old_status=OFFLINE) | Q(new_status=OFFLINE))
            .aggregate(at=Max("created_at"))["at"]
        )
        if last is not None and now - last < stable_for:
            continue
        AlertMember.objects.filter(pk=member.pk).update(recovered_at=now)
        resolve(alert, now=now, result=result)
        worker.refresh_from_db()
        if is_down(worker, now=now):
            # Stable, but down: a normal alert, due at once (the wait was the stability period).
            worker_down(worker, at=now, reason=worker.status_reason, now=now, blind_accounts=set(), result=result)
            Alert.objects.filter(members__worker=worker, state=AlertState.OPEN, kind__in=DOWN_KINDS, notified_at__isnull=True).update(
                notify_at=now
            )
