"""The fleet simulation on its own: determinism, fleet shape, and each scenario's real-world signature."""
from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from workers.emulator.server.kql import run_query
from workers.emulator.simulation import (
    CPU_PRESSURE_PCT,
    JOB_LIMIT_EXCEPTION,
    MEM_PRESSURE_PCT,
    FleetSimulation,
    SimClock,
    SimulationError,
)

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


@pytest.fixture
def sims() -> Iterator[list[FleetSimulation]]:
    made: list[FleetSimulation] = []
    yield made
    for sim in made:
        sim.close()


def build(sims: list[FleetSimulation], **kw: object) -> FleetSimulation:
    kw.setdefault("clock", SimClock(NOW))
    sim = FleetSimulation(**kw)  # type: ignore[arg-type]
    sims.append(sim)
    return sim


def fingerprint(sim: FleetSimulation) -> tuple[object, ...]:
    workers = [(w.name, w.worker_id, w.group, w.worker_type, w.os_type) for w in sim.workers]
    hb = sim.rows("SELECT count(*), sum(epoch(t)), sum(epoch(ingest)) FROM hb_raw")
    perf = sim.rows("SELECT count(*), round(sum(v), 3) FROM perf_raw")
    jobs = [(j.job_id, j.runbook, j.created, j.started, j.ended, j.final_status, j.worker) for j in sim.jobs]
    return workers, hb, perf, jobs


def window_rows(sim: FleetSimulation, table: str, worker: str, start: datetime, end: datetime) -> int:
    widx = sim.worker(worker).index
    return sim.rows(f"SELECT count(*) FROM {table} WHERE widx = ? AND t >= ? AND t < ?",
                    [widx, start.replace(tzinfo=None), end.replace(tzinfo=None)])[0][0]


def a_member(sim: FleetSimulation, *, rank: int = 1) -> str:
    group = max((g for g in sim.groups if g.group_type == "User"), key=lambda g: len(g.members))
    return sim.workers[group.members[rank]].name


# -------------------------------------------------------------------------------- determinism


def test_it_generates_the_same_fleet_and_data_for_the_same_seed(sims):
    a = build(sims, seed=11, groups=4, workers=12, history_days=0.25)
    b = build(sims, seed=11, groups=4, workers=12, history_days=0.25)
    assert fingerprint(a) == fingerprint(b)


def test_it_generates_different_data_for_a_different_seed(sims):
    a = build(sims, seed=11, groups=4, workers=12, history_days=0.25)
    b = build(sims, seed=12, groups=4, workers=12, history_days=0.25)
    fa, fb = fingerprint(a), fingerprint(b)
    assert fa[0] != fb[0]  # worker ids
    assert fa[2] != fb[2]  # perf values
    assert fa[3] != fb[3]  # jobs


def test_it_generates_the_same_data_however_the_clock_advances(sims):
    one = build(sims, seed=5, groups=3, workers=6, scenarios=False)
    one.clock.advance(3600)
    one.ensure()
    steps = build(sims, seed=5, groups=3, workers=6, scenarios=False)
    for _ in range(12):
        steps.clock.advance(300)
        steps.ensure()
    assert fingerprint(one) == fingerprint(steps)


# ---------------------------------------------------------------------------------- the fleet


def test_it_builds_a_mixed_fleet(sims):
    sim = build(sims, seed=7, groups=6, workers=30)
    assert {w.worker_type for w in sim.workers} == {"HybridV1", "HybridV2"}
    assert {w.os_type for w in sim.workers} == {"Windows", "Linux"}
    assert [g.name for g in sim.groups if g.group_type == "System"] == ["update-management-system"]
    assert any(len(g.members) == 1 and g.group_type == "User" for g in sim.groups)
    assert sum(len(g.members) for g in sim.groups) == 30
    assert all(w.name.startswith(("hrw-win-", "hrw-lin-", "upd-win-")) for w in sim.workers)


