"""Outage alerting: from the status-change outbox to queued emails.

``process_outbox(now=...)`` is the single writer of alerts. It runs under one lock (a PostgreSQL
advisory lock; SQLite's IMMEDIATE transactions serialise writers anyway), and claims unprocessed
``StatusChange`` rows with a conditional UPDATE (``processed_at IS NULL``) so a change is handled
once even if two beats or a retried task call it at the same time. Emails are queued as
``Notification`` rows with a unique ``dedupe_key`` (``alert:<id>:open``, ``:recovery``, ...), so
queuing twice is impossible; ``workers.alerting.sending`` sends them.

Noise control, in the order it is applied on each call:

1. **Blind monitoring** (``workers.alerting.blind``): one alert per account whose data cannot be
   trusted; worker alerts opened meanwhile are held, and sent after a fresh group wait when it clears.
2. **Flapping** (``workers.alerting.flapping``): ``FLAP_TRANSITIONS`` changes in or out of offline
   within ``FLAP_WINDOW_MINUTES`` open one ``flapping`` alert; the worker's own alerts are held
   until no change for ``FLAP_STABLE_MINUTES``; then a "stable" email says its status, and a down
   alert opens if it is still down.
3. **Rollup** (group wait, ``workers.alerting.incidents`` and ``workers.alerting.dispatch``): a
   worker that goes down joins the group's alert that is still waiting. The wait is anchored on the
   moment the first worker's signals crossed the grace period (``HybridWorker.alert_after``) and
   lasts at most ALERT_GROUP_WAIT_SECONDS, but only while another live member of the group has its
   own deadline inside that wait (it went silent at about the same time and is about to cross): a
   site that goes dark gives one email, a lone failure goes at once.
4. **Maintenance** (``workers.alerting.maintenance``, released in ``workers.alerting.dispatch``): a
   worker under a window gets an alert held as ``maintenance`` (state tracked, no email); if it is
   still down when the window ends, the email goes then. A recovery email is sent for every alert
   whose opening email went out, whenever the recovery happens.
5. **Pressure**: sustained CPU/memory pressure opens one alert per worker (the rule and its bounded
   queries are in ``workers.alerting.pressure``).
6. **Jobs failing** (``workers.alerting.jobs_failing``): a group whose recent jobs fail for its
   managed identity or at the job limit gets one ``jobs_failing`` alert (the workers stay online,
   so no status change reports it).

Reminders and acknowledgement are in ``workers.alerting.reminders``.
"""
from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.db import connection, transaction

from workers.alerting.blind import update_blind
from workers.alerting.dispatch import dispatch_due, release_maintenance
from workers.alerting.flapping import check_flapping, settle_flapping
from workers.alerting.incidents import (
    OFFLINE,
    OutboxResult,
    can_take_jobs,
    open_flapping,
    open_memberships,
    resolve,
    sweep_automation_unreachable,
    worker_down,
    worker_recovered,
)
from workers.alerting.jobs_failing import update_jobs_failing
from workers.alerting.maintenance import covered_worker_ids
from workers.alerting.pressure import pressure_decisions
from workers.models import Alert, AlertKind, AlertMember, StatusChange

# pg_advisory_xact_lock key: "hrw-alerts" as a number, shared by every process_outbox caller.
ALERT_LOCK_KEY = 0x4852_5741_4C52
OUTBOX_BATCH = 5000


def process_outbox(*, now: datetime) -> OutboxResult:
    """Claim new status changes, open/resolve alerts, and queue the emails that are due.

    Safe to run twice or concurrently: the whole call holds the alerting lock, changes are claimed
    with ``UPDATE ... WHERE processed_at IS NULL``, and each email has a unique dedupe key. Called by
    the ``process_alert_outbox`` task (beat, every ALERT_PROCESS_SECONDS) and by tests.
    """
    result = OutboxResult()
    with transaction.atomic():
        _take_lock()
        blind_accounts = update_blind(now=now, result=result)
        changes = _claim_changes(now=now)
        result.claimed = len(changes)
        for change in changes:
            _apply_change(change, now=now, blind_accounts=blind_accounts, result=result)
        sweep_automation_unreachable(now=now, blind_accounts=blind_accounts, result=result)
        settle_flapping(now=now, result=result)
        _update_pressure(now=now, blind_accounts=blind_accounts, result=result)
        update_jobs_failing(now=now, blind_accounts=blind_accounts, result=result)
        release_maintenance(now=now)
        dispatch_due(now=now, result=result)
    return result


