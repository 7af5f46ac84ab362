"""Builders for the alerting tests (imported by tests/*/test_alert*.py); the SMTP server is tests/fixtures/smtp.py."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

from workers.alerting.incidents import OutboxResult
from workers.alerting.outbox import process_outbox
from workers.alerting.sending import send_pending
from workers.models import AutomationAccount, HybridWorker, PollRun, StatusChange, WorkerGroup

T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
WAIT = timedelta(seconds=60)  # the default group wait (ALERT_GROUP_WAIT_SECONDS): held alerts go out a WAIT later


def make_account(name: str = "aa-ops") -> AutomationAccount:
    return AutomationAccount.objects.create(
        name=name, subscription_id="sub", resource_group="rg", automation_account=name
    )


def make_group(account: AutomationAccount, name: str, workers: int, *, recipients: str = "", now: datetime = T0) -> WorkerGroup:
    group = WorkerGroup.objects.create(
        account=account, azure_id=f"/sub/{account.name}/{name}", name=name, alert_recipients=recipients
    )
    for i in range(1, workers + 1):
        HybridWorker.objects.create(
            group=group,
            azure_id=f"/sub/{account.name}/{name}/w{i}",
            worker_id=f"{name}-{i}",
            name=f"{name}-{i:02d}",
            # A 2026 fleet: extension-based (V2) workers; the OS follows the group's name.
            worker_type="HybridV2",
            os_type="Linux" if "linux" in name else "Windows",
            status="online",
            last_seen_at=now,
            last_heartbeat_at=now,
        )
    return group


def ok_poll(account: AutomationAccount, at: datetime, *, ok: bool = True, error: str = "", kind: str = "groups") -> PollRun:
    """A poll run as workers.fleet.polling records it (default: the account's groups poll of a cycle)."""
    return PollRun.objects.create(account=account, kind=kind, started_at=at, finished_at=at, ok=ok, error=error)


def go(worker: HybridWorker, new: str, at: datetime, *, silent_since: datetime | None = None) -> StatusChange:
    """Record a status change the way workers.fleet.status does (status column + one outbox row).

    ``silent_since``: the last signal time; for offline, signals are moved there and
    ``alert_after`` set to when they crossed the default grace (180 s Automation, 600 s heartbeat);
    by default the worker went silent 610 s before ``at``.
    """
    old = worker.status
    fields: dict[str, object] = {"status": new, "status_changed_at": at}
    if new == "offline":
        last = silent_since or at - timedelta(seconds=610)
        fields.update(last_seen_at=last, last_heartbeat_at=last, alert_after=last + timedelta(seconds=600))
    elif new == "online":
        fields.update(last_seen_at=at, last_heartbeat_at=at, alert_after=at + timedelta(seconds=600))
    HybridWorker.objects.filter(pk=worker.pk).update(**fields)
    for name, value in fields.items():
        setattr(worker, name, value)
    return StatusChange.objects.create(worker=worker, old_status=old, new_status=new, reason=f"test {new}", created_at=at)



def make_fleet(now: datetime = T0) -> tuple[AutomationAccount, WorkerGroup, list[HybridWorker]]:
    """The usual alert fleet: account aa-ops with hrw-win (3 workers, returned in name order) and
    hrw-linux (2 workers), so one Windows worker going down is a lone failure, not the whole account."""
    account = make_account()
    group = make_group(account, "hrw-win", 3, now=now)
    make_group(account, "hrw-linux", 2, now=now)
    return account, group, list(group.workers.order_by("name"))


def tick(now: datetime, *, poll: bool = True) -> OutboxResult:
    """One beat: a successful worker poll for every account (unless ``poll=False``), the outbox, then
    the sender, all at ``now``."""
    if poll:
        for account in AutomationAccount.objects.all():
            ok_poll(account, now)
    result = process_outbox(now=now)
    send_pending(now=now)
    return result