def test_it_schedules_no_scenarios_when_asked(sims):
    sim = build(sims, seed=7, scenarios=False)
    assert sim.scenarios == []
    assert sim.under_spec_workers() == []


def test_it_schedules_an_under_spec_machine_and_a_past_outage_by_default(sims):
    sim = build(sims, seed=7)
    kinds = {s["kind"]: s for s in sim.scenarios_view()}
    assert kinds["under_spec"]["state"] == "active"
    assert kinds["agent_stopped"]["state"] == "past"


def test_it_refuses_an_unknown_target(sims):
    sim = build(sims, seed=7, scenarios=False)
    with pytest.raises(SimulationError):
        sim.start_scenario("agent_stopped", "no-such-machine", 10)


def test_it_refuses_an_unknown_kind(sims):
    sim = build(sims, seed=7, scenarios=False)
    with pytest.raises(SimulationError):
        sim.start_scenario("meteor_strike", sim.workers[0].name, 10)


def test_it_refuses_a_site_down_on_a_single_worker(sims):
    sim = build(sims, seed=7, scenarios=False)
    with pytest.raises(SimulationError):
        sim.start_scenario("site_down", sim.workers[3].name, 10)


# ---------------------------------------------------------------------------------- signals


def test_it_refreshes_last_seen_every_30_seconds_while_healthy(sims):
    sim = build(sims, seed=7, scenarios=False)
    worker = sim.workers[4]
    seen = sim.last_seen(worker, NOW)
    assert timedelta(0) <= NOW - seen < timedelta(seconds=30)


def test_it_sends_one_heartbeat_a_minute_while_healthy(sims):
    sim = build(sims, seed=7, scenarios=False)
    sim.clock.advance(1800)
    sim.ensure()
    name = sim.workers[4].name
    assert window_rows(sim, "hb_raw", name, NOW, NOW + timedelta(minutes=30)) == 30
    assert window_rows(sim, "perf_raw", name, NOW, NOW + timedelta(minutes=30)) == 90


def test_agent_stopped_silences_every_signal(sims):
    sim = build(sims, seed=7, scenarios=False)
    name = a_member(sim)
    sim.start_scenario("agent_stopped", name, 30)
    sim.clock.advance(1800)
    sim.ensure()
    end = NOW + timedelta(minutes=30)
    assert window_rows(sim, "hb_raw", name, NOW, end) == 0
    assert window_rows(sim, "perf_raw", name, NOW, end) == 0
    assert sim.last_seen(sim.worker(name), end - timedelta(seconds=1)) <= NOW
    healthy = sim.workers[0].name
    assert window_rows(sim, "hb_raw", healthy, NOW, end) == 30


def test_outbound_blocked_keeps_heartbeats_but_stales_last_seen(sims):
    sim = build(sims, seed=7, scenarios=False)
    name = a_member(sim)
    sim.start_scenario("outbound_blocked", name, 30)
    sim.clock.advance(1800)
    sim.ensure()
    end = NOW + timedelta(minutes=30)
    assert window_rows(sim, "hb_raw", name, NOW, end) == 30
    assert window_rows(sim, "perf_raw", name, NOW, end) == 90
    assert sim.last_seen(sim.worker(name), end - timedelta(seconds=1)) <= NOW


def test_outbound_blocked_ends_and_last_seen_recovers(sims):
    sim = build(sims, seed=7, scenarios=False)
    name = a_member(sim)
    sim.start_scenario("outbound_blocked", name, 10)
    sim.clock.advance(1200)
    assert sim.clock.now() - sim.last_seen(sim.worker(name), sim.clock.now()) < timedelta(seconds=30)


