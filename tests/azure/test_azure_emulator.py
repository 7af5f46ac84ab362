"""The adapter end to end: real SDK clients and a real ClientSecretCredential, over HTTPS (trustme CA),
against the local emulator. Expected values come from the simulation's own ground truth, never from
the adapter.
"""
from __future__ import annotations

import dataclasses
import socket
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import trustme

from workers.azure.client import AzureClient
from workers.azure.connection import connection_from_file
from workers.azure.errors import AzureError, AzureTransientError
from workers.emulator.testing import EmulatorHandle

HOUR = timedelta(hours=1)
HOSTILE = ["o'brien", 'o"brien', 'x" or 1==1 //', "a|b", "where", "back\\slash", "two\nlines"]


def client_for(handle: EmulatorHandle, **overrides: Any) -> AzureClient:
    conn = connection_from_file(handle.connection_file)
    return AzureClient(dataclasses.replace(conn, **overrides) if overrides else conn)


def now_of(handle: EmulatorHandle) -> datetime:
    return handle.clock.now()


def logged(handle: EmulatorHandle, keep: Callable[[dict[str, Any]], bool], *, at_least: int) -> list[dict[str, Any]]:
    """The request-log entries ``keep`` selects, once there are ``at_least`` of them.

    The emulator writes a log line after it has answered, so the last line can trail the client by
    a moment: poll for it with a deadline.
    """
    deadline = time.monotonic() + 10
    while True:
        entries = [r for r in handle.requests() if keep(r)]
        if len(entries) >= at_least or time.monotonic() > deadline:
            return entries
        time.sleep(0.02)


def arm_requests(handle: EmulatorHandle, fragment: str, *, at_least: int) -> list[dict[str, Any]]:
    return logged(handle, lambda r: fragment in str(r.get("path", "")), at_least=at_least)


# --- groups and workers ------------------------------------------------------------------------


def test_it_lists_every_group_of_the_simulation(emulator: EmulatorHandle) -> None:
    with client_for(emulator) as azure:
        groups = azure.list_groups()
    assert sorted(g.name for g in groups) == sorted(g.name for g in emulator.simulation.groups)


def test_it_reports_each_group_type(emulator: EmulatorHandle) -> None:
    with client_for(emulator) as azure:
        types = {g.name: g.group_type for g in azure.list_groups()}
    assert types == {g.name: g.group_type for g in emulator.simulation.groups}


def test_it_lists_every_worker_of_a_group_across_pages(make_emulator: Callable[..., EmulatorHandle]) -> None:
    handle = make_emulator(seed=11, groups=3, workers=14, page_size=3, scenarios=False)
    group = max(handle.simulation.groups, key=lambda g: len(g.members))
    assert len(group.members) > 3
    with client_for(handle) as azure:
        workers = azure.list_workers(group.name)
    expected = {handle.simulation.workers[i].name for i in group.members}
    assert {w.name for w in workers} == expected
    assert len(arm_requests(handle, "/hybridRunbookWorkers", at_least=2)) >= 2


def test_it_reads_worker_fields_as_the_simulation_has_them(emulator: EmulatorHandle) -> None:
    sim = emulator.simulation
    group = next(g for g in sim.groups if g.members)
    with client_for(emulator) as azure:
        by_name = {w.name: w for w in azure.list_workers(group.name)}
    truth = sim.workers[group.members[0]]
    worker = by_name[truth.name]
    assert (worker.worker_id, worker.worker_type, worker.ip, worker.group_name) == (
        truth.worker_id, truth.worker_type, truth.private_ip, group.name,
    )
    assert worker.last_seen_at == sim.last_seen(truth, now_of(emulator))


# --- jobs --------------------------------------------------------------------------------------


def expected_jobs(handle: EmulatorHandle, since: datetime) -> set[str]:
    now = now_of(handle).timestamp()
    cut = since.timestamp()
    return {
        j.job_id.lower()
        for j in handle.simulation.jobs
        if j.created <= now and (j.created >= cut or j.last_modified_at(now) >= cut)
    }


def test_it_lists_the_jobs_created_or_modified_since_a_watermark(emulator: EmulatorHandle) -> None:
    since = now_of(emulator) - HOUR
    with client_for(emulator) as azure:
        jobs = azure.list_jobs(since=since)
    assert {j.job_id for j in jobs} == expected_jobs(emulator, since)
    assert jobs


def test_it_reports_job_status_as_the_simulation_has_it(emulator: EmulatorHandle) -> None:
    now = now_of(emulator)
    with client_for(emulator) as azure:
        jobs = azure.list_jobs(since=now - HOUR)
    truth = {j.job_id.lower(): j.status_at(now.timestamp()) for j in emulator.simulation.jobs}
    assert {j.job_id: j.status for j in jobs} == {j.job_id: truth[j.job_id] for j in jobs}


