"""Outage alerting: from the status-change outbox to queued emails.

``process_outbox(now=...)`` is the single writer of alerts. It runs under one lock (a PostgreSQL
advisory lock; SQLite's IMMEDIATE transactions serialise writers anyway), and claims unprocessed
``StatusChange`` rows with a conditional UPDATE (``processed_at IS NULL``) so a change is handled
once even if two beats or a retried task call it at the same time. Emails are queued as
``Notification`` rows with a unique ``dedupe_key`` (``alert:<id>:open``, ``:recovery``, ...), so
queuing twice is impossible; ``workers.alerting.sending`` sends them.

Noise control, in the order it is applied on each call:

1. **Blind monitoring** (per account): the latest Automation poll failed or no worker poll succeeded
   recently, Log Analytics queries fail, or every worker of the account (spread over several
   groups) is offline (see ``blind_reasons``). One ``blind`` alert is
   opened; worker alerts opened meanwhile are held (``suppressed="blind"``); when it clears, a
   "monitoring restored" email goes and held alerts whose workers are still down are sent after a
   fresh group wait (by then the first good poll has had time to bring them back).
2. **Flapping**: ``FLAP_TRANSITIONS`` changes in or out of offline within ``FLAP_WINDOW_MINUTES``
   open one ``flapping`` alert; the worker's own alerts are held until no change for
   ``FLAP_STABLE_MINUTES``; then a "stable" email says its status, and a down alert opens if it is
   still down.
3. **Rollup** (group wait): a worker that goes down joins the group's alert that is still waiting.
   The wait is anchored on the moment the first worker's signals crossed the grace period
   (``HybridWorker.alert_after``) and lasts at most ALERT_GROUP_WAIT_SECONDS, but only while another
   live member of the group has its own deadline inside that wait (it went silent at about the same
   time and is about to cross): a site that goes dark gives one email, a lone failure goes at once.
4. **Maintenance**: a worker under a window gets an alert held as ``maintenance`` (state tracked,
   no email); if it is still down when the window ends, the email goes then. A recovery email is
   sent for every alert whose opening email went out, whenever the recovery happens.

A worker is *down* when its status is offline, or when Automation has not seen it beyond the
grace period while heartbeats keep arriving after that (it cannot pick up jobs: outbound 443
blocked). It is back when Automation sees it again (status online, or late with a fresh lastSeen).
"""
from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Max, Q

from workers.rules.health import format_age
from workers.models import (
    Alert,
    AlertKind,
    AlertMember,
    AlertState,
    AutomationAccount,
    HybridWorker,
    Notification,
    NotificationKind,
    PollKind,
    PollRun,
    StatusChange,
    WorkerGroup,
    WorkerStatus,
)
from workers.alerting import content as alert_content
from workers.alerting.content import RenderedEmail
from workers.alerting.maintenance import covered_worker_ids
from workers.alerting.pressure import pressure_decisions

log = logging.getLogger(__name__)

# pg_advisory_xact_lock key: "hrw-alerts" as a number, shared by every process_outbox caller.
ALERT_LOCK_KEY = 0x4852_5741_4C52
OUTBOX_BATCH = 5000
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


# --- Entry points -------------------------------------------------------------------------------


def process_outbox(*, now: datetime) -> OutboxResult:
    """Claim new status changes, open/resolve alerts, and queue the emails that are due.

    Safe to run twice or concurrently: the whole call holds the alerting lock, changes are claimed
    with ``UPDATE ... WHERE processed_at IS NULL``, and each email has a unique dedupe key. Called by
    the ``process_alert_outbox`` task (beat, every ALERT_PROCESS_SECONDS) and by tests.
    """
    result = OutboxResult()
    with transaction.atomic():
        _take_lock()
        blind_accounts = _update_blind(now=now, result=result)
        changes = _claim_changes(now=now)
        result.claimed = len(changes)
        for change in changes:
            _apply_change(change, now=now, blind_accounts=blind_accounts, result=result)
        _sweep_automation_unreachable(now=now, blind_accounts=blind_accounts, result=result)
        _settle_flapping(now=now, result=result)
        _update_pressure(now=now, blind_accounts=blind_accounts, result=result)
        _release_maintenance(now=now)
        _dispatch_due(now=now, result=result)
    return result


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
        kind__in=(*DOWN_KINDS, AlertKind.BLIND),
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