def _take_lock() -> None:
    """Serialise every caller on PostgreSQL (SQLite's IMMEDIATE transactions already do)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [ALERT_LOCK_KEY])


def _claim_changes(*, now: datetime) -> list[StatusChange]:
    """Mark up to OUTBOX_BATCH unprocessed changes as processed by this call and return them."""
    ids = list(
        StatusChange.objects.filter(processed_at__isnull=True, created_at__lte=now)
        .order_by("created_at", "pk")
        .values_list("pk", flat=True)[:OUTBOX_BATCH]
    )
    if not ids:
        return []
    StatusChange.objects.filter(pk__in=ids, processed_at__isnull=True).update(processed_at=now)
    # Only rows this call claimed: the lock guarantees nobody else claimed them in between.
    return list(
        StatusChange.objects.filter(pk__in=ids, processed_at=now)
        .select_related("worker__group__account")
        .order_by("created_at", "pk")
    )


def _apply_change(change: StatusChange, *, now: datetime, blind_accounts: set[int], result: OutboxResult) -> None:
    """Route one status change: flapping first, then down (offline) or back (can take jobs again)."""
    worker = change.worker
    involves_offline = OFFLINE in (change.old_status, change.new_status)
    if involves_offline and check_flapping(worker, change, now=now, result=result):
        return
    if open_flapping(worker) is not None:
        return  # held: the flapping alert speaks for this worker until it is stable
    if change.new_status == OFFLINE:
        worker_down(worker, at=change.created_at, reason=change.reason, now=now, blind_accounts=blind_accounts, result=result)
    elif open_memberships(worker).exists() and can_take_jobs(worker, change.new_status, now=now):
        worker_recovered(worker, at=change.created_at, now=now, result=result)


def _update_pressure(*, now: datetime, blind_accounts: set[int], result: OutboxResult) -> None:
    """Open one pressure alert per worker under sustained pressure and resolve the ones that cleared.

    The rule and its bounded queries are in ``workers.alerting.pressure``; this runs under the
    alerting lock, and a worker with an open pressure alert is never a candidate again, so two calls
    open it once. Maintenance holds the email like a down alert's (``release_maintenance`` sends it
    if the pressure outlasts the window); a recovery email goes only if the opening email went out.
    """
    decisions = pressure_decisions(now=now, skip_accounts=blind_accounts)
    covered = covered_worker_ids([w.pk for w in decisions.to_open], now=now) if decisions.to_open else set()
    for worker in decisions.to_open:
        alert = Alert.objects.create(
            kind=AlertKind.PRESSURE,
            account_id=worker.group.account_id,
            group=worker.group,
            title=f"{worker.name} under CPU/memory pressure",
            detail=f"CPU >= {settings.CAPACITY_CPU_PRESSURE_PCT} % or memory >= {settings.CAPACITY_MEM_PRESSURE_PCT} % "
            f"in at least {settings.ALERT_PRESSURE_SHARE:.0%} of the samples of {settings.ALERT_PRESSURE_MINUTES} min",
            opened_at=now,
            notify_at=now,
            suppressed="maintenance" if worker.pk in covered else "",
        )
        AlertMember.objects.create(alert=alert, worker=worker, down_at=now, reason="CPU/memory pressure")
        result.opened.append(alert.pk)
    for alert in decisions.to_resolve:
        AlertMember.objects.filter(alert=alert, recovered_at__isnull=True).update(recovered_at=now)
        alert.resolved_at = now
        resolve(alert, now=now, result=result)
