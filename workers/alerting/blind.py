"""Blind monitoring (per account): when the account's data cannot be trusted, one ``blind`` alert.

The latest Automation poll failed or no worker poll succeeded recently, Log Analytics queries fail,
or every worker of the account (spread over several groups) is offline (see ``blind_reasons``).
Worker alerts opened meanwhile are held (``suppressed="blind"``); when it clears, a "monitoring
restored" email goes and held alerts whose workers are still down are sent after a fresh group
wait (by then the first good poll has had time to bring them back).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Max

from workers.alerting.incidents import OFFLINE, SETTLING, OutboxResult, resolve
from workers.models import (
    Alert,
    AlertKind,
    AlertState,
    AutomationAccount,
    HybridWorker,
    PollKind,
    PollRun,
)
from workers.rules.format import format_duration


@dataclass(frozen=True)
class BlindReason:
    """One reason an account's monitoring is blind, as the email and the page state it."""

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
            age = format_duration((now - last_ok).total_seconds()) if last_ok else "ever"
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


def update_blind(*, now: datetime, result: OutboxResult) -> set[int]:
    """Open, update or resolve each enabled account's blind alert; the accounts whose worker alerts are held."""
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
            resolve(alert, now=now, result=result)
            # Held worker alerts go out after a fresh group wait unless their workers come back.
            Alert.objects.filter(state=AlertState.OPEN, account=account, suppressed="blind").update(
                suppressed=SETTLING, notify_at=now + timedelta(seconds=settings.ALERT_GROUP_WAIT_SECONDS)
            )
    return blind
