"""refresh_statuses: status through a conditional UPDATE, one StatusChange per real change."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.fixtures.concurrency import run_in_threads
from workers.fleet.status import refresh_statuses
from workers.models import AutomationAccount, HybridWorker, StatusChange, WorkerGroup
from workers.rules.signals import Thresholds

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
T = Thresholds(lastseen_late=90, lastseen_offline=180, heartbeat_late=300, heartbeat_offline=600)


def make_worker(name: str = "hrw-01", *, seen: float | None = 10, hb: float | None = 20, status: str = "unknown",
                group: WorkerGroup | None = None, account_name: str = "acct") -> HybridWorker:
    if group is None:
        account, _ = AutomationAccount.objects.get_or_create(
            name=account_name, defaults={"subscription_id": "s", "resource_group": "rg", "automation_account": account_name}
        )
        group, _ = WorkerGroup.objects.get_or_create(account=account, name="g1", defaults={"azure_id": f"/{account_name}/g1"})
    return HybridWorker.objects.create(
        group=group,
        azure_id=f"{group.azure_id}/{name}",
        worker_id=name,
        name=name,
        registered_at=NOW - timedelta(days=1),
        last_seen_at=None if seen is None else NOW - timedelta(seconds=seen),
        last_heartbeat_at=None if hb is None else NOW - timedelta(seconds=hb),
        status=status,
    )


@pytest.mark.django_db
def test_it_sets_the_status_reason_and_deadline():
    w = make_worker(seen=10, hb=20)
    refresh_statuses(now=NOW, thresholds=T)
    w.refresh_from_db()
    assert w.status == "online"
    assert w.status_changed_at == NOW
    assert w.alert_after == NOW - timedelta(seconds=20) + timedelta(seconds=600)
    assert "Automation last seen 10 s ago" in w.status_reason


@pytest.mark.django_db
def test_it_writes_one_status_change_per_change():
    w = make_worker(seen=10, hb=20, status="online")
    HybridWorker.objects.filter(pk=w.pk).update(last_seen_at=NOW - timedelta(hours=1), last_heartbeat_at=NOW - timedelta(hours=1))
    result = refresh_statuses(now=NOW, thresholds=T)
    change = StatusChange.objects.get()
    assert (change.worker_id, change.old_status, change.new_status, change.processed_at) == (w.pk, "online", "offline", None)
    assert result.changes == 1


@pytest.mark.django_db
def test_it_writes_no_change_when_the_status_holds():
    make_worker(seen=10, hb=20, status="online")
    refresh_statuses(now=NOW, thresholds=T)
    assert StatusChange.objects.count() == 0


@pytest.mark.django_db
def test_running_it_twice_writes_the_change_once():
    make_worker(seen=1000, hb=1000, status="online")
    refresh_statuses(now=NOW, thresholds=T)
    refresh_statuses(now=NOW, thresholds=T)
    assert StatusChange.objects.count() == 1


@pytest.mark.django_db
def test_it_records_a_recovery():
    w = make_worker(seen=10, hb=20, status="offline")
    refresh_statuses(now=NOW, thresholds=T)
    assert StatusChange.objects.get().new_status == "online"
    w.refresh_from_db()
    assert w.status == "online"


@pytest.mark.django_db
def test_it_uses_the_group_grace_period():
    w = make_worker(seen=130, hb=130, status="online")
    WorkerGroup.objects.filter(pk=w.group_id).update(grace_seconds=120)
    refresh_statuses(now=NOW, thresholds=T)
    w.refresh_from_db()
    assert w.status == "offline"


@pytest.mark.django_db
def test_it_skips_removed_workers():
    w = make_worker(seen=1000, hb=1000, status="online")
    HybridWorker.objects.filter(pk=w.pk).update(removed_at=NOW)
    refresh_statuses(now=NOW, thresholds=T)
    w.refresh_from_db()
    assert w.status == "online" and StatusChange.objects.count() == 0


@pytest.mark.django_db
def test_it_limits_itself_to_one_account():
    a = make_worker("a1", seen=1000, hb=1000, status="online", account_name="a")
    b = make_worker("b1", seen=1000, hb=1000, status="online", account_name="b")
    refresh_statuses(a.group.account_id, now=NOW, thresholds=T)
    assert list(StatusChange.objects.values_list("worker_id", flat=True)) == [a.pk]
    b.refresh_from_db()
    assert b.status == "online"


@pytest.mark.django_db
def test_it_moves_the_deadline_without_a_change_row_when_signals_refresh():
    w = make_worker(seen=10, hb=20, status="online")
    refresh_statuses(now=NOW, thresholds=T)
    HybridWorker.objects.filter(pk=w.pk).update(last_heartbeat_at=NOW)
    result = refresh_statuses(now=NOW, thresholds=T)
    w.refresh_from_db()
    assert w.alert_after == NOW + timedelta(seconds=600)
    assert result.updated == 1 and StatusChange.objects.count() == 0


@pytest.mark.django_db
def test_a_change_lost_to_another_refresh_writes_nothing():
    """The conditional UPDATE: a caller that read a stale status must not log a change."""
    from workers.fleet.status import change_statuses

    w = make_worker(seen=1000, hb=1000, status="offline")
    stale_read = {"status": "offline", "status_reason": "r", "status_changed_at": NOW, "alert_after": None, "expected_status": "online"}
    assert change_statuses({w.pk: stale_read}, now=NOW) == 0
    assert StatusChange.objects.count() == 0


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_concurrent_refreshes_write_one_change():
    workers = [make_worker(f"hrw-{i:02}", seen=1000, hb=1000, status="online") for i in range(20)]
    run_in_threads(lambda: refresh_statuses(now=NOW, thresholds=T))
    assert StatusChange.objects.count() == len(workers)
    assert set(StatusChange.objects.values_list("new_status", flat=True)) == {"offline"}
