"""Log Analytics at workspace scale, through the real SDK against the emulator: queries restricted to our
machines (``_ResourceId`` or ``Computer``), a shared workspace of 60,000 other computers, VM insights'
``InsightsMetrics``."""
from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest

from workers.azure.client import AzureClient
from workers.azure.connection import connection_from_file
from workers.azure.queries import machine_clause
from workers.emulator.server.kql import run_query
from workers.emulator.testing import EmulatorHandle

FOREIGN = 60_000


@pytest.fixture
def shared(make_emulator) -> EmulatorHandle:
    """20 workers in a workspace with 60,000 other computers; a row limit of 2,000."""
    emu = make_emulator(seed=7, groups=4, workers=20, history_days=1 / 24, scenarios=False, max_rows=2_000)
    emu.simulation.foreign_computers = FOREIGN
    return emu


@pytest.fixture
def client(shared: EmulatorHandle):
    azure = AzureClient(connection_from_file(shared.connection_file))
    yield azure
    azure.close()


def ours(emu: EmulatorHandle) -> tuple[list[str], list[str]]:
    """(computer names of workers without a vmResourceId, the others' resource ids) as the poll passes them."""
    workers = emu.simulation.workers
    return [w.name for w in workers if not w.vm_resource_id], [w.vm_resource_id for w in workers if w.vm_resource_id]


def test_an_unfiltered_query_passes_the_row_limit_and_a_filtered_one_does_not(shared: EmulatorHandle, client: AzureClient) -> None:
    end = shared.clock.now()
    start = end - timedelta(minutes=5)
    everything = client.logs("latest_heartbeats", start=start, end=end)
    assert everything.partial_error and "E_QUERY_RESULT_SET_TOO_LARGE" in everything.partial_error
    computers, resource_ids = ours(shared)
    assert computers and resource_ids  # both kinds of worker are in the fleet
    mine = client.logs("latest_heartbeats", start=start, end=end, computers=computers, resource_ids=resource_ids)
    assert mine.partial_error is None
    assert {r.computer for r in mine.rows} == {w.name for w in shared.simulation.workers}


def test_machines_known_by_resource_id_are_matched_by_it_whatever_the_case(shared: EmulatorHandle, client: AzureClient) -> None:
    end = shared.clock.now()
    v2 = [w for w in shared.simulation.workers if w.vm_resource_id][:3]
    # The listing spells ids with upper-case segments; Log Analytics' _ResourceId is lower case.
    assert any(c.isupper() for c in v2[0].vm_resource_id)
    answer = client.logs("latest_heartbeats", start=end - timedelta(minutes=5), end=end, computers=[],
                         resource_ids=[w.vm_resource_id for w in v2])
    assert {r.computer for r in answer.rows} == {w.name for w in v2}
    assert {r.resource_id for r in answer.rows} == {w.vm_resource_id.lower() for w in v2}


def test_nothing_to_ask_never_widens_to_every_machine(client: AzureClient, shared: EmulatorHandle) -> None:
    assert machine_clause([], []) == ""
    assert machine_clause(None, None) is None
    end = shared.clock.now()
    answer = client.logs("utilization", start=end - timedelta(minutes=5), end=end, computers=[], resource_ids=[])
    assert answer.rows == () and answer.partial_error is None


def test_vm_insights_machines_report_in_insights_metrics_not_perf(shared: EmulatorHandle, client: AzureClient) -> None:
    end = shared.clock.now()
    start = end - timedelta(minutes=10)
    computers, resource_ids = ours(shared)
    insights = {w.name for w in shared.simulation.workers if w.vm_insights}
    assert insights and len(insights) < len(shared.simulation.workers)
    perf = client.logs("utilization", start=start, end=end, computers=computers, resource_ids=resource_ids)
    vmi = client.logs("insights_utilization", start=start, end=end, computers=computers, resource_ids=resource_ids)
    assert {r.computer for r in perf.rows}.isdisjoint(insights)
    assert {r.computer for r in vmi.rows} == insights
    # Memory used % from AvailableMB and the memorySizeMB tag equals the simulation's memory %.
    truth = run_query(shared.simulation, "Perf | where ObjectName == 'Memory' | summarize by Computer", now=end,
                      start=start, end=end)
    assert {row[0] for row in truth.rows}.isdisjoint(insights)
    for rec in vmi.rows:
        assert rec.cpu_pct is not None and 0 <= rec.cpu_pct <= 100
        assert rec.mem_pct is not None and 0 < rec.mem_pct < 100
        assert rec.resource_id.startswith("/subscriptions/")


def test_insights_memory_matches_the_simulated_memory_percentage(make_emulator) -> None:
    emu = make_emulator(seed=7, groups=4, workers=20, history_days=1 / 24, scenarios=False)
    worker = next(w for w in emu.simulation.workers if w.vm_insights)
    end = emu.clock.now()
    start = end - timedelta(minutes=5)
    with AzureClient(connection_from_file(emu.connection_file)) as azure:
        rows = azure.logs("insights_utilization", start=start, end=end, computers=[], resource_ids=[worker.vm_resource_id]).rows
    assert rows
    for rec in rows:
        minute = int(rec.ts.timestamp() // 60)
        cpu, mem = emu.simulation.utilisation(np.array([worker.index]), np.array([minute]))
        # AvailableMB is stored rounded to 3 decimals, so the percentage is exact to ~1e-5.
        assert rec.cpu_pct == pytest.approx(round(float(cpu[0]), 3), abs=1e-6)
        assert rec.mem_pct == pytest.approx(float(mem[0]), abs=1e-3)
