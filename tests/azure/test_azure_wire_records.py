"""Wire-format tests, reading: our JSON fixtures through the REAL SDK clients and pipeline become
the right records (groups, workers, jobs, Log Analytics rows), and the right requests go out.

No SDK method is mocked: only the socket is replaced (``tests.azure.wire``, azure-notes §4.6). Error
mapping is in test_azure_wire_errors.py; the end-to-end tests over HTTPS against the emulator are in
test_azure_emulator.py.
"""
from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
import requests

from tests.azure.wire import (
    ACCT,
    END,
    START,
    Reply,
    body,
    logs_route,
    make_client,
    paged,
    query_of,
)
from workers.azure.connection import ConnectionSettings
from workers.azure.errors import AzureError
from workers.azure.records import HeartbeatRecord

# --- groups and workers ------------------------------------------------------------------------


def test_it_lists_groups_across_next_link_pages() -> None:
    client, adapter = make_client(paged("groups_page1.json", "groups_page2.json"))
    groups = client.list_groups()
    assert [g.name for g in groups] == ["hrw-linux", "hrw-windows", "Update-Mgmt-Leftover", "hrw-future"]
    assert len(adapter.sent) == 2


def test_it_lower_cases_group_ids_and_keeps_unknown_group_types() -> None:
    client, _ = make_client(paged("groups_page1.json", "groups_page2.json"))
    by_name = {g.name: g for g in client.list_groups()}
    assert by_name["hrw-linux"].azure_id == f"{ACCT}/hybridRunbookWorkerGroups/hrw-linux".lower()
    assert by_name["Update-Mgmt-Leftover"].group_type == "System"
    assert by_name["hrw-future"].group_type == "Federated"


def test_it_parses_worker_fields() -> None:
    client, _ = make_client(paged("workers_page1.json", "workers_page2.json"))
    worker = client.list_workers("hrw-linux")[0]
    assert worker.worker_id == "c010ad12-ef14-4a2a-aa9e-ef22c4745ddd"
    assert worker.group_name == "hrw-linux"
    assert worker.name == "hrw-lin-01"
    assert worker.ip == "10.0.1.4"
    assert worker.worker_type == "HybridV2"
    assert worker.registered_at == datetime(2024, 3, 1, 8, 5, 11, 123456, tzinfo=UTC)
    assert worker.last_seen_at == datetime(2024, 5, 2, 10, 14, 31, 367000, tzinfo=UTC)
    assert worker.vm_resource_id.endswith("/virtualMachines/hrw-lin-01")


def test_it_reads_a_null_last_seen_as_none_and_keeps_unknown_worker_types() -> None:
    client, _ = make_client(paged("workers_page1.json", "workers_page2.json"))
    workers = {w.name: w for w in client.list_workers("hrw-linux")}
    assert workers["HRW-OLD-03"].last_seen_at is None
    assert workers["HRW-OLD-03"].worker_type == "HybridV1"


def test_it_drops_a_worker_row_with_a_malformed_datetime_and_keeps_the_rest(caplog: pytest.LogCaptureFixture) -> None:
    client, _ = make_client(paged("workers_page1.json", "workers_page2.json"))
    names = [w.name for w in client.list_workers("hrw-linux")]
    assert names == ["hrw-lin-01", "hrw-lin-02", "HRW-OLD-03"]
    assert "yesterday-ish" in caplog.text


def test_it_percent_encodes_a_group_name_in_the_url_path() -> None:
    client, adapter = make_client(lambda request: (200, {"value": []}, {}))
    client.list_workers("a/b c?'")
    assert "/hybridRunbookWorkerGroups/a%2Fb%20c%3F%27/hybridRunbookWorkers" in (adapter.sent[0].url or "")


# --- jobs --------------------------------------------------------------------------------------


def jobs_route(request: requests.PreparedRequest) -> Reply:
    flt = query_of(request)["$filter"][0]
    return (200, body("jobs_created.json" if flt.startswith("properties/creationTime") else "jobs_modified.json"), {})


