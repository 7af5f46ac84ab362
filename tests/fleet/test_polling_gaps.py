"""Issue 12: a gap in our own polling is never a status change of the fleet.

After the Celery worker was down about 3.5 minutes, the first status refresh judged the old data
before new polls landed and turned 118 workers offline and 78 late, reverted seconds later. Here the
polls run through the real adapter against the HTTPS emulator and record their ``PollRun`` rows as
the product does; the clock is frozen (time_machine) and moved in step with the emulator's.
"""
from __future__ import annotations

from datetime import timedelta

import pytest

from workers.azure.errors import AzureTransientError
from workers.fleet import polling
from workers.fleet.accounts import add_account_from_connection_file
from workers.fleet.selectors.last_looked import last_looked
from workers.fleet.status import refresh_statuses
from workers.models import AutomationAccount, HybridWorker, PollRun, StatusChange, WorkerGroup
from workers.rules.signals import Thresholds

pytestmark = pytest.mark.django_db


@pytest.fixture
def fleet(make_emulator, time_machine):
    """Six healthy workers in three groups, polled once and judged online, at a frozen clock."""
    emu = make_emulator(seed=5, groups=3, workers=6, history_days=1 / 24, page_size=4, scenarios=False)
    time_machine.move_to(emu.clock.now(), tick=False)
    account = add_account_from_connection_file(emu.connection_file)[0]
    poll_everything(account)
    assert set(HybridWorker.objects.values_list("status", flat=True)) == {"online"}
    return account, emu


def advance(emu, time_machine, seconds: float) -> None:
    """Time passes for the fleet and for us alike; nothing is polled meanwhile."""
    emu.clock.advance(seconds)
    time_machine.shift(timedelta(seconds=seconds))


def poll_group(account: AutomationAccount, group_id: int) -> int:
    """What ``tasks.poll_group_workers`` does: poll one group, then refresh that group's statuses."""
    assert polling.poll_workers(account.pk, group_id).ok
    return refresh_statuses(account.pk, group_id=group_id).changes


def poll_everything(account: AutomationAccount) -> int:
    """Every group's worker poll and the log polls, each followed by its refresh, as the tasks do."""
    changes = 0
    assert polling.poll_groups(account.pk).ok
    for group_id in WorkerGroup.objects.filter(account=account).values_list("pk", flat=True):
        changes += poll_group(account, group_id)
    assert all(o.ok for o in polling.poll_logs(account.pk))
    return changes + refresh_statuses(account.pk).changes


def test_a_four_minute_gap_in_our_polling_changes_no_status(fleet, time_machine):
    account, emu = fleet
    polls = PollRun.objects.count()
    advance(emu, time_machine, 240)  # the Celery worker is down: no poll runs, the beat refresh does
    result = refresh_statuses()
    assert PollRun.objects.count() == polls
    assert result.changes == 0 and StatusChange.objects.filter(new_status__in=["late", "offline"]).count() == 0
    assert set(HybridWorker.objects.values_list("status", flat=True)) == {"online"}
    reasons = list(HybridWorker.objects.values_list("status_reason", flat=True))
    assert all("not re-checked: our last worker poll of this group was 4 min ago" in r for r in reasons), reasons


def test_after_the_gap_fresh_polls_showing_the_workers_alive_keep_them_online(fleet, time_machine):
    account, emu = fleet
    advance(emu, time_machine, 240)
    refresh_statuses()  # the beat's refresh runs first
    assert poll_everything(account) == 0
    assert set(HybridWorker.objects.values_list("status", flat=True)) == {"online"}
    assert not any("not re-checked" in r for r in HybridWorker.objects.values_list("status_reason", flat=True))
    assert StatusChange.objects.filter(new_status__in=["late", "offline"]).count() == 0


def test_a_fresh_poll_that_still_shows_an_old_lastseen_turns_the_worker_late_then_offline(fleet, time_machine):
    account, emu = fleet
    victim = HybridWorker.objects.order_by("name").first()
    emu.start_scenario("agent_stopped", victim.name, 60)  # really stopped, during our own gap
    advance(emu, time_machine, 240)
    assert refresh_statuses().changes == 0  # not re-checked yet: no verdict on the old data
    assert poll_group(account, victim.group_id) == 1  # the fresh poll shows lastSeen still old
    victim.refresh_from_db()
    assert victim.status == "late"  # Automation offline; the heartbeat is not re-checked yet
    assert "heartbeat poll of this account" in victim.status_reason or "heartbeat fresh" in victim.status_reason
    siblings = HybridWorker.objects.filter(group_id=victim.group_id).exclude(pk=victim.pk)
    assert set(siblings.values_list("status", flat=True)) == {"online"}
    others = HybridWorker.objects.exclude(group_id=victim.group_id)
    assert set(others.values_list("status", flat=True)) == {"online"}  # their groups are not re-polled yet

    advance(emu, time_machine, 600)
    poll_everything(account)
    victim.refresh_from_db()
    assert victim.status == "offline"
    assert list(StatusChange.objects.exclude(old_status="unknown").order_by("pk").values_list("worker_id", "new_status")) == [
        (victim.pk, "late"), (victim.pk, "offline"),
    ]
    # The outage is still dated from the signals, not from when we could look again.
    rules = Thresholds.from_settings()
    assert victim.alert_after == max(
        victim.last_seen_at + timedelta(seconds=rules.lastseen_offline),
        victim.last_heartbeat_at + timedelta(seconds=rules.heartbeat_offline),
    )


def test_a_failed_poll_is_not_a_look(fleet, time_machine):
    account, emu = fleet
    group = WorkerGroup.objects.order_by("name").first()
    advance(emu, time_machine, 240)
    emu.inject_fault("503", count=3, route="arm")  # the adapter's own retries use up all three
    with pytest.raises(AzureTransientError):
        polling.poll_workers(account.pk, group.pk)
    assert not PollRun.objects.filter(scope=group.name).latest("started_at").ok
    assert refresh_statuses().changes == 0
    assert set(HybridWorker.objects.values_list("status", flat=True)) == {"online"}


def test_a_group_never_polled_is_judged_at_now(fleet, time_machine):
    account, emu = fleet
    group = WorkerGroup.objects.order_by("name").first()
    PollRun.objects.filter(kind="workers", scope=group.name).delete()
    advance(emu, time_machine, 240)
    refresh_statuses()
    assert set(HybridWorker.objects.filter(group=group).values_list("status", flat=True)) == {"late"}
    assert set(HybridWorker.objects.exclude(group=group).values_list("status", flat=True)) == {"online"}


def test_when_we_last_looked_is_one_query_for_any_number_of_groups(fleet, django_assert_num_queries):
    account, _ = fleet
    with django_assert_num_queries(1):
        looked = last_looked(account_id=account.pk)
    assert set(looked) == set(WorkerGroup.objects.values_list("pk", flat=True))
    for group in WorkerGroup.objects.all():
        run = PollRun.objects.filter(kind="workers", scope=group.name, ok=True).latest("started_at")
        assert looked[group.pk].automation == run.started_at
        assert looked[group.pk].heartbeat == PollRun.objects.filter(kind="heartbeat", ok=True).latest("started_at").started_at
