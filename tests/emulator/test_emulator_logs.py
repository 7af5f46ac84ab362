"""The emulator's Log Analytics route, through the real ``LogsQueryClient`` over HTTPS."""
from __future__ import annotations

from datetime import timedelta

import pytest
import requests
from azure.core.exceptions import HttpResponseError
from azure.monitor.query import LogsQueryPartialResult, LogsQueryStatus

from tests.fixtures.emulator import EMULATOR_NOW

LATEST = ("Heartbeat | summarize arg_max(TimeGenerated, Category, OSType, Version, ComputerIP) by Computer "
          "| project Computer, TimeGenerated, Category, OSType, Version, ComputerIP")


def query(clients, kql, timespan=timedelta(hours=1)):
    return clients.logs.query_workspace(clients.workspace, kql, timespan=timespan)


def test_it_answers_the_latest_heartbeat_query_for_every_worker(emulator, sdk_clients):
    clients = sdk_clients(emulator)
    result = query(clients, LATEST)
    assert result.status == LogsQueryStatus.SUCCESS
    table = result.tables[0]
    assert table.columns == ["Computer", "TimeGenerated", "Category", "OSType", "Version", "ComputerIP"]
    rows = {r["Computer"]: r for r in table.rows}
    assert set(rows) == {w.name for w in emulator.simulation.workers}
    for w in emulator.simulation.workers:
        row = rows[w.name]
        assert timedelta(seconds=20) <= EMULATOR_NOW - row["TimeGenerated"] < timedelta(minutes=5)
        assert row["OSType"] == w.os_type
        assert row["Category"] == ("Azure Monitor Agent" if w.worker_type == "HybridV2" else "Direct Agent")


def test_it_types_columns_like_log_analytics(emulator, sdk_clients):
    clients = sdk_clients(emulator)
    table = query(clients, "Perf | take 3 | project TimeGenerated, Computer, CounterValue, "
                           "Age = now() - TimeGenerated").tables[0]
    assert table.columns_types == ["datetime", "string", "real", "timespan"]


def test_it_pins_now_to_the_simulation_clock(emulator, sdk_clients):
    clients = sdk_clients(emulator)
    table = query(clients, "Heartbeat | take 1 | project Now = now()", timespan=None).tables[0]
    assert table.rows[0]["Now"] == EMULATOR_NOW


def test_it_serves_both_windows_cpu_objects_and_both_linux_instances(emulator, sdk_clients):
    clients = sdk_clients(emulator)
    table = query(clients, 'Perf | where CounterName == "% Processor Time" | distinct ObjectName, InstanceName').tables[0]
    pairs = {(r[0], r[1]) for r in table.rows}
    assert {("Processor", "_Total"), ("Processor Information", "_Total"), ("Processor", "total")} <= pairs


def test_it_serves_the_memory_counters_of_both_platforms(emulator, sdk_clients):
    clients = sdk_clients(emulator)
    table = query(clients, 'Perf | where ObjectName == "Memory" | distinct CounterName').tables[0]
    assert {r[0] for r in table.rows} == {"% Committed Bytes In Use", "Available MBytes", "% Used Memory",
                                          "Available MBytes Memory"}


def test_it_carries_the_standard_type_column(emulator, sdk_clients):
    clients = sdk_clients(emulator)
    table = query(clients, "union Heartbeat, Perf | summarize n = count() by Type | order by Type asc").tables[0]
    assert [r["Type"] for r in table.rows] == ["Heartbeat", "Perf"]


def test_it_applies_a_duration_timespan(emulator, sdk_clients):
    clients = sdk_clients(emulator)
    table = query(clients, "Heartbeat | summarize Oldest = min(TimeGenerated)", timedelta(minutes=10)).tables[0]
    assert EMULATOR_NOW - table.rows[0]["Oldest"] <= timedelta(minutes=10)


def test_it_applies_a_start_end_timespan(emulator, sdk_clients):
    clients = sdk_clients(emulator)
    start, end = EMULATOR_NOW - timedelta(minutes=50), EMULATOR_NOW - timedelta(minutes=40)
    table = query(clients, "Heartbeat | summarize Oldest = min(TimeGenerated), Newest = max(TimeGenerated)",
                  (start, end)).tables[0]
    assert start <= table.rows[0]["Oldest"] and table.rows[0]["Newest"] <= end


