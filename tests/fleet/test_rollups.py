"""Hourly utilization rollups: complete hours, idempotent upserts."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from workers.fleet.rollups import PruneResult, prune_raw, rollup_utilization
from workers.models import AutomationAccount, HybridWorker, PollRun, UtilizationHourly, UtilizationSample, WorkerGroup

H = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


@pytest.fixture
def worker(db) -> HybridWorker:
    account = AutomationAccount.objects.create(name="a", subscription_id="s", resource_group="rg", automation_account="a")
    group = WorkerGroup.objects.create(account=account, azure_id="/g", name="g")
    return HybridWorker.objects.create(group=group, azure_id="/g/w", worker_id="w", name="w")


def sample(worker, minute: int, cpu: float, mem: float | None = None) -> None:
    UtilizationSample.objects.create(worker=worker, ts=H + timedelta(minutes=minute), cpu_pct=cpu, mem_pct=mem)


def test_it_rolls_up_an_hour(worker):
    sample(worker, 0, 10.0, 50.0)
    sample(worker, 30, 30.0, 70.0)
    sample(worker, 60, 99.0)  # next hour
    rollup_utilization(H, H + timedelta(hours=1))
    row = UtilizationHourly.objects.get(hour=H)
    assert (row.cpu_avg, row.cpu_max, row.mem_avg, row.mem_max, row.samples) == (20.0, 30.0, 60.0, 70.0, 2)


def test_it_recomputes_the_whole_hour_touched_by_a_partial_window(worker):
    sample(worker, 5, 10.0)
    sample(worker, 50, 30.0)
    rollup_utilization(H + timedelta(minutes=45), H + timedelta(minutes=55))
    assert UtilizationHourly.objects.get(hour=H).samples == 2


def test_running_it_twice_leaves_the_same_rows(worker):
    sample(worker, 5, 10.0)
    rollup_utilization(H, H + timedelta(hours=2))
    first = list(UtilizationHourly.objects.values_list("pk", "hour", "cpu_avg", "samples"))
    rollup_utilization(H, H + timedelta(hours=2))
    assert list(UtilizationHourly.objects.values_list("pk", "hour", "cpu_avg", "samples")) == first


def test_a_late_sample_updates_the_hour(worker):
    sample(worker, 5, 10.0)
    rollup_utilization(H, H + timedelta(hours=1))
    sample(worker, 6, 30.0)
    rollup_utilization(H, H + timedelta(hours=1))
    assert UtilizationHourly.objects.get(hour=H).cpu_avg == 20.0


def test_an_empty_window_writes_nothing(worker):
    assert rollup_utilization(H, H) == 0


def run(worker, hours_ago: float, *, ok: bool = True, kind: str = "jobs", scope: str = "") -> PollRun:
    return PollRun.objects.create(
        account=worker.group.account, kind=kind, scope=scope, started_at=H - timedelta(hours=hours_ago), ok=ok
    )


def test_it_prunes_poll_runs_past_their_retention_but_keeps_the_latest_good_one(worker, settings):
    settings.POLL_RUN_RETENTION_HOURS = 48
    old_good, recent = run(worker, 50), run(worker, 1, kind="perf")
    run(worker, 60)  # an older good run and a failed one, both past retention
    run(worker, 49, ok=False)
    result = prune_raw(now=H)
    assert set(PollRun.objects.values_list("pk", flat=True)) == {old_good.pk, recent.pk}
    assert result.poll_runs == 2


def test_it_keeps_the_last_good_worker_poll_of_a_group_failing_longer_than_the_retention(worker, settings):
    settings.POLL_RUN_RETENTION_HOURS = 48
    failing_last_good = run(worker, 50, kind="workers", scope="group-a")
    run(worker, 1, ok=False, kind="workers", scope="group-a")
    run(worker, 50, kind="workers", scope="group-b")  # group-b was polled since: its old run may go
    polled = run(worker, 1, kind="workers", scope="group-b")
    prune_raw(now=H)
    assert set(PollRun.objects.filter(ok=True).values_list("pk", flat=True)) == {failing_last_good.pk, polled.pk}


def test_it_prunes_samples_past_their_retention(worker, settings):
    settings.UTILIZATION_RETENTION_DAYS = 7
    sample(worker, -7 * 24 * 60 - 1, 10.0)
    sample(worker, -7 * 24 * 60 + 1, 20.0)
    assert prune_raw(now=H).samples == 1
    assert list(UtilizationSample.objects.values_list("cpu_pct", flat=True)) == [20.0]


def test_pruning_twice_deletes_nothing_more(worker):
    run(worker, 500, ok=False)
    prune_raw(now=H)
    assert prune_raw(now=H) == PruneResult(0, 0)
