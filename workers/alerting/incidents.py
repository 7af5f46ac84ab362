"""Alerts as incidents: a worker goes down (joining its group's alert while that still waits),
comes back, and the alert resolves with its recovery email.

A worker is *down* when its status is offline, or when Automation has not seen it beyond the
grace period while heartbeats keep arriving after that (it cannot pick up jobs: outbound 443
blocked). It is back when Automation sees it again (status online, or late with a fresh lastSeen).

Rollup (group wait): a worker that goes down joins the group's alert that is still waiting. The
wait is anchored on the moment the first worker's signals crossed the grace period
(``HybridWorker.alert_after``) and lasts at most ALERT_GROUP_WAIT_SECONDS; ``workers.alerting.dispatch``
decides when it is over. Everything here runs inside ``workers.alerting.outbox.process_outbox``,
under its lock.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import QuerySet

from workers.alerting import content as alert_content
from workers.alerting.jobs_content import render_jobs_failing
from workers.alerting.maintenance import covered_worker_ids
from workers.alerting.notifications import queue_email
from workers.fleet.selectors.last_looked import LastLooked, last_looked
from workers.models import (
    Alert,
    AlertKind,
    AlertMember,
    AlertState,
    HybridWorker,
    NotificationKind,
    WorkerStatus,
)
from workers.rules.signals import AUTOMATION

DOWN_KINDS = (AlertKind.WORKER_DOWN, AlertKind.GROUP_ROLLUP)
OFFLINE = WorkerStatus.OFFLINE.value
# Released from a blind spell: due only at notify_at, so the first good polls can bring workers back.
SETTLING = "settling"


@dataclass
class OutboxResult:
    """What one ``process_outbox`` call did (for logs, the task result and tests)."""

    claimed: int = 0
    opened: list[int] = field(default_factory=list)
    resolved: list[int] = field(default_factory=list)
    queued: list[int] = field(default_factory=list)


# --- Is the worker down? ------------------------------------------------------------------------


# A heartbeat written this long after Automation's last sighting proves the agent is still alive.
HEARTBEAT_AFTER_CONTACT = timedelta(seconds=60)


def automation_offline(worker: HybridWorker, *, now: datetime, looked: LastLooked | None = None) -> bool:
    """True when Automation has not seen the worker beyond its grace period: it cannot pick up jobs.
    With ``looked``, judged as of our last successful worker poll of its group (as the status refresh)."""
    signal = alert_content.worker_verdict(worker, now=now, looked=looked).signal(AUTOMATION)
    return signal is not None and signal.state == "offline"


def unreachable_but_alive(worker: HybridWorker, *, now: datetime, looked: LastLooked | None = None) -> bool:
    """Automation lost the worker beyond its grace period while heartbeats kept coming after that
    (outbound 443 blocked). A heartbeat merely still inside Log Analytics' ingestion latency proves
    nothing (a stopped agent looks the same for minutes), so a heartbeat must postdate the last
    Automation contact by HEARTBEAT_AFTER_CONTACT."""
    if worker.last_seen_at is None or worker.last_heartbeat_at is None:
        return False
    if worker.last_heartbeat_at < worker.last_seen_at + HEARTBEAT_AFTER_CONTACT:
        return False
    return automation_offline(worker, now=now, looked=looked)


def can_take_jobs(worker: HybridWorker, status: str, *, now: datetime) -> bool:
    """Online, or late while Automation still sees it (only the heartbeat is behind)."""
    if status == WorkerStatus.ONLINE.value:
        return True
    return status == WorkerStatus.LATE.value and not automation_offline(worker, now=now)


def is_down(worker: HybridWorker, *, now: datetime) -> bool:
    """Offline, or late while Automation has lost it and heartbeats go on (no job can reach it)."""
    if worker.status == OFFLINE:
        return True
    return worker.status == WorkerStatus.LATE.value and unreachable_but_alive(worker, now=now)


def outage_started_at(worker: HybridWorker, *, detected_at: datetime) -> datetime:
    """When the outage began: the last signal seen, not the moment we noticed (a worker silent for
    15 minutes is reported as down for 15, not for the 10 since it crossed the offline threshold).

    Offline: the latest of Automation's lastSeen and the heartbeat. Late but unreachable (heartbeats
    go on): Automation's lastSeen, the signal it lost. Never later than ``detected_at``; the
    detection time when no signal was ever seen.
    """
    if worker.status == OFFLINE:
        signals = [at for at in (worker.last_seen_at, worker.last_heartbeat_at) if at is not None]
    else:
        signals = [worker.last_seen_at] if worker.last_seen_at is not None else []
    return min(max(signals), detected_at) if signals else detected_at


def open_memberships(worker: HybridWorker) -> QuerySet[AlertMember]:
    """The worker's unrecovered places in open down/rollup alerts."""
    return AlertMember.objects.filter(
        worker=worker, recovered_at__isnull=True, alert__state=AlertState.OPEN, alert__kind__in=DOWN_KINDS
    ).select_related("alert")


def open_flapping(worker: HybridWorker) -> Alert | None:
    """The worker's open flapping alert, which speaks for it until it is stable."""
    return Alert.objects.filter(kind=AlertKind.FLAPPING, state=AlertState.OPEN, members__worker=worker).first()


# --- Down, recovered, resolved ------------------------------------------------------------------


