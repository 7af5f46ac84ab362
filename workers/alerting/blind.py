"""Blind monitoring (per account): when the account's data cannot be trusted, one ``blind`` alert.

The latest Automation groups poll failed or no worker poll succeeded recently, Log Analytics queries
fail, the HybridWorkerPing metric stopped being read (only once it has been read for the account:
an account without the ping is never blind for it), or every worker of the account (spread over
several groups) is offline (see ``blind_reasons``).
Only finished polls are evidence (``workers.fleet.selectors.poll_evidence``, the rule the pages'
freshness reads too): a poll still in flight is never a failure.

A single failed poll is never a page: the condition must hold for ``ALERT_BLIND_GRACE_SECONDS``
(about two worker-poll intervals, so a transient error's retry or the next cycle can clear it) before
the alert is opened, dated from when the condition began (its ``opened_at``, the email's "since").
Meanwhile worker alerts opened are already held (``suppressed="blind"``), since their data cannot be
trusted either. When it clears, a "monitoring restored" email goes (only if the blind email went)
and held alerts whose workers are still down are sent after a fresh group wait (by then the first
good poll has had time to bring them back).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Max, Min, Q

from workers.alerting.content import HELD_NOTE, NOT_HELD_NOTE
from workers.alerting.incidents import OFFLINE, SETTLING, OutboxResult, resolve
from workers.fleet.selectors.poll_evidence import failing_since, finished_polls, stale_after_seconds
from workers.models import (
    Alert,
    AlertKind,
    AlertState,
    AutomationAccount,
    HybridWorker,
    PollKind,
)
from workers.rules.format import format_duration


@dataclass(frozen=True)
class BlindReason:
    """One reason an account's monitoring is blind, as the email and the page state it."""

    text: str
    holds_worker_alerts: bool  # Automation blind (or everything silent): worker alerts cannot be trusted
    since: datetime  # when the condition began: the grace period counts from here, the email states it


def _one_line(text: str) -> str:
    return " ".join((text or "no error recorded").split())[:200]


def _automation_reason(account: AutomationAccount, *, now: datetime) -> BlindReason | None:
    """The groups poll (one per cycle) is failing, or no groups/worker poll succeeded for the stale
    window (STALE_AFTER_INTERVALS worker-poll intervals, the pages' threshold too)."""
    groups = finished_polls(account=account, kind=PollKind.GROUPS)
    failing = failing_since(groups)
    if failing is not None:
        error = groups.order_by("-started_at", "-pk").values_list("error", flat=True).first()
        return BlindReason(f"Automation API failing since {failing:%H:%M} UTC: {_one_line(error or '')}", True, failing)
    automation = finished_polls(account=account, kind__in=(PollKind.GROUPS, PollKind.WORKERS))
    span = automation.aggregate(last_ok=Max("finished_at", filter=Q(ok=True)), first=Min("finished_at"))
    last_ok: datetime | None = span["last_ok"]
    if span["first"] is None:
        return None  # never polled yet: nothing to judge
    max_age = timedelta(seconds=stale_after_seconds(PollKind.WORKERS))
    if last_ok is not None and now - last_ok <= max_age:
        return None
    latest = automation.order_by("-started_at", "-pk").first()
    error = "" if latest is None or latest.ok else f": {_one_line(latest.error)}"
    age = format_duration((now - last_ok).total_seconds()) if last_ok else "ever"
    # The data stopped at the last success (or at the first poll, if none ever succeeded).
    return BlindReason(f"no successful Automation worker poll for {age}{error}", True, last_ok or span["first"])


def _ping_reason(account: AutomationAccount, *, now: datetime) -> BlindReason | None:
    """The ping, once it has ever been read for the account: its latest finished poll failed, or no
    ping poll succeeded for the stale window (STALE_AFTER_INTERVALS ping intervals, the banner's
    threshold too). Never read: the metric is not available to us, which is not blindness."""
    pings = finished_polls(account=account, kind=PollKind.PING)
    last_ok: datetime | None = pings.filter(ok=True).aggregate(at=Max("finished_at"))["at"]
    if last_ok is None:
        return None
    failing = failing_since(pings)
    if failing is not None:
        error = pings.order_by("-started_at", "-pk").values_list("error", flat=True).first()
        return BlindReason(f"HybridWorkerPing metric failing since {failing:%H:%M} UTC: {_one_line(error or '')}", False, failing)
    if now - last_ok <= timedelta(seconds=stale_after_seconds(PollKind.PING)):
        return None
    age = format_duration((now - last_ok).total_seconds())
    return BlindReason(f"no successful HybridWorkerPing read for {age}", False, last_ok)


