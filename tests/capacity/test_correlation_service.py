"""workers.capacity.correlation / capacity: what a run stores, and that running it twice is safe."""
from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from tests.capacity.data import build_fleet
from workers.capacity.correlation import compute_findings
from workers.capacity.measure import measure_group_capacity
from workers.db import EpochBucket
from workers.models import (
    AutomationAccount,
    CapacityRun,
    CorrelationFinding,
    GroupCapacity,
    HybridWorker,
    Job,
    UtilizationHourly,
    WorkerGroup,
    WorkerStatus,
)

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def _group(name: str = "g", members: int = 2, online: int | None = None) -> WorkerGroup:
    tag = uuid.uuid4().hex[:6]
    account = AutomationAccount.objects.create(name=f"a-{tag}", subscription_id="s", resource_group="r", automation_account="aa")
    group = WorkerGroup.objects.create(account=account, azure_id=f"/{tag}/{name}", name=name)
    for i in range(members):
        HybridWorker.objects.create(
            group=group, azure_id=f"/{tag}/{name}/{i}", worker_id=str(i), name=f"{name}-{i}",
            status=WorkerStatus.ONLINE if online is None or i < online else WorkerStatus.OFFLINE,
        )
    return group


def _job(group: WorkerGroup, created: datetime, queue: float, duration: float | None) -> Job:
    started = created + timedelta(seconds=queue)
    return Job.objects.create(
        account=group.account, job_id=uuid.uuid4().hex, runbook="rb", status="Completed", run_on=group.name, group=group,
        created_at=created, started_at=started, ended_at=None if duration is None else started + timedelta(seconds=duration),
        queue_seconds=queue, duration_seconds=duration,
    )


def test_it_stores_the_under_spec_machine_as_the_first_finding():
    fleet = build_fleet(now=NOW, hours=24, seed=5)
    run = compute_findings("24h", NOW)
    first = run.findings.order_by("rank").first()
    assert first.flagged and first.worker.name == fleet.under_spec
    assert first.n > 30 and first.effect_ratio > 1.5 and first.effect_p_value < 0.01
    assert "x higher" in first.effect


def test_it_flags_no_worker_of_a_healthy_fleet():
    build_fleet(now=NOW, hours=24, seed=6, under_spec_group="")
    run = compute_findings("24h", NOW)
    assert run.pairs_examined > 0
    assert not run.findings.filter(flagged=True).exists()


def test_it_keeps_the_strongest_unflagged_pairs_with_their_reasons():
    build_fleet(now=NOW, hours=24, seed=6, under_spec_group="")
    run = compute_findings("24h", NOW)
    examined = list(run.findings.order_by("rank"))
    assert examined and all(f.reasons for f in examined)


def test_running_twice_leaves_complete_snapshots_and_prunes_old_ones():
    build_fleet(now=NOW, hours=24, seed=5)
    first = compute_findings("24h", NOW)
    second = compute_findings("24h", NOW)
    third = compute_findings("24h", NOW + timedelta(minutes=10))
    assert not CapacityRun.objects.filter(pk=first.pk).exists()
    assert set(CapacityRun.objects.values_list("pk", flat=True)) == {second.pk, third.pk}
    assert list(second.findings.values_list("rank", "worker_id", "metric", "target", "flagged")) == list(
        third.findings.values_list("rank", "worker_id", "metric", "target", "flagged")
    )
    assert GroupCapacity.objects.filter(run=third).count() == 3


def test_it_rejects_an_unknown_window():
    with pytest.raises(ValueError):
        compute_findings("2d", NOW)


def test_it_ranks_flagged_worker_findings_before_group_level_ones():
    build_fleet(now=NOW, hours=24, seed=5)
    run = compute_findings("24h", NOW)
    flagged = list(run.findings.filter(flagged=True).order_by("rank").values_list("worker_id", flat=True))
    first_group_level = flagged.index(None)
    assert all(w is not None for w in flagged[:first_group_level])


def test_it_buckets_timestamps_by_epoch_on_this_database():
    group = _group()
    created = datetime(2026, 11, 20, 10, 7, 59, tzinfo=UTC)
    job = _job(group, created, queue=1.0, duration=5.0)
    got = Job.objects.filter(pk=job.pk).annotate(b=EpochBucket("created_at", 300)).values_list("b", flat=True).get()
    assert got == int(created.timestamp()) // 300


