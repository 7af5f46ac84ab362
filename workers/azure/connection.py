"""How to reach one Automation account: connection settings, connection files, and the keyword
arguments (timeouts, CA bundle, retries, authority) the client hands to the SDK.

Everything here is plain data, so it needs no Azure SDK import; ``workers.azure.client`` turns it
into SDK clients. Credentials never live in the database: they come from an emulator connection
file or, for real Azure, from ``AZURE_*`` in the environment (read by ``DefaultAzureCredential``).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings

from workers.azure.errors import AzureError

# The SDK sleeps a Retry-After verbatim, with no cap. A poll runs inside a Celery task with a soft
# time limit, so a long Retry-After is not slept here: the request fails at once with
# AzureTransientError(retry_after=...) and the task reschedules itself instead.
RETRY_AFTER_CAP_SECONDS = 10.0
# Exponential backoff between our own retries stays short for the same reason.
RETRY_BACKOFF_FACTOR = 0.5
RETRY_BACKOFF_MAX_SECONDS = 4.0


@dataclass(frozen=True)
class ConnectionSettings:
    """Everything needed to reach one Automation account and its workspace."""

    subscription_id: str
    resource_group: str
    automation_account: str
    workspace_id: str = ""
    arm_endpoint: str = "https://management.azure.com"
    logs_endpoint: str = "https://api.loganalytics.io"
    logs_audience: str = "https://api.loganalytics.io"
    authority_host: str = ""
    ca_bundle: str = ""
    # Only for the emulator / client-secret auth; otherwise DefaultAzureCredential reads the env.
    tenant_id: str = ""
    client_id: str = ""
    client_secret: str = field(default="", repr=False)
    connect_timeout: float = 10.0
    read_timeout: float = 60.0
    retry_total: int = 2


# --- connection files ------------------------------------------------------------------------


class ConnectionFileError(ValueError):
    """An emulator connection file cannot be read or does not hold a JSON object."""


def read_connection_file(path: Path) -> dict[str, Any]:
    """The JSON object in an emulator connection file (``--connection-file``).

    Shared by ``connection_from_file`` / ``connection_from_account`` (endpoints and credentials at
    poll time) and ``workers.fleet.accounts`` (registering the account) so both judge a file alike.
    It only reads, so it is safe to call any number of times. Raises ConnectionFileError with the reason.
    """
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConnectionFileError(f"cannot read connection file {path}: {exc.strerror or exc}") from exc
    except ValueError as exc:
        raise ConnectionFileError(f"connection file {path} is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ConnectionFileError(f"connection file {path} must hold a JSON object")
    return data


def resolve_ca_path(value: str, base: Path) -> str:
    """A relative CA path in a connection file is relative to the file's folder ``base``, not to the cwd."""
    if not value:
        return ""
    p = Path(value)
    return str(p if p.is_absolute() else (base / p).resolve())


_CONNECTION_KEYS = (
    "subscription_id",
    "resource_group",
    "automation_account",
    "workspace_id",
    "arm_endpoint",
    "logs_endpoint",
    "logs_audience",
    "authority_host",
    "ca_bundle",
    "tenant_id",
    "client_id",
    "client_secret",
)


def _timeouts_from_settings() -> dict[str, Any]:
    """AZURE_CONNECT_TIMEOUT / AZURE_READ_TIMEOUT / AZURE_RETRY_TOTAL as ConnectionSettings fields."""
    return {
        "connect_timeout": float(settings.AZURE_CONNECT_TIMEOUT),
        "read_timeout": float(settings.AZURE_READ_TIMEOUT),
        "retry_total": int(settings.AZURE_RETRY_TOTAL),
    }


def _read_json_file(path: Path) -> dict[str, Any]:
    """The connection file's JSON object; a bad file is an AzureError like any other bad input here."""
    try:
        return read_connection_file(path)
    except ConnectionFileError as exc:
        raise AzureError(str(exc)) from exc


