"""A real SDK pipeline over an in-process ``requests`` adapter, for the wire-format tests.

``make_client`` builds an ``AzureClient`` whose AutomationClient / LogsQueryClient build, send,
retry, page and decode as they would against Azure; only the socket is replaced by ``route``,
which answers from our JSON fixtures (shapes of azure-notes §2.8 / §3.5) in
``tests/fixtures/azure_bodies``.
"""
from __future__ import annotations

import io
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests
import urllib3
from azure.core.credentials import AccessToken
from azure.core.pipeline.transport import RequestsTransport

from workers.azure.client import AzureClient
from workers.azure.connection import ConnectionSettings

BODIES = Path(__file__).resolve().parents[1] / "fixtures" / "azure_bodies"
ACCT = "/subscriptions/6b1f2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d/resourceGroups/rg-ops/providers/Microsoft.Automation/automationAccounts/aa-ops"
START = datetime(2024, 5, 2, 9, 0, tzinfo=UTC)
END = datetime(2024, 5, 2, 10, 30, tzinfo=UTC)

Reply = tuple[int, Any, dict[str, str]]


def body(name: str) -> Any:
    return json.loads((BODIES / name).read_text())


class StaticCredential:
    """A TokenCredential for the socket-free tests (the emulator tests use a real ClientSecretCredential)."""

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken("wire-test-token", int(time.time()) + 3600)

    def close(self) -> None:
        pass


class InProcessAdapter(requests.adapters.BaseAdapter):
    """Answers each request with ``route(request)``; records what was sent."""

    def __init__(self, route: Callable[[requests.PreparedRequest], Reply]) -> None:
        super().__init__()
        self.route = route
        self.sent: list[requests.PreparedRequest] = []

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        self.sent.append(request)
        status, payload, headers = self.route(request)
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        response = requests.Response()
        response.status_code = status
        response.reason = "test"
        response.request = request
        response.url = request.url or ""
        response.headers.update({"Content-Type": "application/json; charset=utf-8", **headers})
        response.raw = urllib3.HTTPResponse(
            body=io.BytesIO(data), preload_content=False, status=status, headers=dict(response.headers)
        )
        return response

    def close(self) -> None:
        pass


def make_client(route: Callable[[requests.PreparedRequest], Reply], *, retry_total: int = 0) -> tuple[AzureClient, InProcessAdapter]:
    adapter = InProcessAdapter(route)
    session = requests.Session()
    session.mount("https://", adapter)
    conn = ConnectionSettings(
        subscription_id="6b1f2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d",
        resource_group="rg-ops",
        automation_account="aa-ops",
        workspace_id="ws-1",
        retry_total=retry_total,
    )
    client = AzureClient(conn, credential=StaticCredential(), transport=RequestsTransport(session=session, session_owner=False))
    return client, adapter


def query_of(request: requests.PreparedRequest) -> dict[str, list[str]]:
    return parse_qs(urlsplit(request.url or "").query)


def paged(first: str, second: str) -> Callable[[requests.PreparedRequest], Reply]:
    def route(request: requests.PreparedRequest) -> Reply:
        return (200, body(second if "$skip" in query_of(request) else first), {})

    return route



def logs_route(name: str, status: int = 200, headers: dict[str, str] | None = None) -> Callable[[requests.PreparedRequest], Reply]:
    return lambda request: (status, body(name) if name.endswith(".json") else name.encode(), headers or {})
