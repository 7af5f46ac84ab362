"""The fleet the phone-layout and screenshot tests show: the emulator through the real pipeline
(polls, status refresh, rollups, capacity runs), plus what makes every page's rows appear: an open
alert with a member, a resolved and acknowledged one, a failed email and a maintenance window.
The alert and email rows are written straight through the ORM (their own tests drive the outbox)."""
from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.db.models import Count
from django.utils import timezone

from tests.browser.pipeline import poll_and_refresh, register, roll_up
from workers.models import Alert, AlertMember, HybridWorker, Job, MaintenanceWindow, Notification, WorkerGroup


def build_pages_fleet(make_emulator: Any) -> dict[str, Any]:
    now = timezone.now().replace(microsecond=0)
    emulator = make_emulator(seed=21, groups=4, workers=12, history_days=0.25, scenarios=True, start=now)
    account = register(emulator)
    poll_and_refresh(account, now=now)
    roll_up(now=now, hours=8)
    # The busiest group with two or more members: its pages show member rows and job rows.
    groups = WorkerGroup.objects.filter(account=account).annotate(n_jobs=Count("jobs", distinct=True), n_workers=Count("workers", distinct=True))
    group = groups.filter(n_workers__gte=2).order_by("-n_jobs", "name").first()
    assert group is not None and group.n_jobs > 0, "the emulator fleet has a group with jobs and two members"
    worker = HybridWorker.objects.filter(group=group).order_by("name").first()
    assert worker is not None
    job = Job.objects.filter(group=group).order_by("-created_at").first()

    open_alert = Alert.objects.create(
        kind="worker_down", group=group, account=account, title=f"DOWN: 1 of {group.workers.count()} workers of {group.name}",
        detail="Automation lastSeen 7 min old; Log Analytics heartbeat 6 min old", opened_at=now - timedelta(minutes=7),
        notify_at=now - timedelta(minutes=5), notified_at=now - timedelta(minutes=5),
    )
    AlertMember.objects.create(alert=open_alert, worker=worker, down_at=now - timedelta(minutes=7), reason="agent stopped")
    done = Alert.objects.create(
        kind="worker_down", group=group, account=account, title=f"DOWN: {worker.name}", state="resolved",
        opened_at=now - timedelta(hours=3), resolved_at=now - timedelta(hours=2), acknowledged_at=now - timedelta(hours=2, minutes=30),
        notify_at=now - timedelta(hours=3), notified_at=now - timedelta(hours=3),
    )
    AlertMember.objects.create(alert=done, worker=worker, down_at=now - timedelta(hours=3), recovered_at=now - timedelta(hours=2))
    email = Notification.objects.create(
        alert=open_alert, kind="alert", dedupe_key=f"down-{open_alert.pk}", recipients="noc-team@example.com,oncall@example.com",
        subject=f"[HRW] DOWN: {worker.name} in {group.name}", body_text="down", status="failed", attempts=3,
        last_error="SMTPServerDisconnected: Connection unexpectedly closed by smtp.example.com:587", created_at=now - timedelta(minutes=5),
    )
    MaintenanceWindow.objects.create(group=group, starts_at=now + timedelta(hours=1), ends_at=now + timedelta(hours=2),
                                     reason="Monthly patching of the update-management servers")
    return {"emulator": emulator, "account": account, "group": group, "worker": worker, "now": now, "alert": open_alert, "email": email, "job": job}
