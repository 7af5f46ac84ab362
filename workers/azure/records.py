"""The small frozen records that cross the Azure boundary.

``workers.azure.parse`` builds them from SDK/wire results, ``workers.azure.client`` returns them,
services and the emulator's tests consume them. Nothing here imports an Azure SDK.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


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
    resource_id: str = ""  # the machine's _ResourceId (lower case as Log Analytics reports it), when known


@dataclass(frozen=True)
class UtilizationHourRecord:
    """One per computer per hour: the mean and maximum of its one-minute values, and how many minutes."""

    computer: str
    hour: datetime  # hour bucket (UTC)
    cpu_avg: float | None
    cpu_max: float | None
    mem_avg: float | None
    mem_max: float | None
    minutes: int


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


@dataclass(frozen=True)
class MachineRecord:
    """What ARM says of the machine behind a V2 worker (``workers.azure.machines``)."""

    resource_id: str  # lower-cased vmResourceId
    kind: str  # "arc" | "azure_vm"
    status: str  # Arc: Connected / Disconnected / Expired / Error; VM: running / stopped / deallocated / ...
    status_changed_at: datetime | None  # Arc lastStatusChange; None for a VM (ARM gives no power-state time)
    extension_state: str  # the Hybrid Worker extension's provisioning state; "Missing" when there is none
    extension_message: str


@dataclass(frozen=True)
class PingRecord:
    """The latest minute in which Azure Monitor's ``HybridWorkerPing`` counted pings of one worker
    (``workers.azure.metrics``): the value of the metric's ``HybridWorker`` dimension, as sent."""

    worker: str  # the HybridWorker dimension value (the worker's machine name, as Azure Monitor reports it)
    last_ping_at: datetime  # start of the latest one-minute bucket with pings
    pings: float  # pings counted in that minute (the metric's total)


@dataclass(frozen=True)
class JobStreamRecord:
    """One entry of a job's streams (Output, Error, Warning, Verbose, Progress...): its summary only."""

    stream_id: str
    time: datetime | None
    stream_type: str
    summary: str