def test_tls_interception_logs_4502_and_stops_heartbeats(sims):
    sim = build(sims, seed=7, scenarios=False)
    # Event 4502 comes from the Log Analytics agent on Windows: the V1 worker of the legacy group.
    name = sim.workers[sim.group("hrw-win-legacy").members[0]].name
    sim.start_scenario("tls_intercepted", name, 30)
    sim.clock.advance(1800 + 300)
    sim.ensure()
    end = NOW + timedelta(minutes=30)
    assert window_rows(sim, "hb_raw", name, NOW, end) == 0
    assert sim.last_seen(sim.worker(name), end - timedelta(seconds=1)) <= NOW
    result = run_query(sim, 'Event | where EventID == 4502 | project Computer, EventLog, Source, RenderedDescription',
                       now=sim.clock.now(), start=None, end=None)
    assert len(result.rows) >= 5
    assert {tuple(r[:3]) for r in result.rows} == {(name, "Operations Manager", "HealthService")}
    assert "was not issued by a certificate authority used for Microsoft services" in result.rows[0][3]


def test_site_down_darkens_every_member_of_the_group(sims):
    sim = build(sims, seed=7, scenarios=False)
    group = max(sim.groups, key=lambda g: len(g.members))
    sim.start_scenario("site_down", group.name, 20)
    sim.clock.advance(1200)
    sim.ensure()
    end = NOW + timedelta(minutes=20)
    for i in group.members:
        name = sim.workers[i].name
        assert window_rows(sim, "hb_raw", name, NOW, end) == 0
        assert sim.last_seen(sim.workers[i], end - timedelta(seconds=1)) <= NOW