def test_it_applies_a_start_duration_timespan(emulator, sdk_clients):
    clients = sdk_clients(emulator)
    start = EMULATOR_NOW - timedelta(minutes=90)
    table = query(clients, "Heartbeat | summarize Newest = max(TimeGenerated)", (start, timedelta(minutes=5))).tables[0]
    assert start <= table.rows[0]["Newest"] <= start + timedelta(minutes=5)


def test_it_reads_every_ingested_row_without_a_timespan(emulator, sdk_clients):
    clients = sdk_clients(emulator)
    table = query(clients, "Heartbeat | summarize Oldest = min(TimeGenerated)", None).tables[0]
    assert EMULATOR_NOW - table.rows[0]["Oldest"] > timedelta(minutes=100)


def test_it_answers_400_for_a_syntax_error(emulator, sdk_clients):
    clients = sdk_clients(emulator, retry_total=0)
    with pytest.raises(HttpResponseError) as info:
        query(clients, "Heartbeat | where | take 5")
    assert info.value.status_code == 400
    assert info.value.model.code == "BadArgumentError"


def test_it_answers_400_for_a_table_in_the_wrong_case(emulator, sdk_clients):
    clients = sdk_clients(emulator, retry_total=0)
    with pytest.raises(HttpResponseError) as info:
        query(clients, "heartbeat | count")
    assert info.value.status_code == 400
    assert "heartbeat" in str(info.value)


def test_it_answers_400_for_a_column_in_the_wrong_case(emulator, sdk_clients):
    clients = sdk_clients(emulator, retry_total=0)
    with pytest.raises(HttpResponseError) as info:
        query(clients, 'Heartbeat | where computer == "hrw-win-03"')
    assert info.value.status_code == 400


def test_it_accepts_functions_that_share_a_name_with_a_column(emulator, sdk_clients):
    clients = sdk_clients(emulator)
    table = query(clients, "Perf | summarize max(CounterValue), min(CounterValue)").tables[0]
    assert len(table.rows) == 1


def test_it_answers_400_for_an_unknown_column(emulator, sdk_clients):
    clients = sdk_clients(emulator, retry_total=0)
    with pytest.raises(HttpResponseError) as info:
        query(clients, "Heartbeat | where NoSuchColumn == 1")
    assert info.value.status_code == 400


def test_it_never_exposes_internal_tables(emulator, sdk_clients):
    clients = sdk_clients(emulator, retry_total=0)
    for kql in ("hb_raw | take 1", "hrw_workers | take 1", "duckdb_tables | take 1", "AzureDiagnostics | take 1"):
        with pytest.raises(HttpResponseError) as info:
            query(clients, kql)
        assert info.value.status_code == 400


def test_it_answers_400_for_an_unsupported_construct(emulator, sdk_clients):
    clients = sdk_clients(emulator, retry_total=0)
    with pytest.raises(HttpResponseError) as info:
        query(clients, "Heartbeat | make-series count() on TimeGenerated step 1h")
    assert info.value.status_code == 400


def test_string_literals_cannot_inject(emulator, sdk_clients):
    clients = sdk_clients(emulator)
    table = query(clients, "Heartbeat | where Computer == \"x' or '1'='1\" | count").tables[0]
    assert table.rows[0][0] == 0


def test_it_answers_404_for_another_workspace(emulator, sdk_clients):
    clients = sdk_clients(emulator, retry_total=0)
    with pytest.raises(HttpResponseError) as info:
        clients.logs.query_workspace("00000000-0000-0000-0000-000000000000", "Heartbeat | count", timespan=None)
    assert info.value.status_code == 404


def test_it_answers_400_for_a_bad_timespan(emulator, sdk_clients):
    clients = sdk_clients(emulator)
    r = requests.post(f"{emulator.url}/v1/workspaces/{clients.workspace}/query",
                      json={"query": "Heartbeat | count", "timespan": "yesterday"},
                      headers={"Authorization": f"Bearer {clients.token()}"},
                      verify=emulator.ca_bundle, timeout=10)
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "BadArgumentError"