def queue_email(
    alert: Alert | None, kind: str, key: str, email: RenderedEmail, *, now: datetime, recipients: list[str] | None = None
) -> Notification | None:
    """Store one email to send; None when this key was queued before (idempotent)."""
    if recipients is None:
        recipients = recipients_for(alert)
    note, created = Notification.objects.get_or_create(
        dedupe_key=key,
        defaults={
            "alert": alert,
            "kind": kind,
            "recipients": ",".join(recipients),
            "subject": email.subject,
            "body_text": email.text,
            "body_html": email.html,
            "created_at": now,
            "next_attempt_at": now,
        },
    )
    return note if created else None


def recipients_for(alert: Alert | None) -> list[str]:
    """The group's list (WorkerGroup.alert_recipients) else ALERT_RECIPIENTS; for an account-wide
    alert, ALERT_RECIPIENTS plus every group's list of that account."""
    default = list(settings.ALERT_RECIPIENTS)
    if alert is None:
        return default
    if alert.group is not None:
        own = _split(alert.group.alert_recipients)
        return own or default
    if alert.account_id is not None:
        found = list(default)
        for raw in WorkerGroup.objects.filter(account_id=alert.account_id).values_list("alert_recipients", flat=True):
            for address in _split(raw):
                if address not in found:
                    found.append(address)
        return found
    return default


def _split(raw: str) -> list[str]:
    return [a.strip() for a in (raw or "").replace(";", ",").split(",") if a.strip()]


# --- Lock and claim -----------------------------------------------------------------------------


def _take_lock() -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [ALERT_LOCK_KEY])


def _claim_changes(*, now: datetime) -> list[StatusChange]:
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


# --- Blind monitoring ---------------------------------------------------------------------------


@dataclass(frozen=True)
class BlindReason:
    text: str
    holds_worker_alerts: bool  # Automation blind (or everything silent): worker alerts cannot be trusted


def _one_line(text: str) -> str:
    return " ".join((text or "no error recorded").split())[:200]


def blind_reasons(account: AutomationAccount, *, now: datetime) -> list[BlindReason]:
    """Why monitoring of this account cannot be trusted right now (empty list = it can).

    Automation: the latest groups poll (one per cycle) failed, or no worker poll succeeded for
    STALE_AFTER_INTERVALS worker-poll intervals. Log Analytics: the latest heartbeat query failed
    (reported, but worker alerts still go: status offline needs Automation silent too). Fleet: every
    worker of the account, across several groups, is offline at once.
    """
    reasons: list[BlindReason] = []
    runs = PollRun.objects.filter(account=account)
    latest_groups = runs.filter(kind=PollKind.GROUPS).order_by("-started_at", "-pk").first()
    last_ok = runs.filter(kind__in=(PollKind.GROUPS, PollKind.WORKERS), ok=True).aggregate(at=Max("started_at"))["at"]
    since = f" since {last_ok:%H:%M} UTC" if last_ok else ""
    if latest_groups is not None and not latest_groups.ok:
        reasons.append(BlindReason(f"Automation API failing{since}: {_one_line(latest_groups.error)}", True))
    else:
        latest = runs.filter(kind__in=(PollKind.GROUPS, PollKind.WORKERS)).order_by("-started_at", "-pk").first()
        max_age = timedelta(seconds=settings.POLL_WORKERS_SECONDS * settings.STALE_AFTER_INTERVALS)
        if latest is not None and (last_ok is None or now - last_ok > max_age):
            error = "" if latest.ok else f": {_one_line(latest.error)}"
            age = format_age((now - last_ok).total_seconds()) if last_ok else "ever"
            reasons.append(BlindReason(f"no successful Automation worker poll for {age}{error}", True))
    if account.workspace_id:
        latest_logs = runs.filter(kind=PollKind.HEARTBEAT).order_by("-started_at", "-pk").first()
        if latest_logs is not None and not latest_logs.ok:
            reasons.append(BlindReason(f"Log Analytics heartbeat query failing: {_one_line(latest_logs.error)}", False))
    statuses = list(
        HybridWorker.objects.filter(group__account=account, removed_at__isnull=True).values_list("status", "group_id")
    )
    groups = {group_id for _, group_id in statuses}
    if (
        len(statuses) > 1
        and len(groups) >= settings.ALERT_BLIND_MIN_GROUPS
        and all(status == OFFLINE for status, _ in statuses)
    ):
        reasons.append(BlindReason(f"every worker of the account ({len(statuses)} in {len(groups)} groups) went silent", True))
    return reasons