def test_it_finds_a_job_created_before_the_watermark_whose_status_changed_after_it(
    make_emulator: Callable[..., EmulatorHandle],
) -> None:
    handle = make_emulator(seed=5, groups=4, workers=12, history_days=3 / 24, scenarios=False)
    watermark = now_of(handle)
    with client_for(handle) as azure:
        before = {j.job_id: j for j in azure.list_jobs(since=watermark - 2 * HOUR)}
        active = {k: j for k, j in before.items() if j.ended_at is None}
        assert active, "the seeded fleet should have jobs still queued or running"
        handle.clock.advance(3 * 3600)
        after = {j.job_id: j for j in azure.list_jobs(since=watermark)}
    changed = [k for k in active if k in after and after[k].status != active[k].status]
    assert changed
    assert all(after[k].created_at < watermark for k in changed)


def test_it_filters_jobs_by_group(emulator: EmulatorHandle) -> None:
    since = now_of(emulator) - 2 * HOUR
    with client_for(emulator) as azure:
        everything = azure.list_jobs(since=since)
        group = everything[0].run_on
        only = azure.list_jobs(since=since, run_on=group)
    assert {j.job_id for j in only} == {j.job_id for j in everything if j.run_on == group}


# --- Log Analytics -----------------------------------------------------------------------------


def latest_heartbeats_truth(handle: EmulatorHandle, start: datetime, end: datetime) -> dict[str, datetime]:
    rows = handle.simulation.rows(
        "SELECT w.Computer, max(h.t) FROM hb_raw h JOIN hrw_workers w ON h.widx = w.widx"
        " WHERE h.ingest <= ? AND h.t >= ? AND h.t < ? GROUP BY w.Computer",
        [naive(now_of(handle)), naive(start), naive(end)],
    )
    return {name: t.replace(tzinfo=UTC) for name, t in rows}


def naive(dt: datetime) -> datetime:
    return dt.astimezone(UTC).replace(tzinfo=None)


def test_it_reads_the_latest_heartbeat_of_each_computer(emulator: EmulatorHandle) -> None:
    end = now_of(emulator)
    start = end - HOUR
    with client_for(emulator) as azure:
        result = azure.latest_heartbeats(start=start, end=end)
    assert result.partial_error is None
    got = {r.computer: r.time_generated.replace(microsecond=0) for r in result.rows}
    truth = {k: v.replace(microsecond=0) for k, v in latest_heartbeats_truth(emulator, start, end).items()}
    assert got == truth


def test_it_reads_heartbeat_details(emulator: EmulatorHandle) -> None:
    end = now_of(emulator)
    with client_for(emulator) as azure:
        rows = azure.latest_heartbeats(start=end - HOUR, end=end).rows
    sim_by_name = {w.name: w for w in emulator.simulation.workers}
    row = rows[0]
    truth = sim_by_name[row.computer]
    assert (row.os_type, row.version, row.category) == (truth.os_type, truth.agent_version, truth.category)


def test_it_reads_heartbeats_of_the_named_computers_only(emulator: EmulatorHandle) -> None:
    end = now_of(emulator)
    names = sorted(latest_heartbeats_truth(emulator, end - HOUR, end))[:2]
    with client_for(emulator) as azure:
        rows = azure.latest_heartbeats(start=end - HOUR, end=end, computers=names).rows
    assert sorted(r.computer for r in rows) == names


def test_it_reads_one_utilization_row_per_computer_per_minute(emulator: EmulatorHandle) -> None:
    end = now_of(emulator).replace(second=0, microsecond=0) - timedelta(minutes=10)
    start = end - timedelta(minutes=20)
    with client_for(emulator) as azure:
        rows = azure.utilization(start=start, end=end).rows
    keys = [(r.computer, r.ts) for r in rows]
    assert len(keys) == len(set(keys))
    assert all(start <= r.ts < end and r.ts.second == 0 for r in rows)
    # VM insights machines send CPU/memory to InsightsMetrics, not Perf (tests/azure/test_azure_workspace_scale.py).
    perf = {w.name for w in emulator.simulation.workers if w.index in active_perf(emulator, start, end) and not w.vm_insights}
    assert {r.computer for r in rows} == perf


def active_perf(handle: EmulatorHandle, start: datetime, end: datetime) -> set[int]:
    rows = handle.simulation.rows(
        "SELECT DISTINCT widx FROM perf_raw WHERE ingest <= ? AND t >= ? AND t < ?",
        [naive(now_of(handle)), naive(start), naive(end)],
    )
    return {r[0] for r in rows}