def worker_down(
    worker: HybridWorker, *, at: datetime, reason: str, now: datetime, blind_accounts: set[int], result: OutboxResult
) -> None:
    """Count the worker as down (detected at ``at``): join the group's alert that is still
    gathering, else open one.

    The member's ``down_at`` and a new alert's ``opened_at`` are the outage start (the last signal,
    ``outage_started_at``), so every duration shown counts from there; a member joining with an
    earlier start moves its alert's ``opened_at`` back. The new alert is due at ``alert_after`` +
    ALERT_GROUP_WAIT_SECONDS and held as ``maintenance`` or ``blind`` when that applies. A worker
    already in an open down alert is left alone.
    """
    if open_memberships(worker).exists():
        return  # already counted as down (e.g. late-but-unreachable, then offline)
    started = outage_started_at(worker, detected_at=at)
    anchor = worker.alert_after if worker.alert_after is not None and worker.alert_after <= at else at
    wait = timedelta(seconds=settings.ALERT_GROUP_WAIT_SECONDS)
    account_id = worker.group.account_id
    if worker.pk in covered_worker_ids([worker.pk], now=now):
        held = "maintenance"
    elif account_id in blind_accounts:
        held = "blind"
    else:
        held = ""
    gathering = (
        Alert.objects.filter(
            state=AlertState.OPEN,
            kind__in=DOWN_KINDS,
            group=worker.group,
            notified_at__isnull=True,
            suppressed=held,
            notify_at__gte=anchor,
        )
        .exclude(suppressed="maintenance")
        .order_by("opened_at")
        .first()
    )
    if gathering is not None:
        AlertMember.objects.get_or_create(alert=gathering, worker=worker, defaults={"down_at": started, "reason": reason[:300]})
        if gathering.kind != AlertKind.GROUP_ROLLUP:
            Alert.objects.filter(pk=gathering.pk).update(kind=AlertKind.GROUP_ROLLUP)
        Alert.objects.filter(pk=gathering.pk, opened_at__gt=started).update(opened_at=started)
        return
    alert = Alert.objects.create(
        kind=AlertKind.WORKER_DOWN,
        account_id=account_id,
        group=worker.group,
        title=f"{worker.name} down",
        opened_at=started,
        notify_at=anchor + wait,
        suppressed=held,
    )
    AlertMember.objects.create(alert=alert, worker=worker, down_at=started, reason=reason[:300])
    result.opened.append(alert.pk)


def worker_recovered(worker: HybridWorker, *, at: datetime, now: datetime, result: OutboxResult) -> None:
    """Mark the worker back in its open down alerts; an alert whose members are all back resolves."""
    for member in open_memberships(worker):
        AlertMember.objects.filter(pk=member.pk).update(recovered_at=at)
        alert = member.alert
        if not alert.members.filter(recovered_at__isnull=True).exists():
            alert.resolved_at = at
            resolve(alert, now=now, result=result)


def resolve(alert: Alert, *, now: datetime, result: OutboxResult) -> None:
    """Close an alert; its recovery email goes only if its opening email went out (then always)."""
    resolved_at = alert.resolved_at or now
    updated = Alert.objects.filter(pk=alert.pk, state=AlertState.OPEN).update(
        state=AlertState.RESOLVED, resolved_at=resolved_at, next_reminder_at=None
    )
    if not updated:
        return
    alert.state = AlertState.RESOLVED
    alert.resolved_at = resolved_at
    result.resolved.append(alert.pk)
    if alert.notified_at is None:
        return
    if alert.kind == AlertKind.BLIND:
        email = alert_content.render_blind(alert, now=now, restored=True)
    elif alert.kind == AlertKind.FLAPPING:
        email = alert_content.render_flapping(alert, now=now, transitions=0, stable=True)
    elif alert.kind == AlertKind.PRESSURE:
        email = alert_content.render_pressure(alert, now=now, recovered=True)
    elif alert.kind == AlertKind.JOBS_FAILING:
        email = render_jobs_failing(alert, now=now, recovered=True)
    else:
        email = alert_content.render_recovery(alert, now=now)
    note = queue_email(alert, NotificationKind.RECOVERY, f"alert:{alert.pk}:recovery", email, now=now)
    if note is not None:
        result.queued.append(note.pk)


# --- Automation unreachable while heartbeats continue --------------------------------------------


def sweep_automation_unreachable(*, now: datetime, blind_accounts: set[int], result: OutboxResult) -> None:
    """Late workers Automation has not seen beyond the grace period are down (no job can reach them);
    their recovery is the change back to online, or Automation seeing them again."""
    open_down = set(
        AlertMember.objects.filter(
            recovered_at__isnull=True, alert__state=AlertState.OPEN, alert__kind__in=DOWN_KINDS
        ).values_list("worker_id", flat=True)
    )
    flapping = set(
        AlertMember.objects.filter(alert__state=AlertState.OPEN, alert__kind=AlertKind.FLAPPING).values_list("worker_id", flat=True)
    )
    late = HybridWorker.objects.filter(status=WorkerStatus.LATE, removed_at__isnull=True).select_related("group__account")
    looked = last_looked()  # judged as of our last look, like the status refresh: our gap is not an outage
    for worker in late.iterator(chunk_size=2000):
        if worker.pk in flapping:
            continue
        has_open = worker.pk in open_down
        seen = looked.get(worker.group_id)
        if not has_open and unreachable_but_alive(worker, now=now, looked=seen):
            worker_down(worker, at=now, reason=worker.status_reason, now=now, blind_accounts=blind_accounts, result=result)
        elif has_open and not automation_offline(worker, now=now, looked=seen):
            worker_recovered(worker, at=now, now=now, result=result)