def connection_from_file(path: str | Path) -> ConnectionSettings:
    """Read an emulator connection JSON file (the emulator's ``--connection-file``).

    Keys: arm_endpoint, logs_endpoint, authority_host, ca_bundle, tenant_id, client_id,
    client_secret, subscription_id, resource_group, automation_account, workspace_id (and optionally
    logs_audience). Timeouts and retries come from settings.
    """
    path = Path(path)
    data = _read_json_file(path)
    missing = [k for k in ("subscription_id", "resource_group", "automation_account") if not data.get(k)]
    if missing:
        raise AzureError(f"connection file {path} lacks {', '.join(missing)}")
    values: dict[str, Any] = {k: str(data[k]) for k in _CONNECTION_KEYS if data.get(k) not in (None, "")}
    values["ca_bundle"] = resolve_ca_path(values.get("ca_bundle", ""), path.parent)
    values.update(_timeouts_from_settings())
    return ConnectionSettings(**values)


def connection_from_account(account: Any) -> ConnectionSettings:
    """Connection settings for a ``workers.models.AutomationAccount`` row.

    Endpoints and ids come from the row. Credentials never live in the database: if
    ``account.credential_file`` is set, tenant/client/secret are read from that file; otherwise they
    stay empty and ``DefaultAzureCredential`` reads ``AZURE_*`` from the environment.
    """
    tenant = client = secret = ""
    credential_file = str(getattr(account, "credential_file", "") or "")
    if credential_file:
        data = _read_json_file(Path(credential_file))
        tenant = str(data.get("tenant_id") or "")
        client = str(data.get("client_id") or "")
        secret = str(data.get("client_secret") or "")
    defaults = ConnectionSettings(subscription_id="", resource_group="", automation_account="")
    return ConnectionSettings(
        subscription_id=account.subscription_id,
        resource_group=account.resource_group,
        automation_account=account.automation_account,
        workspace_id=account.workspace_id or "",
        arm_endpoint=account.arm_endpoint or defaults.arm_endpoint,
        logs_endpoint=account.logs_endpoint or defaults.logs_endpoint,
        logs_audience=account.logs_audience or defaults.logs_audience,
        authority_host=account.authority_host or "",
        ca_bundle=account.ca_bundle or "",
        tenant_id=tenant,
        client_id=client,
        client_secret=secret,
        **_timeouts_from_settings(),
    )


# --- what the SDK clients are built with -----------------------------------------------------


def transport_kwargs(conn: ConnectionSettings, transport: Any = None) -> dict[str, Any]:
    """Timeouts, the CA bundle and (tests only) a replacement transport, for every SDK client."""
    kwargs: dict[str, Any] = {
        "connection_timeout": conn.connect_timeout,
        "read_timeout": conn.read_timeout,
    }
    if transport is not None:
        kwargs["transport"] = transport
    if conn.ca_bundle:
        # Explicit: never rely on REQUESTS_CA_BUNDLE, which a CI box may point elsewhere.
        kwargs["connection_verify"] = conn.ca_bundle
    return kwargs


def retry_kwargs(conn: ConnectionSettings) -> dict[str, Any]:
    """Bounded retries for the ARM and Logs clients: a long Retry-After is not slept (see the cap)."""
    return {
        "max_retry_after": RETRY_AFTER_CAP_SECONDS,
        "retry_total": conn.retry_total,
        "retry_backoff_factor": RETRY_BACKOFF_FACTOR,
        "retry_backoff_max": RETRY_BACKOFF_MAX_SECONDS,
    }


def credential_kwargs(conn: ConnectionSettings, transport: Any = None) -> dict[str, Any]:
    """Keyword arguments for the azure-identity credential: authority, bounded retries, transport."""
    authority = conn.authority_host or None
    kwargs: dict[str, Any] = {
        "disable_instance_discovery": bool(authority),
        # Token requests get the same bounded retries as the clients.
        "retry_total": conn.retry_total,
        "retry_backoff_factor": RETRY_BACKOFF_FACTOR,
        "retry_backoff_max": RETRY_BACKOFF_MAX_SECONDS,
        **transport_kwargs(conn, transport),
    }
    if authority:
        kwargs["authority"] = authority
    return kwargs