def test_it_reads_cpu_and_memory_percentages_as_the_simulation_produced_them(emulator: EmulatorHandle) -> None:
    end = now_of(emulator).replace(second=0, microsecond=0) - timedelta(minutes=10)
    start = end - timedelta(minutes=5)
    with client_for(emulator) as azure:
        row = azure.utilization(start=start, end=end).rows[0]
    widx = next(w.index for w in emulator.simulation.workers if w.name == row.computer)
    truth = dict(
        emulator.simulation.rows(
            "SELECT kind, avg(v) FROM perf_raw WHERE widx = ? AND t >= ? AND t < ? AND kind IN (0, 1) GROUP BY kind",
            [widx, naive(row.ts), naive(row.ts + timedelta(minutes=1))],
        )
    )
    assert row.cpu_pct == pytest.approx(truth[0])
    assert row.mem_pct == pytest.approx(truth[1])


def test_it_counts_event_4502_on_a_tls_intercepted_machine_only(make_emulator: Callable[..., EmulatorHandle]) -> None:
    handle = make_emulator(seed=3, groups=3, workers=8, scenarios=False)
    windows = [w for w in handle.simulation.workers if w.os_type == "Windows"]
    target = windows[0].name
    start = now_of(handle)
    handle.start_scenario("tls_intercepted", target, 60)
    handle.clock.advance(40 * 60)
    with client_for(handle) as azure:
        rows = azure.agent_events(start=start, end=now_of(handle)).rows
    assert [r.computer for r in rows] == [target]
    assert rows[0].count >= 1 and rows[0].first_at <= rows[0].last_at
    assert "was not issued by a certificate authority used for Microsoft services" in rows[0].message


# --- escaping, end to end ----------------------------------------------------------------------


@pytest.fixture
def hostile_fleet(make_emulator: Callable[..., EmulatorHandle]) -> EmulatorHandle:
    """A fleet whose Heartbeat computer names are hostile strings (set through parameterised SQL)."""
    handle = make_emulator(seed=9, groups=3, workers=len(HOSTILE) + 2, scenarios=False)
    sim = handle.simulation
    with sim.lock:
        for widx, name in enumerate(HOSTILE):
            sim.con.execute("UPDATE hrw_workers SET Computer = ? WHERE widx = ?", [name, widx])
    return handle


@pytest.mark.parametrize("name", HOSTILE)
def test_it_finds_a_computer_with_a_hostile_name_and_no_other(hostile_fleet: EmulatorHandle, name: str) -> None:
    end = now_of(hostile_fleet)
    with client_for(hostile_fleet) as azure:
        rows = azure.latest_heartbeats(start=end - HOUR, end=end, computers=[name]).rows
    assert [r.computer for r in rows] == [name]


def test_it_finds_every_hostile_name_in_one_query(hostile_fleet: EmulatorHandle) -> None:
    end = now_of(hostile_fleet)
    with client_for(hostile_fleet) as azure:
        rows = azure.utilization(start=end - HOUR, end=end, computers=HOSTILE).rows
    assert {r.computer for r in rows} == set(HOSTILE)


def test_it_sends_the_hostile_names_only_inside_string_literals(hostile_fleet: EmulatorHandle) -> None:
    end = now_of(hostile_fleet)
    with client_for(hostile_fleet) as azure:
        azure.latest_heartbeats(start=end - HOUR, end=end, computers=['x" or 1==1 //'])
    (query,) = [r["kql"] for r in logged(hostile_fleet, lambda r: bool(r.get("kql")), at_least=1)]
    assert '| where (Computer in~ ("x\\" or 1==1 //") or tostring(split(Computer, \'.\')[0]) in~ ("x\\" or 1==1 //"))' in query


# --- faults ------------------------------------------------------------------------------------


@pytest.fixture
def fresh(make_emulator: Callable[..., EmulatorHandle]) -> EmulatorHandle:
    return make_emulator(seed=4, groups=3, workers=9, page_size=2, scenarios=False)


def test_it_raises_a_transient_error_with_retry_after_on_429(fresh: EmulatorHandle) -> None:
    fresh.inject_fault("429", count=5, route="arm")
    with client_for(fresh, retry_total=0) as azure, pytest.raises(AzureTransientError) as info:
        azure.list_groups()
    assert info.value.retry_after == pytest.approx(0.1)


def test_it_rides_out_a_single_429_with_the_sdk_retry(fresh: EmulatorHandle) -> None:
    fresh.inject_fault("429", count=1, route="arm")
    with client_for(fresh, retry_total=2) as azure:
        groups = azure.list_groups()
    assert sorted(g.name for g in groups) == sorted(g.name for g in fresh.simulation.groups)


