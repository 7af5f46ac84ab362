"""Log Analytics polls at workspace scale, through the real adapter and SDK against the emulator: only our
machines are asked, a partial result is re-read in halves so the watermark never sticks, VM insights'
InsightsMetrics fills in for Perf, and heartbeats are joined to workers by ``_ResourceId`` first."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings

from workers.azure.client import AzureClient
from workers.azure.connection import connection_from_file
from workers.azure.queries import insights_utilization_query, utilization_query
from workers.emulator.server.kql import run_query
from workers.fleet import polling
from workers.fleet.accounts import add_account_from_connection_file
from workers.models import AutomationAccount, HybridWorker, PollRun, UtilizationSample, WorkerGroup

pytestmark = pytest.mark.django_db

FOREIGN = 60_000


@pytest.fixture(autouse=True)
def _short_backfill(settings):
    """The emulator holds one hour of our fleet; a first read of 24 h would also make it generate 23
    empty hours of the 60,000 foreign computers (86 M rows a query, over a minute each on 2 cores).
    Two hours keep every property tested: the row limit, the split, the filter, the watermark."""
    settings.POLL_BACKFILL_HOURS = 2


def setup_account(emu) -> AutomationAccount:
    account = add_account_from_connection_file(emu.connection_file)[0]
    polling.poll_groups(account.pk, now=emu.clock.now())
    for group_id in WorkerGroup.objects.filter(account=account).values_list("pk", flat=True):
        polling.poll_workers(account.pk, group_id, now=emu.clock.now())
    assert HybridWorker.objects.count() == len(emu.simulation.workers)
    return account


def truth(emu, start, end) -> set[tuple[str, object]]:
    """(computer, minute) of every CPU/memory sample of our workers in [start, end), read without a row limit."""
    names = [w.name for w in emu.simulation.workers]
    out: set[tuple[str, object]] = set()
    for build in (utilization_query, insights_utilization_query):
        result = run_query(emu.simulation, build(start, end, names), now=end, start=start, end=end, max_rows=10**7)
        out |= {(row[0], row[1]) for row in result.rows}
    return out


def stored() -> set[tuple[str, object]]:
    return {(name, ts.strftime("%Y-%m-%dT%H:%M:%S.0000000Z"))
            for name, ts in UtilizationSample.objects.values_list("worker__name", "ts")}


def test_every_minute_of_ours_is_ingested_despite_the_row_limit_and_other_computers(make_emulator):
    emu = make_emulator(seed=5, groups=3, workers=20, history_days=1 / 24, scenarios=False, max_rows=60)
    emu.simulation.foreign_computers = FOREIGN
    account = setup_account(emu)
    now = emu.clock.now()
    outcomes = polling.poll_logs(account.pk, now=now)
    assert all(o.ok for o in outcomes), outcomes
    start = now - timedelta(hours=settings.POLL_BACKFILL_HOURS)
    expected = truth(emu, start, now)
    assert len(expected) > 60 * 10  # far more than one query may return
    assert stored() == expected
    account.refresh_from_db()
    assert account.perf_watermark == now
    perf = PollRun.objects.get(kind="perf")
    assert perf.ok and "split in halves after a partial result" in perf.error


def test_the_perf_poll_keeps_up_in_a_workspace_of_60000_other_computers(make_emulator):
    interval = 60
    emu = make_emulator(seed=9, groups=3, workers=12, history_days=1 / 24, scenarios=False, max_rows=2_000)
    emu.simulation.foreign_computers = FOREIGN
    account = setup_account(emu)
    with AzureClient(connection_from_file(emu.connection_file)) as azure:  # the control: unfiltered is truncated
        now = emu.clock.now()
        assert azure.utilization(start=now - timedelta(minutes=2), end=now).partial_error
    polling.poll_logs(account.pk, now=emu.clock.now())
    for _ in range(12):
        emu.clock.advance(interval)
        now = emu.clock.now()
        outcomes = polling.poll_logs(account.pk, now=now)
        assert all(o.ok for o in outcomes), outcomes
        account.refresh_from_db()
        assert now - account.perf_watermark <= timedelta(seconds=2 * interval)
    start = emu.clock.now() - timedelta(minutes=10)
    expected = truth(emu, start, emu.clock.now() - timedelta(minutes=4))
    assert expected and expected <= stored()


def test_cpu_and_memory_come_from_perf_or_from_insights_metrics(make_emulator):
    emu = make_emulator(seed=7, groups=4, workers=20, history_days=1 / 24, scenarios=False)
    account = setup_account(emu)
    assert all(o.ok for o in polling.poll_logs(account.pk, now=emu.clock.now()))
    insights = {w.name for w in emu.simulation.workers if w.vm_insights}
    assert insights and len(insights) < len(emu.simulation.workers)
    for worker in HybridWorker.objects.all():
        samples = UtilizationSample.objects.filter(worker=worker)
        assert samples.filter(cpu_pct__isnull=False, mem_pct__isnull=False).count() >= 30, worker.name
    for name in insights:
        assert HybridWorker.objects.get(name=name).mem_pct is not None


def test_heartbeats_are_joined_by_resource_id_before_computer_name(make_emulator):
    emu = make_emulator(seed=7, groups=4, workers=20, history_days=1 / 24, scenarios=False)
    account = setup_account(emu)
    a, b = [w for w in emu.simulation.workers if w.vm_resource_id and w.name.startswith("hrw-")][:2]
    # Worker A now shows B's name: matching by Computer alone would give A B's heartbeat too.
    HybridWorker.objects.filter(name=a.name).update(name=b.name)
    renamed = HybridWorker.objects.get(vm_resource_id__iexact=a.vm_resource_id)
    assert all(o.ok for o in polling.poll_logs(account.pk, now=emu.clock.now()))
    end = emu.clock.now()
    latest = {row[0]: row[1] for row in run_query(
        emu.simulation, "Heartbeat | summarize max(TimeGenerated) by Computer", now=end, start=end - timedelta(hours=1), end=end
    ).rows}
    renamed.refresh_from_db()
    other = HybridWorker.objects.get(vm_resource_id__iexact=b.vm_resource_id)
    assert latest[a.name] != latest[b.name]
    assert renamed.last_heartbeat_at.strftime("%Y-%m-%dT%H:%M:%S") == latest[a.name][:19]
    assert other.last_heartbeat_at.strftime("%Y-%m-%dT%H:%M:%S") == latest[b.name][:19]