def _update_blind(*, now: datetime, result: OutboxResult) -> set[int]:
    blind: set[int] = set()
    open_blind = {a.account_id: a for a in Alert.objects.filter(kind=AlertKind.BLIND, state=AlertState.OPEN)}
    for account in AutomationAccount.objects.filter(enabled=True):
        reasons = blind_reasons(account, now=now)
        alert = open_blind.get(account.pk)
        if reasons:
            if any(r.holds_worker_alerts for r in reasons):
                blind.add(account.pk)
            detail = "\n".join(r.text for r in reasons)
            if alert is None:
                alert = Alert.objects.create(
                    kind=AlertKind.BLIND,
                    account=account,
                    title=reasons[0].text[:400],
                    detail=detail,
                    opened_at=now,
                    notify_at=now,
                )
                result.opened.append(alert.pk)
            elif alert.detail != detail:
                Alert.objects.filter(pk=alert.pk).update(detail=detail)
        elif alert is not None:
            _resolve(alert, now=now, result=result)
            # Held worker alerts go out after a fresh group wait unless their workers come back.
            Alert.objects.filter(state=AlertState.OPEN, account=account, suppressed="blind").update(
                suppressed=SETTLING, notify_at=now + timedelta(seconds=settings.ALERT_GROUP_WAIT_SECONDS)
            )
    return blind


# --- Changes ------------------------------------------------------------------------------------


def _apply_change(change: StatusChange, *, now: datetime, blind_accounts: set[int], result: OutboxResult) -> None:
    worker = change.worker
    involves_offline = OFFLINE in (change.old_status, change.new_status)
    if involves_offline and _check_flapping(worker, change, now=now, result=result):
        return
    if _open_flapping(worker) is not None:
        return  # held: the flapping alert speaks for this worker until it is stable
    if change.new_status == OFFLINE:
        _worker_down(worker, at=change.created_at, reason=change.reason, now=now, blind_accounts=blind_accounts, result=result)
    elif _open_memberships(worker).exists() and _can_take_jobs(worker, change.new_status, now=now):
        _worker_recovered(worker, at=change.created_at, now=now, result=result)


def _can_take_jobs(worker: HybridWorker, status: str, *, now: datetime) -> bool:
    """Online, or late while Automation still sees it (only the heartbeat is behind)."""
    if status == WorkerStatus.ONLINE.value:
        return True
    return status == WorkerStatus.LATE.value and not alert_content.automation_offline(worker, now=now)


def _is_down(worker: HybridWorker, *, now: datetime) -> bool:
    if worker.status == OFFLINE:
        return True
    return worker.status == WorkerStatus.LATE.value and alert_content.unreachable_but_alive(worker, now=now)


def _open_memberships(worker: HybridWorker) -> Iterable[AlertMember]:
    return AlertMember.objects.filter(
        worker=worker, recovered_at__isnull=True, alert__state=AlertState.OPEN, alert__kind__in=DOWN_KINDS
    ).select_related("alert")


def _open_flapping(worker: HybridWorker) -> Alert | None:
    return Alert.objects.filter(kind=AlertKind.FLAPPING, state=AlertState.OPEN, members__worker=worker).first()


def _worker_down(
    worker: HybridWorker, *, at: datetime, reason: str, now: datetime, blind_accounts: set[int], result: OutboxResult
) -> None:
    if _open_memberships(worker).exists():
        return  # already counted as down (e.g. late-but-unreachable, then offline)
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
        AlertMember.objects.get_or_create(alert=gathering, worker=worker, defaults={"down_at": at, "reason": reason[:300]})
        if gathering.kind != AlertKind.GROUP_ROLLUP:
            Alert.objects.filter(pk=gathering.pk).update(kind=AlertKind.GROUP_ROLLUP)
        return
    alert = Alert.objects.create(
        kind=AlertKind.WORKER_DOWN,
        account_id=account_id,
        group=worker.group,
        title=f"{worker.name} down",
        opened_at=at,
        notify_at=anchor + wait,
        suppressed=held,
    )
    AlertMember.objects.create(alert=alert, worker=worker, down_at=at, reason=reason[:300])
    result.opened.append(alert.pk)


