"""Small frozen records that cross the Azure boundary, and our own error types.

``workers/azure.py`` (the only SDK importer) builds these from SDK results; services and the
emulator's tests consume them. Nothing here imports an Azure SDK.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any


class AzureError(Exception):
    """Azure answered with something we cannot use (auth, not found, bad request, bad body)."""


class AzureTransientError(AzureError):
    """Worth retrying later: 429, 5xx, timeouts, connection errors. ``retry_after`` in seconds if known."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def finite_float(value: Any) -> float | None:
    """A finite float, or None for null/'None'/NaN/infinite/booleans/non-numeric text.

    Azure's Perf columns can carry any of those; the adapter parses with it and ingest re-checks
    with it before writing, so a bad number becomes "no sample" rather than a failed batch.
    """
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


class ConnectionFileError(ValueError):
    """An emulator connection file cannot be read or does not hold a JSON object."""


def read_connection_file(path: Path) -> dict[str, Any]:
    """The JSON object in an emulator connection file (``--connection-file``).

    Shared by ``workers.azure.client`` (endpoints and credentials at poll time) and
    ``workers.fleet.accounts`` (registering the account) so both judge a file alike. It only
    reads, so it is safe to call any number of times. Raises ConnectionFileError with the reason.
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


@dataclass(frozen=True)
class GroupRecord:
    azure_id: str  # lower-cased ARM id
    name: str
    group_type: str  # "User" / "System" / unknown strings kept


@dataclass(frozen=True)
class WorkerRecord:
    azure_id: str  # lower-cased ARM id
    worker_id: str  # resource name (GUID)
    group_name: str
    name: str  # workerName
    ip: str
    registered_at: datetime | None
    last_seen_at: datetime | None
    worker_type: str  # "HybridV1" / "HybridV2" / unknown strings kept
    vm_resource_id: str


@dataclass(frozen=True)
class JobRecord:
    job_id: str
    runbook: str
    status: str  # open set
    run_on: str  # group name, "" = sandbox
    started_by: str
    provisioning_state: str
    created_at: datetime
    started_at: datetime | None
    ended_at: datetime | None
    last_modified_at: datetime | None
    exception: str = ""


@dataclass(frozen=True)
class HeartbeatRecord:
    computer: str
    time_generated: datetime
    version: str
    os_type: str
    category: str
    computer_ip: str
    resource_id: str = ""


@dataclass(frozen=True)
class UtilizationRecord:
    """One per computer per minute; either value may be missing."""

    computer: str
    ts: datetime  # minute bucket (UTC)
    cpu_pct: float | None
    mem_pct: float | None


@dataclass(frozen=True)
class AgentEventRecord:
    """Event 4502 occurrences per computer in the window (TLS interception)."""

    computer: str
    event_id: int
    count: int
    first_at: datetime
    last_at: datetime
    message: str = ""


@dataclass(frozen=True)
class LogsResult:
    """Rows from one Log Analytics query, and the partial error if the service reported one."""

    rows: tuple
    partial_error: str | None = None
