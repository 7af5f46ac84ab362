"""Many clients at once, while the clock moves and data is generated: every answer stays right."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest

from tests.bench.speed import measure


def test_concurrent_queries_and_lists_while_the_clock_advances(make_emulator, sdk_clients):
    emu = make_emulator(seed=9, groups=4, workers=16, page_size=4, scenarios=False)
    clients = sdk_clients(emu)
    names = {w.name for w in emu.simulation.workers}

    def list_workers(_: int) -> set[str]:
        return {w.properties.worker_name for g in emu.simulation.groups
                for w in clients.arm.hybrid_runbook_workers.list_by_hybrid_runbook_worker_group(
                    clients.rg, clients.account, g.name)}

    def latest(_: int) -> set[str]:
        result = clients.logs.query_workspace(
            clients.workspace, "Heartbeat | summarize arg_max(TimeGenerated, Version) by Computer",
            timespan=timedelta(hours=1))
        return {r["Computer"] for r in result.tables[0].rows}

    def advance(_: int) -> set[str]:
        emu.clock.advance(60)
        return names

    with ThreadPoolExecutor(max_workers=6) as pool:
        futures = [pool.submit(fn, i) for i in range(6) for fn in (list_workers, latest, advance)]
        results = [f.result(timeout=120) for f in futures]
    assert all(r == names for r in results)


@pytest.mark.slow
def test_the_speed_measure_lists_every_worker_and_queries_every_heartbeat(tmp_path):
    figures = measure(workers=300, groups=12, tmpdir=tmp_path)
    assert figures["workers_listed"] == 300
    assert figures["groups_listed"] == 12
    assert figures["heartbeat_rows"] == 300
    assert figures["requests"] >= 12 + 1 + 1


def test_closing_waits_for_a_read_in_progress_and_refuses_new_ones():
    """A server shutting down mid-request used to close DuckDB under a running cursor ("connection is
    busy", a teardown error in CI). ``close`` now waits for every cursor it gave out, then refuses."""
    import threading
    import time

    from workers.emulator.simulation.engine import FleetSimulation
    from workers.emulator.simulation.fleet import SimulationError

    sim = FleetSimulation(seed=3, groups=1, workers=2, scenarios=False)
    holding, release = threading.Event(), threading.Event()
    answer: list[object] = []

    def reader() -> None:
        with sim.cursor() as cur:
            holding.set()
            release.wait(60)
            answer.append(cur.execute("SELECT count(*) FROM hrw_workers").fetchone()[0])

    thread = threading.Thread(target=reader)
    closer = threading.Thread(target=sim.close)
    try:
        thread.start()
        assert holding.wait(60)
        closer.start()
        deadline = time.monotonic() + 60
        while not sim._closed and time.monotonic() < deadline:  # close() has begun (a deadline, not a fixed wait)
            time.sleep(0.005)
        assert sim._closed
    finally:
        release.set()  # the read runs after close() began: the connection must still be open
        thread.join(60)
        if closer.is_alive() or closer.ident is not None:
            closer.join(60)
    assert answer == [2]
    with pytest.raises(SimulationError, match="closed"), sim.cursor():
        pass