def test_flapping_goes_up_and_down(sims):
    sim = build(sims, seed=7, scenarios=False)
    name = a_member(sim)
    scenario = sim.start_scenario("flapping", name, 30)
    sim.clock.advance(1800)
    sim.ensure()
    widx = sim.worker(name).index
    minutes = {r[0] for r in sim.rows(
        "SELECT CAST(epoch(t) // 60 AS BIGINT) FROM hb_raw WHERE widx = ? AND t >= ? AND t < ?",
        [widx, NOW.replace(tzinfo=None), (NOW + timedelta(minutes=30)).replace(tzinfo=None)])}
    assert 5 <= len(minutes) <= 25  # some minutes up, some down
    period = scenario.period_seconds
    down_at = NOW + timedelta(seconds=period + period // 2)
    up_at = NOW + timedelta(seconds=2 * period + period // 2)
    assert down_at - sim.last_seen(sim.worker(name), down_at) > timedelta(seconds=period // 2 - 30)
    assert up_at - sim.last_seen(sim.worker(name), up_at) < timedelta(seconds=30)


def test_it_hides_rows_until_their_ingestion_delay_has_passed(sims):
    sim = build(sims, seed=7, scenarios=False)
    since = NOW - timedelta(minutes=5)
    query = "Heartbeat | summarize count()"
    visible_now = run_query(sim, query, now=NOW, start=since, end=NOW).rows[0][0]
    generated = sim.rows("SELECT count(*) FROM hb_raw WHERE t >= ?", [since.replace(tzinfo=None)])[0][0]
    assert visible_now < generated
    later = NOW + timedelta(minutes=3)
    assert run_query(sim, query, now=later, start=since, end=NOW).rows[0][0] == generated


# ---------------------------------------------------------------------------- pressure, jobs


def test_healthy_workers_never_reach_the_pressure_thresholds(sims):
    sim = build(sims, seed=7, groups=5, workers=25, scenarios=False)
    widx = np.repeat(np.arange(len(sim.workers)), 7 * 1440)
    minute = np.tile(np.arange(7 * 1440) + int(NOW.timestamp()) // 60, len(sim.workers))
    cpu, mem = sim.utilisation(widx, minute)
    assert cpu.max() < CPU_PRESSURE_PCT
    assert mem.max() < MEM_PRESSURE_PCT
    assert cpu.std() > 1.0  # noise and a daily cycle, not a flat line


def test_under_spec_machine_is_under_pressure_regularly(sims):
    sim = build(sims, seed=7, groups=5, workers=25, history_days=1)
    (name,) = sim.under_spec_workers()
    widx = np.full(1440, sim.worker(name).index)
    minute = np.arange(1440) + int(NOW.timestamp()) // 60 - 1440
    cpu, mem = sim.utilisation(widx, minute)
    assert (cpu > CPU_PRESSURE_PCT).mean() > 0.15
    assert (mem > MEM_PRESSURE_PCT).mean() > 0.15


def test_under_spec_machine_delays_and_suspends_its_jobs(sims):
    sim = build(sims, seed=7, groups=5, workers=25, history_days=2)
    (name,) = sim.under_spec_workers()
    widx = sim.worker(name).index
    group = sim.group(sim.worker(name).group)
    done = [j for j in sim.jobs if j.run_on == group.name and j.started is not None and j.ended is not None]
    slow = [j.started - j.created for j in done if j.worker == widx]
    fast = [j.started - j.created for j in done if j.worker != widx]
    assert len(slow) >= 20 and len(fast) >= 20
    assert np.median(slow) > 2 * np.median(fast)
    suspended = [j for j in done if j.final_status == "Suspended" and j.exception == JOB_LIMIT_EXCEPTION]
    assert suspended and all(j.worker == widx for j in suspended)


def test_healthy_workers_delays_do_not_depend_on_their_cpu(sims):
    sim = build(sims, seed=7, groups=5, workers=25, history_days=2, scenarios=False)
    assert all(j.queue_pressure == 0 and j.run_pressure == 0 for j in sim.jobs)
    delays = [j.started - j.created for j in sim.jobs if j.started is not None]
    assert max(delays) < 60


def test_some_jobs_are_still_pending_or_running_at_now(sims):
    sim = build(sims, seed=7, groups=5, workers=25, history_days=1)
    now = NOW.timestamp()
    statuses = {j.status_at(now) for j in sim.jobs}
    assert "Running" in statuses
    assert statuses & {"New", "Queued"}
    assert {"Completed", "Failed"} <= statuses


def test_some_pending_jobs_carry_a_status_the_sdk_does_not_know(sims):
    sim = build(sims, seed=7, groups=5, workers=25, history_days=1)
    labels = {j.pending_label for j in sim.jobs}
    assert labels == {"New", "Queued"}


def test_jobs_follow_a_daily_cycle(sims):
    sim = build(sims, seed=7, groups=5, workers=25, history_days=7, scenarios=False)
    hours = np.array([int(j.created // 3600) % 24 for j in sim.jobs])
    business = np.isin(hours, np.arange(7, 19)).sum() / 12
    night = (~np.isin(hours, np.arange(7, 19))).sum() / 12
    assert business > 2 * night


def test_jobs_wait_for_a_member_when_the_whole_group_is_dark(sims):
    sim = build(sims, seed=7, groups=5, workers=25, scenarios=False)
    group = max((g for g in sim.groups if g.group_type == "User"), key=lambda g: len(g.members))
    sim.start_scenario("site_down", group.name, 20)
    sim.clock.advance(3600)
    sim.ensure()
    start, end = NOW.timestamp(), NOW.timestamp() + 1200
    during = [j for j in sim.jobs if j.run_on == group.name and start + 60 <= j.created < end - 60]
    assert during
    assert all(j.started is None or j.started >= end for j in during)


def test_only_windows_machines_write_to_the_event_log_when_healthy(sims):
    sim = build(sims, seed=7, groups=5, workers=25, history_days=2, scenarios=False)
    rows = run_query(sim, "Event | summarize n = count() by Computer, EventID", now=NOW, start=None, end=None).rows
    windows = {w.name for w in sim.workers if w.os_type == "Windows"}
    assert rows
    assert {r[0] for r in rows} <= windows
    assert {r[1] for r in rows} <= {1210, 7036}