def _worker_recovered(worker: HybridWorker, *, at: datetime, now: datetime, result: OutboxResult) -> None:
    for member in _open_memberships(worker):
        AlertMember.objects.filter(pk=member.pk).update(recovered_at=at)
        alert = member.alert
        if not alert.members.filter(recovered_at__isnull=True).exists():
            alert.resolved_at = at
            _resolve(alert, now=now, result=result)


def _resolve(alert: Alert, *, now: datetime, result: OutboxResult) -> None:
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
    else:
        email = alert_content.render_recovery(alert, now=now)
    note = queue_email(alert, NotificationKind.RECOVERY, f"alert:{alert.pk}:recovery", email, now=now)
    if note is not None:
        result.queued.append(note.pk)


# --- Flapping -----------------------------------------------------------------------------------


def _transitions(worker: HybridWorker, *, since: datetime, until: datetime) -> int:
    return (
        StatusChange.objects.filter(worker=worker, created_at__gt=since, created_at__lte=until)
        .filter(Q(old_status=OFFLINE) | Q(new_status=OFFLINE))
        .count()
    )


def _check_flapping(worker: HybridWorker, change: StatusChange, *, now: datetime, result: OutboxResult) -> bool:
    """Open the worker's flapping alert when it crosses the threshold. True = this change is absorbed."""
    if _open_flapping(worker) is not None:
        return True
    window = timedelta(minutes=settings.FLAP_WINDOW_MINUTES)
    count = _transitions(worker, since=change.created_at - window, until=change.created_at)
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
    for member in _open_memberships(worker):
        down_alert = member.alert
        AlertMember.objects.filter(pk=member.pk).update(recovered_at=change.created_at)
        if not down_alert.members.filter(recovered_at__isnull=True).exists():
            Alert.objects.filter(pk=down_alert.pk, state=AlertState.OPEN).update(
                state=AlertState.RESOLVED, resolved_at=change.created_at, suppressed="flapping", next_reminder_at=None
            )
            result.resolved.append(down_alert.pk)
    return True


def _settle_flapping(*, now: datetime, result: OutboxResult) -> None:
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
        _resolve(alert, now=now, result=result)
        worker.refresh_from_db()
        if _is_down(worker, now=now):
            # Stable, but down: a normal alert, due at once (the wait was the stability period).
            _worker_down(worker, at=now, reason=worker.status_reason, now=now, blind_accounts=set(), result=result)
            Alert.objects.filter(members__worker=worker, state=AlertState.OPEN, kind__in=DOWN_KINDS, notified_at__isnull=True).update(
                notify_at=now
            )


# --- Automation unreachable while heartbeats continue --------------------------------------------


def _sweep_automation_unreachable(*, now: datetime, blind_accounts: set[int], result: OutboxResult) -> None:
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
    for worker in late.iterator(chunk_size=2000):
        if worker.pk in flapping:
            continue
        has_open = worker.pk in open_down
        if not has_open and alert_content.unreachable_but_alive(worker, now=now):
            _worker_down(worker, at=now, reason=worker.status_reason, now=now, blind_accounts=blind_accounts, result=result)
        elif has_open and not alert_content.automation_offline(worker, now=now):
            _worker_recovered(worker, at=now, now=now, result=result)


# --- Sustained CPU/memory pressure ---------------------------------------------------------------


def _update_pressure(*, now: datetime, blind_accounts: set[int], result: OutboxResult) -> None:
    """Open one pressure alert per worker under sustained pressure and resolve the ones that cleared.

    The rule and its bounded queries are in ``workers.alerting.pressure``; this runs under the
    alerting lock, and a worker with an open pressure alert is never a candidate again, so two calls
    open it once. Maintenance holds the email like a down alert's (``_release_maintenance`` sends it
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
        _resolve(alert, now=now, result=result)


# --- Maintenance and dispatch -------------------------------------------------------------------


def _release_maintenance(*, now: datetime) -> None:
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


def _dispatch_due(*, now: datetime, result: OutboxResult) -> None:
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
            count = _transitions(member.worker, since=now - window, until=now) if member else 0
            email = alert_content.render_flapping(alert, now=now, transitions=count)
        elif alert.kind == AlertKind.PRESSURE:
            email = alert_content.render_pressure(alert, now=now)
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