def test_it_returns_a_partial_result_past_the_row_limit(make_emulator, sdk_clients):
    emu = make_emulator(seed=2, groups=2, workers=4, scenarios=False, max_rows=10)
    clients = sdk_clients(emu)
    result = query(clients, "Heartbeat | project Computer, TimeGenerated")
    assert isinstance(result, LogsQueryPartialResult)
    assert len(result.partial_data[0].rows) == 10
    assert result.partial_error.code == "PartialError"
    inner = result.partial_error.details[0]["innererror"]["message"]
    assert "record count limit 10 " in inner


def test_it_returns_statistics_when_asked(emulator, sdk_clients):
    clients = sdk_clients(emulator)
    result = clients.logs.query_workspace(clients.workspace, "Heartbeat | count", timespan=None,
                                          include_statistics=True)
    assert "executionTime" in result.statistics["query"]


def test_it_logs_the_kql_text_of_each_query(make_emulator, sdk_clients):
    emu = make_emulator(seed=2, groups=2, workers=4, scenarios=False)
    clients = sdk_clients(emu)
    query(clients, "Heartbeat | count")
    logged = [r for r in emu.requests() if r["path"].endswith("/query")]
    assert [r["kql"] for r in logged] == ["Heartbeat | count"]
    assert logged[0]["method"] == "POST" and logged[0]["status"] == 200


def test_new_rows_appear_as_the_clock_advances(make_emulator, sdk_clients):
    emu = make_emulator(seed=2, groups=2, workers=4, scenarios=False)
    clients = sdk_clients(emu)
    before = query(clients, "Heartbeat | summarize max(TimeGenerated)").tables[0].rows[0][0]
    emu.clock.advance(600)
    after = query(clients, "Heartbeat | summarize max(TimeGenerated)").tables[0].rows[0][0]
    assert timedelta(minutes=8) <= after - before <= timedelta(minutes=12)


def test_it_answers_batch_queries(emulator, sdk_clients):
    from azure.monitor.query import LogsBatchQuery

    clients = sdk_clients(emulator)
    results = clients.logs.query_batch([
        LogsBatchQuery(clients.workspace, "Heartbeat | count", timespan=timedelta(hours=1)),
        LogsBatchQuery(clients.workspace, "heartbeat | count", timespan=timedelta(hours=1)),
    ])
    assert results[0].status == LogsQueryStatus.SUCCESS
    assert results[1].status == LogsQueryStatus.FAILURE


def test_a_runaway_query_is_interrupted_with_a_504(make_emulator, sdk_clients):
    # Two days: the self-join stays far past the limit with the VM insights machine out of Perf.
    emu = make_emulator(seed=2, groups=2, workers=6, history_days=2, scenarios=False, query_timeout=0.2)
    clients = sdk_clients(emu, retry_total=0)
    with pytest.raises(HttpResponseError) as info:
        query(clients, "Perf | join kind=inner (Perf) on Computer | count", timespan=None)
    assert info.value.status_code == 504


def test_it_answers_joins_and_lookups(emulator, sdk_clients):
    clients = sdk_clients(emulator)
    joined = query(clients, "Heartbeat | summarize by Computer | join kind=inner "
                            "(Perf | summarize Cpu = avg(CounterValue) by Computer) on Computer | count").tables[0]
    looked = query(clients, "Heartbeat | summarize by Computer | lookup kind=leftouter "
                            "(Perf | summarize by Computer, ObjectName) on Computer | count").tables[0]
    in_perf = [w for w in emulator.simulation.workers if not w.vm_insights]  # VM insights ones use InsightsMetrics
    assert 0 < len(in_perf) < len(emulator.simulation.workers)
    assert joined.rows[0][0] == len(in_perf)
    assert looked.rows[0][0] >= len(emulator.simulation.workers)


def test_it_refuses_to_reach_the_internal_database_by_name(emulator, sdk_clients):
    clients = sdk_clients(emulator, retry_total=0)
    with pytest.raises(HttpResponseError) as info:
        query(clients, 'database("memory").hb_raw | take 1')
    assert info.value.status_code == 400


def test_let_bound_ago_uses_the_simulation_clock(emulator, sdk_clients):
    clients = sdk_clients(emulator)
    table = query(clients, "let since = ago(30m); Heartbeat | where TimeGenerated > since "
                           "| summarize Oldest = min(TimeGenerated)", timespan=None).tables[0]
    assert EMULATOR_NOW - timedelta(minutes=30) < table.rows[0]["Oldest"] < EMULATOR_NOW - timedelta(minutes=29)