def test_it_measures_arrival_rates_service_time_and_queue_percentiles():
    group = _group(members=2)
    start = NOW - timedelta(hours=24)
    queues = []
    for h in range(24):
        for k in range(h % 4 + 1):  # 1..4 jobs per hour
            q = float(5 + h + k)
            queues.append(q)
            _job(group, start + timedelta(hours=h, minutes=10 * k), queue=q, duration=120.0)
    cap = measure_group_capacity(group, start=start, end=NOW)
    assert cap.jobs == len(queues)
    assert cap.arrival_rate_mean == pytest.approx(len(queues) / 24)
    assert cap.arrival_rate_peak == pytest.approx(np.percentile([h % 4 + 1 for h in range(24)], 95))
    assert cap.mean_service_seconds == pytest.approx(120.0)
    assert cap.queue_p95 == pytest.approx(np.percentile(queues, 95))
    assert cap.concurrency_mean == pytest.approx(len(queues) * 120 / 86400)
    assert cap.concurrency_peak == pytest.approx(4 * 120 / 3600)
    assert (cap.members, cap.online) == (2, 2)


def test_it_places_jobs_in_the_right_hour_of_week():
    group = _group()
    # 2026-11-16 is a Monday: 09:xx UTC is slot 9; 2026-11-20 (Friday) 03:xx is slot 4*24+3.
    _job(group, datetime(2026, 11, 16, 9, 30, tzinfo=UTC), queue=40.0, duration=10.0)
    _job(group, datetime(2026, 11, 20, 3, 5, tzinfo=UTC), queue=10.0, duration=10.0)
    _job(group, datetime(2026, 11, 20, 3, 45, tzinfo=UTC), queue=20.0, duration=10.0)
    cap = measure_group_capacity(group, start=NOW - timedelta(days=7), end=NOW)
    assert cap.heat_load[9] == pytest.approx(1.0)
    assert cap.heat_load[4 * 24 + 3] == pytest.approx(2.0)
    assert cap.heat_queue[4 * 24 + 3] == pytest.approx(15.0)
    assert cap.heat_queue[10] is None


def test_it_takes_utilization_percentiles_from_the_hourly_rollup():
    group = _group(members=2)
    values = []
    for w in group.workers.all():
        for h in range(24):
            cpu = float(10 + h + w.pk % 7)
            values.append(cpu)
            UtilizationHourly.objects.create(worker=w, hour=NOW - timedelta(hours=24 - h), cpu_avg=cpu, mem_avg=50.0, samples=60)
    cap = measure_group_capacity(group, start=NOW - timedelta(hours=24), end=NOW)
    assert cap.cpu_p95 == pytest.approx(np.percentile(values, 95))
    assert cap.cpu_p50 == pytest.approx(np.percentile(values, 50))
    assert cap.mem_p95 == pytest.approx(50.0)


def test_it_forecasts_a_rising_cpu_trend_to_a_date():
    group = _group(members=2)
    for day in range(14):
        for w in group.workers.all():
            for h in range(24):
                UtilizationHourly.objects.create(
                    worker=w, hour=NOW - timedelta(days=14 - day, hours=-h), cpu_avg=40.0 + 2.0 * day + (h % 3), mem_avg=50.0, samples=60
                )
    cap = measure_group_capacity(group, start=NOW - timedelta(days=14), end=NOW)
    cpu = cap.forecast["cpu"]
    assert cpu["status"] == "crossing"
    assert cpu["slope_per_day"] == pytest.approx(2.0, abs=0.3)
    assert cpu["day_earliest"] <= cpu["day_crossing"]


def test_it_says_a_group_without_online_workers_has_no_capacity():
    group = _group(members=2, online=0)
    cap = measure_group_capacity(group, start=NOW - timedelta(days=7), end=NOW)
    assert cap.forecast["load"]["status"] == "no_workers"


def test_it_writes_the_fleet_heat_maps_on_the_run():
    build_fleet(now=NOW, hours=24, seed=5)
    run = compute_findings("7d", NOW)
    assert len(run.fleet["heat_load"]) == 168
    assert sum(v for v in run.fleet["heat_load"] if v) == pytest.approx(
        sum(sum(v for v in g.heat_load if v) for g in GroupCapacity.objects.filter(run=run)), rel=1e-3
    )


def test_it_stores_scatter_points_capped_at_400():
    build_fleet(now=NOW, hours=24, seed=5, jobs_per_hour=60)
    run = compute_findings("24h", NOW)
    sizes = [len(p) for p in CorrelationFinding.objects.filter(run=run).values_list("points", flat=True)]
    assert sizes and max(sizes) == 400
