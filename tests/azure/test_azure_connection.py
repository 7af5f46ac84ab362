"""Connection settings (file and AutomationAccount row) and how the credential is chosen."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from azure.identity import ClientSecretCredential, DefaultAzureCredential

from workers.azure.client import AzureClient
from workers.azure.connection import (
    ConnectionSettings,
    connection_from_account,
    connection_from_file,
)
from workers.azure.errors import AzureError
from workers.models import AutomationAccount

CONNECTION = {
    "arm_endpoint": "https://127.0.0.1:8443",
    "logs_endpoint": "https://127.0.0.1:8443",
    "authority_host": "https://127.0.0.1:8443",
    "ca_bundle": "pki/ca.pem",
    "tenant_id": "tenant-1",
    "client_id": "client-1",
    "client_secret": "s3cret",
    "subscription_id": "00000000-0000-0000-0000-000000000001",
    "resource_group": "rg-ops",
    "automation_account": "aa-ops",
    "workspace_id": "ws-1",
}


def write(path: Path, data: Any) -> Path:
    path.write_text(json.dumps(data) if not isinstance(data, str) else data)
    return path


def test_it_reads_a_connection_file(tmp_path: Path) -> None:
    conn = connection_from_file(write(tmp_path / "conn.json", CONNECTION))
    assert (conn.subscription_id, conn.resource_group, conn.automation_account, conn.workspace_id) == (
        "00000000-0000-0000-0000-000000000001", "rg-ops", "aa-ops", "ws-1",
    )
    assert (conn.tenant_id, conn.client_id, conn.client_secret) == ("tenant-1", "client-1", "s3cret")
    assert conn.arm_endpoint == conn.logs_endpoint == conn.authority_host == "https://127.0.0.1:8443"


def test_it_resolves_a_relative_ca_bundle_against_the_connection_file(tmp_path: Path) -> None:
    conn = connection_from_file(write(tmp_path / "conn.json", CONNECTION))
    assert conn.ca_bundle == str(tmp_path / "pki" / "ca.pem")


def test_it_keeps_the_default_logs_audience_when_the_file_has_none(tmp_path: Path) -> None:
    conn = connection_from_file(write(tmp_path / "conn.json", CONNECTION))
    assert conn.logs_audience == "https://api.loganalytics.io"


def test_it_takes_timeouts_and_retries_from_settings(tmp_path: Path, settings: Any) -> None:
    settings.AZURE_CONNECT_TIMEOUT = 3
    settings.AZURE_READ_TIMEOUT = 7
    settings.AZURE_RETRY_TOTAL = 0
    conn = connection_from_file(write(tmp_path / "conn.json", CONNECTION))
    assert (conn.connect_timeout, conn.read_timeout, conn.retry_total) == (3.0, 7.0, 0)


def test_it_rejects_a_connection_file_without_the_account_ids(tmp_path: Path) -> None:
    data = {k: v for k, v in CONNECTION.items() if k != "automation_account"}
    with pytest.raises(AzureError, match="automation_account"):
        connection_from_file(write(tmp_path / "conn.json", data))


def test_it_rejects_a_connection_file_that_is_not_json(tmp_path: Path) -> None:
    with pytest.raises(AzureError, match="not valid JSON"):
        connection_from_file(write(tmp_path / "conn.json", "{nope"))


def test_it_rejects_a_missing_connection_file(tmp_path: Path) -> None:
    with pytest.raises(AzureError, match="cannot read"):
        connection_from_file(tmp_path / "absent.json")


def account(**overrides: Any) -> AutomationAccount:
    fields = {
        "name": "ops",
        "subscription_id": "sub-1",
        "resource_group": "rg-1",
        "automation_account": "aa-1",
        "workspace_id": "ws-9",
        "arm_endpoint": "https://arm.example",
        "logs_endpoint": "https://logs.example",
        "logs_audience": "https://api.loganalytics.io",
        "authority_host": "",
        "ca_bundle": "",
        "credential_file": "",
    }
    fields.update(overrides)
    return AutomationAccount(**fields)


def test_it_takes_endpoints_and_ids_from_the_account_row() -> None:
    conn = connection_from_account(account())
    assert (conn.subscription_id, conn.resource_group, conn.automation_account, conn.workspace_id) == ("sub-1", "rg-1", "aa-1", "ws-9")
    assert (conn.arm_endpoint, conn.logs_endpoint) == ("https://arm.example", "https://logs.example")


def test_it_leaves_credentials_to_the_environment_without_a_credential_file() -> None:
    conn = connection_from_account(account())
    assert (conn.tenant_id, conn.client_id, conn.client_secret) == ("", "", "")


def test_it_reads_tenant_client_and_secret_from_the_credential_file(tmp_path: Path) -> None:
    path = write(tmp_path / "conn.json", CONNECTION)
    conn = connection_from_account(account(credential_file=str(path)))
    assert (conn.tenant_id, conn.client_id, conn.client_secret) == ("tenant-1", "client-1", "s3cret")
    assert conn.arm_endpoint == "https://arm.example"


def test_it_never_shows_the_secret_in_the_settings_repr() -> None:
    conn = ConnectionSettings(subscription_id="s", resource_group="r", automation_account="a", client_secret="s3cret")
    assert "s3cret" not in repr(conn)


def test_it_uses_a_client_secret_credential_when_the_connection_has_a_secret(tmp_path: Path) -> None:
    with AzureClient(connection_from_file(write(tmp_path / "conn.json", CONNECTION))) as client:
        assert isinstance(client._get_credential(), ClientSecretCredential)


def test_it_uses_the_default_credential_chain_without_a_secret() -> None:
    with AzureClient(connection_from_account(account())) as client:
        assert isinstance(client._get_credential(), DefaultAzureCredential)


def test_it_reuses_one_credential_per_client() -> None:
    with AzureClient(connection_from_account(account())) as client:
        assert client._get_credential() is client._get_credential()
