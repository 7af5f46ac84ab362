"""Wire-format tests, failing: HTTP errors, bad bodies and dropped connections from the REAL SDK
clients and pipeline become our AzureError (permanent) or AzureTransientError (retry later), with
bounded retries and a capped Retry-After.

No SDK method is mocked: only the socket is replaced (``tests.azure.wire``, azure-notes §4.6).
"""
from __future__ import annotations

import pytest
import requests

from tests.azure.wire import END, START, Reply, body, logs_route, make_client, query_of
from workers.azure.errors import AzureError, AzureTransientError

# --- error mapping -----------------------------------------------------------------------------


def test_it_maps_arm_401_to_a_permanent_error() -> None:
    client, _ = make_client(lambda request: (401, body("arm_error_401.json"), {}))
    with pytest.raises(AzureError) as info:
        client.list_groups()
    assert not isinstance(info.value, AzureTransientError)


def test_it_maps_arm_404_to_a_permanent_error() -> None:
    client, _ = make_client(lambda request: (404, body("arm_error_404.json"), {}))
    with pytest.raises(AzureError) as info:
        client.list_workers("gone")
    assert not isinstance(info.value, AzureTransientError)


def test_it_maps_arm_429_to_a_transient_error_with_retry_after() -> None:
    client, _ = make_client(lambda request: (429, body("arm_error_429.json"), {"Retry-After": "30"}))
    with pytest.raises(AzureTransientError) as info:
        client.list_groups()
    assert info.value.retry_after == 30.0


def test_it_does_not_sleep_a_retry_after_longer_than_the_cap() -> None:
    client, adapter = make_client(lambda request: (429, body("arm_error_429.json"), {"Retry-After": "3600"}), retry_total=3)
    with pytest.raises(AzureTransientError):
        client.list_groups()
    assert len(adapter.sent) == 1


def test_it_retries_a_503_then_succeeds() -> None:
    answers = iter([(503, {"error": {"code": "ServiceUnavailable", "message": "busy"}}, {}), (200, body("groups_page2.json"), {})])
    client, adapter = make_client(lambda request: next(answers), retry_total=1)
    assert [g.name for g in client.list_groups()] == ["Update-Mgmt-Leftover", "hrw-future"]
    assert len(adapter.sent) == 2


def test_it_raises_instead_of_returning_the_pages_it_got_before_a_failure() -> None:
    def route(request: requests.PreparedRequest) -> Reply:
        if "$skip" in query_of(request):
            return (503, {"error": {"code": "ServiceUnavailable", "message": "busy"}}, {})
        return (200, body("groups_page1.json"), {})

    client, _ = make_client(route)
    with pytest.raises(AzureTransientError):
        client.list_groups()


def test_it_maps_a_malformed_arm_body_to_a_transient_error() -> None:
    # A truncated body is a transport accident: retried, never a poll failed for good.
    client, _ = make_client(lambda request: (200, b'{"value": [', {}))
    with pytest.raises(AzureTransientError, match="could not be decoded"):
        client.list_groups()


def test_it_maps_a_log_analytics_400_to_a_permanent_error() -> None:
    client, _ = make_client(logs_route("logs_error_400.json", status=400))
    with pytest.raises(AzureError) as info:
        client.latest_heartbeats(start=START, end=END)
    assert not isinstance(info.value, AzureTransientError)
    assert "400" in str(info.value)


def test_it_maps_a_log_analytics_html_502_to_a_transient_error() -> None:
    client, _ = make_client(logs_route("<html><body>Bad Gateway</body></html>", status=502, headers={"Content-Type": "text/html"}))
    with pytest.raises(AzureTransientError):
        client.latest_heartbeats(start=START, end=END)


def test_it_maps_a_malformed_log_analytics_200_to_a_transient_error() -> None:
    client, _ = make_client(logs_route("{not json", status=200))
    with pytest.raises(AzureTransientError):
        client.utilization(start=START, end=END)


def test_it_maps_a_log_analytics_429_to_a_transient_error() -> None:
    client, _ = make_client(logs_route("logs_error_400.json", status=429, headers={"Retry-After": "120"}))
    with pytest.raises(AzureTransientError) as info:
        client.agent_events(start=START, end=END)
    assert info.value.retry_after == 120.0


def test_it_maps_a_dropped_connection_to_a_transient_error() -> None:
    def route(request: requests.PreparedRequest) -> Reply:
        raise requests.ConnectionError(ConnectionResetError(104, "Connection reset by peer"))

    client, _ = make_client(route)
    with pytest.raises(AzureTransientError):
        client.list_groups()
