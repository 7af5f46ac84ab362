"""Hourly utilization rollups: complete hours, idempotent upserts."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from workers.models import AutomationAccount, HybridWorker, UtilizationHourly, UtilizationSample, WorkerGroup
from workers.services.rollups import rollup_utilization

H = datetime(2026, 11, 20, 10, 0, tzinfo=timezone.utc)


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