def test_it_sends_one_filter_on_creation_time_and_one_on_last_modified_time() -> None:
    client, adapter = make_client(jobs_route)
    client.list_jobs(since=START, until=END)
    filters = [query_of(r)["$filter"][0] for r in adapter.sent]
    assert filters == [
        "properties/creationTime ge 2024-05-02T09:00:00.0000000+00:00 and properties/creationTime lt 2024-05-02T10:30:00.0000000+00:00",
        "properties/lastModifiedTime ge 2024-05-02T09:00:00.0000000+00:00 and properties/lastModifiedTime lt 2024-05-02T10:30:00.0000000+00:00",
    ]


def test_it_merges_the_two_job_listings_keeping_the_latest_view_of_each_job() -> None:
    client, _ = make_client(jobs_route)
    jobs = {j.job_id: j for j in client.list_jobs(since=START)}
    assert set(jobs) == {
        "5b8a3960-e8ab-45f6-bec6-567df8467d1a",
        "0fa462ba-3aa2-4138-83ca-9ebc3bc55cdc",
        "7c2d1e00-0000-4000-8000-00000000000a",
        "1d3e5f70-0000-4000-8000-00000000000c",
    }
    assert jobs["0fa462ba-3aa2-4138-83ca-9ebc3bc55cdc"].status == "Running"
    assert jobs["0fa462ba-3aa2-4138-83ca-9ebc3bc55cdc"].started_at == datetime(2024, 5, 2, 10, 13, 30, tzinfo=UTC)


def test_it_parses_job_fields() -> None:
    client, _ = make_client(jobs_route)
    job = {j.job_id: j for j in client.list_jobs(since=START)}["5b8a3960-e8ab-45f6-bec6-567df8467d1a"]
    assert (job.runbook, job.status, job.run_on, job.started_by, job.provisioning_state) == (
        "Patch-Servers", "Completed", "hrw-linux", "Scheduler", "Succeeded",
    )
    assert job.created_at == datetime(2024, 5, 2, 10, 0, 0, 123000, tzinfo=UTC)
    assert job.ended_at == datetime(2024, 5, 2, 10, 3, 10, 789000, tzinfo=UTC)


def test_it_keeps_a_job_status_the_sdk_does_not_know() -> None:
    client, _ = make_client(jobs_route)
    job = {j.job_id: j for j in client.list_jobs(since=START)}["7c2d1e00-0000-4000-8000-00000000000a"]
    assert job.status == "Queued"
    assert job.run_on == ""


def test_it_keeps_the_exception_text_of_a_failed_job() -> None:
    client, _ = make_client(jobs_route)
    job = {j.job_id: j for j in client.list_jobs(since=START)}["1d3e5f70-0000-4000-8000-00000000000c"]
    assert job.exception.startswith("The job action 'Activate' cannot be run")


def test_it_quotes_status_and_run_on_as_odata_literals() -> None:
    client, adapter = make_client(lambda request: (200, {"value": []}, {}))
    client.list_jobs(since=START, status="Failed", run_on="o'brien")
    flt = query_of(adapter.sent[0])["$filter"][0]
    assert flt.endswith(" and properties/status eq 'Failed' and properties/runOn eq 'o''brien'")


def test_it_filters_run_on_client_side_when_the_service_ignores_it() -> None:
    client, _ = make_client(jobs_route)
    jobs = client.list_jobs(since=START, run_on="hrw-windows")
    assert [j.runbook for j in jobs] == ["Rotate-Logs"]


# --- Log Analytics -----------------------------------------------------------------------------


def test_it_parses_heartbeat_rows() -> None:
    client, _ = make_client(logs_route("logs_heartbeat.json"))
    rows = client.latest_heartbeats(start=START, end=END).rows
    assert rows[0] == HeartbeatRecord(
        computer="hrw-lin-01",
        time_generated=datetime(2024, 5, 2, 10, 14, 59, 123456, tzinfo=UTC),
        version="1.30.2",
        os_type="Linux",
        category="Azure Monitor Agent",
        computer_ip="20.61.14.7",
        resource_id="/subscriptions/6b1f2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d/resourcegroups/rg-vms/providers/microsoft.compute/virtualmachines/hrw-lin-01",
    )