@pytest.mark.parametrize("kind", ["503", "504"])
def test_it_raises_a_transient_error_on_server_errors(fresh: EmulatorHandle, kind: str) -> None:
    fresh.inject_fault(kind, count=5, route="arm")
    with client_for(fresh, retry_total=0) as azure, pytest.raises(AzureTransientError):
        azure.list_groups()


@pytest.mark.parametrize("kind", ["503", "504", "429", "html"])
def test_it_raises_a_transient_error_on_log_analytics_server_errors(fresh: EmulatorHandle, kind: str) -> None:
    fresh.inject_fault(kind, count=5, route="logs")
    end = now_of(fresh)
    with client_for(fresh, retry_total=0) as azure, pytest.raises(AzureTransientError):
        azure.latest_heartbeats(start=end - HOUR, end=end)


def test_it_raises_a_transient_error_when_an_answer_is_slower_than_the_read_timeout(
    make_emulator: Callable[..., EmulatorHandle],
) -> None:
    handle = make_emulator(seed=4, groups=3, workers=9, scenarios=False, slow_seconds=6)
    with client_for(handle, retry_total=0, read_timeout=3) as azure:
        azure.list_groups()  # token and connection are warm; the next answer is the slow one
        handle.inject_fault("slow", count=1, route="arm")
        with pytest.raises(AzureTransientError):
            azure.list_groups()


@pytest.mark.parametrize("route", ["arm", "logs"])
def test_it_raises_a_transient_error_on_a_reset_connection(fresh: EmulatorHandle, route: str) -> None:
    fresh.inject_fault("reset", count=5, route=route)
    end = now_of(fresh)
    with client_for(fresh, retry_total=0) as azure, pytest.raises(AzureTransientError):
        if route == "arm":
            azure.list_groups()
        else:
            azure.agent_events(start=end - HOUR, end=end)


@pytest.mark.parametrize("route", ["arm", "logs"])
def test_it_raises_a_transient_error_on_a_malformed_body(fresh: EmulatorHandle, route: str) -> None:
    # A truncated body is retried like any transient error (one must never fail a poll for good).
    fresh.inject_fault("malformed", count=5, route=route)
    end = now_of(fresh)
    with client_for(fresh, retry_total=0) as azure, pytest.raises(AzureTransientError):
        if route == "arm":
            azure.list_groups()
        else:
            azure.utilization(start=end - HOUR, end=end)


def test_it_keeps_the_rows_of_a_partial_result(fresh: EmulatorHandle) -> None:
    end = now_of(fresh)
    with client_for(fresh) as azure:
        complete = azure.latest_heartbeats(start=end - HOUR, end=end)
        fresh.inject_fault("partial", count=1, route="logs")
        partial = azure.latest_heartbeats(start=end - HOUR, end=end)
    assert partial.partial_error
    assert complete.partial_error is None
    assert set(partial.rows) <= set(complete.rows) and partial.rows


def test_it_returns_no_list_when_a_later_page_fails(fresh: EmulatorHandle) -> None:
    group = max(fresh.simulation.groups, key=lambda g: len(g.members))
    assert len(group.members) > 2  # page size 2: at least two pages
    with client_for(fresh, retry_total=0) as azure:
        azure.list_groups()  # warm the token
        fresh.inject_fault("slow", count=1, route="arm")  # page 1 answers (slowly) ...
        fresh.inject_fault("503", count=5, route="arm")  # ... page 2 fails
        with pytest.raises(AzureTransientError):
            azure.list_workers(group.name)
    pages = arm_requests(fresh, "/hybridRunbookWorkers", at_least=2)
    assert len(pages) == 2 and "skip" in str(pages[1].get("query", "")).lower()


def test_it_raises_a_permanent_error_when_the_secret_is_wrong(fresh: EmulatorHandle) -> None:
    with client_for(fresh, client_secret="not-the-secret", retry_total=0) as azure, pytest.raises(AzureError) as info:
        azure.list_groups()
    assert not isinstance(info.value, AzureTransientError)


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_it_raises_a_transient_error_when_the_token_endpoint_is_unreachable(fresh: EmulatorHandle) -> None:
    dead = f"https://127.0.0.1:{closed_port()}"
    with client_for(fresh, authority_host=dead, retry_total=0) as azure, pytest.raises(AzureTransientError):
        azure.list_groups()


def test_it_raises_a_permanent_error_when_the_certificate_is_not_trusted(fresh: EmulatorHandle, tmp_path: Path) -> None:
    other_ca = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other_ca))
    with client_for(fresh, ca_bundle=str(other_ca), retry_total=0) as azure, pytest.raises(AzureError) as info:
        azure.list_groups()
    assert not isinstance(info.value, AzureTransientError)
    assert "CA bundle" in str(info.value)