def blind_reasons(account: AutomationAccount, *, now: datetime) -> list[BlindReason]:
    """Why monitoring of this account cannot be trusted right now (empty list = it can).

    Automation: the latest finished groups poll failed, or no worker poll succeeded for
    STALE_AFTER_INTERVALS worker-poll intervals. Log Analytics: the latest finished heartbeat query
    failed (reported, but worker alerts still go: status offline needs Automation silent too). Ping
    (only where it was ever read): failing or overdue, reported the same way (the status refresh
    judges the ping as of our last read of it, so a stale ping never makes a worker offline). Fleet:
    every worker of the account, across several groups, is offline at once. Polls in flight count
    for nothing. Each reason carries when its condition began.
    """
    reasons: list[BlindReason] = []
    automation = _automation_reason(account, now=now)
    if automation is not None:
        reasons.append(automation)
    if account.workspace_id:
        heartbeats = finished_polls(account=account, kind=PollKind.HEARTBEAT)
        failing = failing_since(heartbeats)
        if failing is not None:
            error = heartbeats.order_by("-started_at", "-pk").values_list("error", flat=True).first()
            reasons.append(BlindReason(f"Log Analytics heartbeat query failing: {_one_line(error or '')}", False, failing))
    ping = _ping_reason(account, now=now)
    if ping is not None:
        reasons.append(ping)
    statuses = list(
        HybridWorker.objects.filter(group__account=account, removed_at__isnull=True).values_list(
            "status", "group_id", "status_changed_at"
        )
    )
    groups = {group_id for _, group_id, _ in statuses}
    if (
        len(statuses) > 1
        and len(groups) >= settings.ALERT_BLIND_MIN_GROUPS
        and all(status == OFFLINE for status, _, _ in statuses)
    ):
        # It became true when the last of them went offline.
        changed = [at for _, _, at in statuses if at is not None]
        since = max(changed) if changed else now
        reasons.append(BlindReason(f"every worker of the account ({len(statuses)} in {len(groups)} groups) went silent", True, since))
    return reasons


def update_blind(*, now: datetime, result: OutboxResult) -> set[int]:
    """Open, update or resolve each enabled account's blind alert; the accounts whose worker alerts are held.

    The alert is opened only once its condition has held for ALERT_BLIND_GRACE_SECONDS, dated from
    the condition's start (so it is due, and its email goes, at once); a blip that clears within the
    grace leaves no alert and no email. Worker alerts are held from the first moment, and released
    (after a fresh group wait) as soon as the condition clears, whether or not the alert was opened.
    """
    blind: set[int] = set()
    grace = timedelta(seconds=settings.ALERT_BLIND_GRACE_SECONDS)
    open_blind = {a.account_id: a for a in Alert.objects.filter(kind=AlertKind.BLIND, state=AlertState.OPEN)}
    for account in AutomationAccount.objects.filter(enabled=True):
        reasons = blind_reasons(account, now=now)
        alert = open_blind.get(account.pk)
        if reasons:
            held = any(r.holds_worker_alerts for r in reasons)
            if held:
                blind.add(account.pk)
            detail = "\n".join([r.text for r in reasons] + [HELD_NOTE if held else NOT_HELD_NOTE])
            since = min(r.since for r in reasons)
            if alert is None and now >= since + grace:
                alert = Alert.objects.create(
                    kind=AlertKind.BLIND,
                    account=account,
                    title=reasons[0].text[:400],
                    detail=detail,
                    opened_at=since,
                    notify_at=since + grace,
                )
                result.opened.append(alert.pk)
            elif alert is not None and alert.detail != detail:
                Alert.objects.filter(pk=alert.pk).update(detail=detail)
            continue
        if alert is not None:
            resolve(alert, now=now, result=result)
        # Held worker alerts go out after a fresh group wait unless their workers come back.
        Alert.objects.filter(state=AlertState.OPEN, account=account, suppressed="blind").update(
            suppressed=SETTLING, notify_at=now + timedelta(seconds=settings.ALERT_GROUP_WAIT_SECONDS)
        )
    return blind