def test_it_reads_null_and_the_string_none_in_heartbeat_cells_as_empty() -> None:
    client, _ = make_client(logs_route("logs_heartbeat.json"))
    row = {r.computer: r for r in client.latest_heartbeats(start=START, end=END).rows}["hrw-win-03"]
    assert (row.version, row.computer_ip, row.resource_id) == ("", "", "")


def test_it_drops_a_heartbeat_row_with_a_malformed_datetime_and_keeps_the_rest() -> None:
    client, _ = make_client(logs_route("logs_heartbeat.json"))
    computers = [r.computer for r in client.latest_heartbeats(start=START, end=END).rows]
    assert computers == ["hrw-lin-01", "hrw-win-02", "hrw-win-03"]


def test_it_sends_the_window_as_the_timespan_too() -> None:
    client, adapter = make_client(logs_route("logs_heartbeat.json"))
    client.latest_heartbeats(start=START, end=END)
    sent = json.loads(adapter.sent[0].body or b"{}")
    assert sent["timespan"] == "2024-05-02T09:00:00.000Z/2024-05-02T10:30:00.000Z"
    assert "datetime(2024-05-02T09:00:00.0000000Z)" in sent["query"]


def test_it_takes_memory_from_the_used_percentage_counter() -> None:
    client, _ = make_client(logs_route("logs_utilization.json"))
    row = client.utilization(start=START, end=END).rows[0]
    assert (row.computer, row.cpu_pct, row.mem_pct) == ("hrw-win-02", 12.5, 61.25)


def test_it_derives_memory_from_the_available_percentage_when_no_used_counter_exists() -> None:
    client, _ = make_client(logs_route("logs_utilization.json"))
    row = client.utilization(start=START, end=END).rows[1]
    assert (row.computer, row.mem_pct) == ("hrw-lin-01", 20.0)


def test_it_leaves_missing_utilization_values_as_none() -> None:
    client, _ = make_client(logs_route("logs_utilization.json"))
    row = client.utilization(start=START, end=END).rows[2]
    assert (row.cpu_pct, row.mem_pct) == (None, None)


def test_it_parses_agent_event_rows() -> None:
    client, _ = make_client(logs_route("logs_events.json"))
    (row,) = client.agent_events(start=START, end=END).rows
    assert (row.computer, row.event_id, row.count) == ("hrw-win-02", 4502, 3)
    assert row.first_at == datetime(2024, 5, 2, 9, 0, tzinfo=UTC)
    assert row.last_at == datetime(2024, 5, 2, 10, 0, tzinfo=UTC)
    assert "was not issued by a certificate authority used for Microsoft services" in row.message


def test_it_keeps_the_rows_of_a_partial_result_and_reports_its_error() -> None:
    client, _ = make_client(logs_route("logs_partial.json"))
    result = client.latest_heartbeats(start=START, end=END)
    assert [r.computer for r in result.rows] == ["hrw-lin-01"]
    assert result.partial_error is not None and "E_QUERY_RESULT_SET_TOO_LARGE" in result.partial_error


def test_it_does_not_query_when_the_computer_list_is_empty() -> None:
    client, adapter = make_client(logs_route("logs_heartbeat.json"))
    assert client.latest_heartbeats(start=START, end=END, computers=[]).rows == ()
    assert adapter.sent == []


def test_it_does_not_query_when_every_computer_name_is_unrepresentable() -> None:
    client, adapter = make_client(logs_route("logs_heartbeat.json"))
    assert client.utilization(start=START, end=END, computers=["bell\x07"]).rows == ()
    assert adapter.sent == []


def test_it_refuses_a_log_query_without_a_workspace() -> None:
    client, _ = make_client(logs_route("logs_heartbeat.json"))
    client.conn = ConnectionSettings(subscription_id="s", resource_group="r", automation_account="a")
    with pytest.raises(AzureError, match="no Log Analytics workspace"):
        client.agent_events(start=START, end=END)

