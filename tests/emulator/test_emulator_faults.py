"""Each injected fault, as the real SDK clients see it."""
from __future__ import annotations

import json
from datetime import timedelta

import pytest
from azure.core.exceptions import DecodeError, HttpResponseError, ServiceRequestError, ServiceResponseError
from azure.monitor.query import LogsQueryPartialResult, LogsQueryStatus


@pytest.fixture
def emu(make_emulator):
    return make_emulator(seed=4, groups=3, workers=6, scenarios=False, page_size=100)


def list_groups(clients):
    return list(clients.arm.hybrid_runbook_worker_group.list_by_automation_account(clients.rg, clients.account))


def heartbeat_count(clients):
    return clients.logs.query_workspace(clients.workspace, "Heartbeat | project Computer", timespan=timedelta(hours=1))


def statuses(emu, suffix):
    return [(r["status"], r.get("fault")) for r in emu.requests() if r["path"].endswith(suffix)]


def test_a_429_carries_a_small_retry_after(emu, sdk_clients):
    emu.inject_fault("429", route="arm")
    clients = sdk_clients(emu, retry_total=0)
    with pytest.raises(HttpResponseError) as info:
        list_groups(clients)
    assert info.value.status_code == 429
    assert info.value.response.headers["Retry-After"] == "0.1"


def test_the_sdk_retries_a_429_and_succeeds(emu, sdk_clients):
    emu.inject_fault("429", count=2, route="arm")
    clients = sdk_clients(emu)
    assert len(list_groups(clients)) == 3
    assert statuses(emu, "/hybridRunbookWorkerGroups") == [(429, "429"), (429, "429"), (200, None)]


def test_a_logs_429_with_retry_after_is_retried_even_on_post(emu, sdk_clients):
    emu.inject_fault("429", route="logs")
    clients = sdk_clients(emu)
    assert heartbeat_count(clients).status == LogsQueryStatus.SUCCESS
    assert statuses(emu, "/query") == [(429, "429"), (200, None)]


def test_a_503_is_an_http_error(emu, sdk_clients):
    emu.inject_fault("503", route="arm")
    clients = sdk_clients(emu, retry_total=0)
    with pytest.raises(HttpResponseError) as info:
        list_groups(clients)
    assert info.value.status_code == 503
    assert info.value.error.code == "ServiceUnavailable"


def test_a_504_on_logs_is_an_http_error(emu, sdk_clients):
    emu.inject_fault("504", route="logs")
    clients = sdk_clients(emu, retry_total=0)
    with pytest.raises(HttpResponseError) as info:
        heartbeat_count(clients)
    assert info.value.status_code == 504


def test_a_slow_answer_times_out_a_short_read_timeout(emu, sdk_clients):
    emu.inject_fault("slow", route="arm")  # the fixture sleeps 0.5 s
    clients = sdk_clients(emu, retry_total=0, read_timeout=0.1)
    with pytest.raises(ServiceResponseError):
        list_groups(clients)


def test_a_slow_answer_still_answers(emu, sdk_clients):
    emu.inject_fault("slow", route="arm")
    clients = sdk_clients(emu, retry_total=0)
    assert len(list_groups(clients)) == 3
    assert statuses(emu, "/hybridRunbookWorkerGroups") == [(200, "slow")]


def test_a_partial_fault_gives_a_partial_result(emu, sdk_clients):
    clients = sdk_clients(emu)
    full = len(heartbeat_count(clients).tables[0].rows)
    emu.inject_fault("partial", route="logs")
    result = heartbeat_count(clients)
    assert isinstance(result, LogsQueryPartialResult)
    assert len(result.partial_data[0].rows) == full // 2
    assert result.partial_error.code == "PartialError"


def test_a_partial_fault_never_touches_arm(emu, sdk_clients):
    emu.inject_fault("partial", route="any")
    clients = sdk_clients(emu, retry_total=0)
    assert len(list_groups(clients)) == 3
    assert isinstance(heartbeat_count(clients), LogsQueryPartialResult)


def test_a_malformed_arm_body_is_a_decode_error(emu, sdk_clients):
    emu.inject_fault("malformed", route="arm")
    clients = sdk_clients(emu, retry_total=0)
    with pytest.raises(DecodeError):
        list_groups(clients)


def test_a_malformed_logs_body_is_an_http_error_saying_json_is_invalid(emu, sdk_clients):
    emu.inject_fault("malformed", route="logs")
    clients = sdk_clients(emu, retry_total=0)
    with pytest.raises(HttpResponseError, match="JSON is invalid"):
        heartbeat_count(clients)


def test_an_html_502_on_logs_escapes_as_a_json_error(emu, sdk_clients):
    emu.inject_fault("html", route="logs")
    clients = sdk_clients(emu, retry_total=0)
    with pytest.raises(json.JSONDecodeError):
        heartbeat_count(clients)


def test_a_reset_connection_is_a_transport_error(emu, sdk_clients):
    emu.inject_fault("reset", route="arm")
    clients = sdk_clients(emu, retry_total=0)
    with pytest.raises((ServiceResponseError, ServiceRequestError)):
        list_groups(clients)


def test_the_sdk_recovers_from_a_reset(emu, sdk_clients):
    emu.inject_fault("reset", route="arm")
    clients = sdk_clients(emu)
    assert len(list_groups(clients)) == 3


def test_a_fault_lasts_for_its_count(emu, sdk_clients):
    emu.inject_fault("503", count=2, route="arm")
    clients = sdk_clients(emu, retry_total=0)
    for _ in range(2):
        with pytest.raises(HttpResponseError):
            list_groups(clients)
    assert len(list_groups(clients)) == 3


def test_a_logs_fault_leaves_arm_alone(emu, sdk_clients):
    emu.inject_fault("503", route="logs")
    clients = sdk_clients(emu, retry_total=0)
    assert len(list_groups(clients)) == 3
    with pytest.raises(HttpResponseError):
        heartbeat_count(clients)


def test_a_fault_rate_of_one_faults_every_request(make_emulator, sdk_clients):
    emu = make_emulator(seed=4, groups=3, workers=6, scenarios=False, fault_rate=1.0)
    emu.server.config.random_fault_kinds = ("503",)
    clients = sdk_clients(emu, retry_total=0)
    for _ in range(3):
        with pytest.raises(HttpResponseError):
            list_groups(clients)


def test_it_refuses_an_unknown_fault_kind(emu):
    with pytest.raises(ValueError):
        emu.inject_fault("gremlins")


def test_a_slow_query_past_the_prefer_wait_is_a_504(emu, sdk_clients):
    emu.server.config.slow_seconds = 1.5
    emu.inject_fault("slow", route="logs")
    clients = sdk_clients(emu, retry_total=0)
    with pytest.raises(HttpResponseError) as info:
        clients.logs.query_workspace(clients.workspace, "Heartbeat | count", timespan=None, server_timeout=1)
    assert info.value.status_code == 504
