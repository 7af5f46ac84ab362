"""The Azure adapter: the ONLY module in the project that imports an Azure SDK.

It reads one Automation account (worker groups, workers, jobs) through ``azure-mgmt-automation``
and its Log Analytics workspace (heartbeats, CPU/memory, agent events) through
``azure-monitor-query``, authenticated by ``azure-identity``. It returns the small frozen records
of ``workers.azure.records`` and raises only our own errors:

* ``AzureTransientError`` -- worth retrying later: 408, 429, 5xx, timeouts, connection errors
  (``retry_after`` carries the service's ``Retry-After`` when there was one);
* ``AzureError`` -- retrying will not help: 400/401/403/404, authentication failures, bodies we
  cannot decode.

Nothing here writes anywhere, so every call is safe to repeat. A list that fails on any page raises
and returns nothing, so callers never mistake half a fleet for the whole fleet.

Untrusted strings (names from Azure or from users) reach queries only through ``kql_string`` (KQL)
and ``odata_string`` (``$filter``); datetimes only through ``kql_datetime`` / ``odata_datetime``,
which accept ``datetime`` objects, never text.
"""
from __future__ import annotations

import logging
import ssl
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import requests
from azure.core.exceptions import AzureError as _SdkAzureError
from azure.core.exceptions import (
    ClientAuthenticationError,
    DecodeError,
    HttpResponseError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.core.pipeline import PipelineResponse
from azure.core.pipeline.policies import RetryPolicy
from azure.identity import ClientSecretCredential, DefaultAzureCredential
from azure.mgmt.automation import AutomationClient
from azure.monitor.query import LogsQueryClient, LogsQueryPartialResult

from workers.azure.records import (
    AgentEventRecord,
    AzureError,
    AzureTransientError,
    ConnectionFileError,
    ConnectionSettings,
    GroupRecord,
    HeartbeatRecord,
    JobRecord,
    LogsResult,
    UtilizationRecord,
    WorkerRecord,
    finite_float,
    read_connection_file,
    resolve_ca_path,
)

__all__ = [
    "AgentEventRecord",
    "AzureClient",
    "AzureError",
    "AzureTransientError",
    "ConnectionSettings",
    "GroupRecord",
    "HeartbeatRecord",
    "JobRecord",
    "LogsResult",
    "UtilizationRecord",
    "WorkerRecord",
    "connection_from_account",
    "connection_from_file",
    "kql_datetime",
    "kql_string",
    "odata_datetime",
    "odata_string",
]

logger = logging.getLogger(__name__)

T = TypeVar("T")

# The SDK sleeps a Retry-After verbatim, with no cap. A poll runs inside a Celery task with a soft
# time limit, so a long Retry-After is not slept here: the request fails at once with
# AzureTransientError(retry_after=...) and the task reschedules itself instead.
RETRY_AFTER_CAP_SECONDS = 10.0
# Exponential backoff between our own retries stays short for the same reason.
RETRY_BACKOFF_FACTOR = 0.5
RETRY_BACKOFF_MAX_SECONDS = 4.0

# Status codes worth retrying later (the SDK has already retried them retry_total times).
_TRANSIENT_STATUS = frozenset({408, 429})

# --- Log Analytics vocabulary (constants: the only text a query is built from) ---------------
CPU_COUNTER = "% Processor Time"
CPU_OBJECTS = ("Processor", "Processor Information")  # legacy agent / Azure Monitor Agent on Windows
CPU_INSTANCES = ("_Total", "total")  # "total": AMA spelling on Linux
MEMORY_OBJECT = "Memory"
MEMORY_USED_PCT_COUNTERS = ("% Committed Bytes In Use", "% Used Memory")  # Windows / Linux
MEMORY_AVAILABLE_PCT_COUNTER = "% Available Memory"  # Linux: a percentage, so the total is implied
AGENT_EVENT_LOG = "Operations Manager"
AGENT_EVENT_ID = 4502  # TLS interception: certificate not issued by a Microsoft CA


# =============================================================================================
# Connection settings
# =============================================================================================

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
    """AZURE_CONNECT_TIMEOUT / AZURE_READ_TIMEOUT / AZURE_RETRY_TOTAL, or the record defaults."""
    try:
        from django.conf import settings
    except ImportError:  # pragma: no cover - Django is a hard dependency of the project
        return {}
    if not settings.configured:
        return {}
    values: dict[str, Any] = {}
    for name, key, cast in (
        ("AZURE_CONNECT_TIMEOUT", "connect_timeout", float),
        ("AZURE_READ_TIMEOUT", "read_timeout", float),
        ("AZURE_RETRY_TOTAL", "retry_total", int),
    ):
        value = getattr(settings, name, None)
        if value is not None:
            values[key] = cast(value)
    return values


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


# =============================================================================================
# Query text: the only doors through which values enter KQL and OData
# =============================================================================================

_KQL_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def kql_string(value: str) -> str:
    """``value`` as a double-quoted KQL string literal.

    Uses only the escapes Kusto documents for string literals (backslash, the enclosing quote, ``\\n``,
    ``\\r``, ``\\t``). Inside a literal, ``|``, ``//``, ``'`` and keywords are plain text. Other control
    characters have no documented escape, so a value holding one is refused (``ValueError``) rather
    than guessed at; callers skip such a name with a warning.
    """
    if not isinstance(value, str):
        raise TypeError("kql_string() takes a str")
    out: list[str] = []
    for ch in value:
        if ch in _KQL_ESCAPES:
            out.append(_KQL_ESCAPES[ch])
        elif ord(ch) < 0x20 or ord(ch) == 0x7F or ch in "\u2028\u2029":
            raise ValueError(f"control character U+{ord(ch):04X} cannot be written in a KQL literal")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _utc(value: datetime) -> datetime:
    """Aware UTC. A naive datetime is taken to be UTC already (the project runs with TIME_ZONE=UTC)."""
    if not isinstance(value, datetime):
        raise TypeError("expected a datetime")
    if value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)


def _seven_digit(value: datetime) -> str:
    v = _utc(value)
    return v.strftime("%Y-%m-%dT%H:%M:%S.") + f"{v.microsecond:06d}0"


def kql_datetime(value: datetime) -> str:
    """``datetime(2026-11-20T12:00:00.0000000Z)``, built from a datetime object only."""
    return f"datetime({_seven_digit(value)}Z)"


def odata_string(value: str) -> str:
    """An OData string literal: single quotes, an embedded quote doubled."""
    if not isinstance(value, str):
        raise TypeError("odata_string() takes a str")
    return "'" + value.replace("'", "''") + "'"


def odata_datetime(value: datetime) -> str:
    """The form Az PowerShell sends (.NET ``{0:O}`` in UTC): ``2024-05-02T10:00:00.0000000+00:00``."""
    return _seven_digit(value) + "+00:00"


def jobs_filters(
    *, since: datetime, until: datetime | None = None, status: str | None = None, run_on: str | None = None
) -> list[str]:
    """The two ``$filter`` values whose union is "jobs created OR last modified in [since, until)".

    The service's filter grammar (as Az PowerShell uses it) joins clauses with ``and`` only, so the
    OR is two queries merged by job id.
    """
    out = []
    for field in ("creationTime", "lastModifiedTime"):
        clauses = [f"properties/{field} ge {odata_datetime(since)}"]
        if until is not None:
            clauses.append(f"properties/{field} lt {odata_datetime(until)}")
        if status:
            clauses.append(f"properties/status eq {odata_string(status)}")
        if run_on:
            clauses.append(f"properties/runOn eq {odata_string(run_on)}")
        out.append(" and ".join(clauses))
    return out


def _computer_clause(computers: Sequence[str] | None) -> str | None:
    """``| where Computer in (...)``, or None for "every computer".

    Names that cannot be written as a literal are skipped with a warning; if nothing is left the
    caller must not query at all (an empty list must never widen to "every computer").
    """
    if computers is None:
        return None
    literals: list[str] = []
    seen: set[str] = set()
    for name in computers:
        if name in seen:
            continue
        seen.add(name)
        try:
            literals.append(kql_string(name))
        except (TypeError, ValueError) as exc:
            logger.warning("skipping computer name %r in a Log Analytics query: %s", name, exc)
    if not literals:
        return ""
    return "| where Computer in (" + ", ".join(literals) + ")"


def _window_clause(start: datetime, end: datetime) -> str:
    return f"| where TimeGenerated >= {kql_datetime(start)} and TimeGenerated < {kql_datetime(end)}"


def _tuple(values: Iterable[str]) -> str:
    return "(" + ", ".join(kql_string(v) for v in values) + ")"


def _assemble(lines: Iterable[str | None]) -> str:
    return "\n".join(line for line in lines if line)


def heartbeat_query(start: datetime, end: datetime, computers: Sequence[str] | None = None) -> str | None:
    """Latest Heartbeat per computer in [start, end). None when ``computers`` leaves nothing to ask."""
    where_computer = _computer_clause(computers)
    if where_computer == "":
        return None
    return _assemble(
        [
            "Heartbeat",
            _window_clause(start, end),
            where_computer,
            "| summarize arg_max(TimeGenerated, Version, OSType, Category, ComputerIP, _ResourceId) by Computer",
            "| project Computer, TimeGenerated, Version, OSType, Category, ComputerIP, _ResourceId",
        ]
    )


def utilization_query(start: datetime, end: datetime, computers: Sequence[str] | None = None) -> str | None:
    """CPU and memory per computer per minute in [start, end).

    CPU: ``% Processor Time`` of object Processor or Processor Information, instance _Total/total.
    Memory used %: ``% Committed Bytes In Use`` (Windows) or ``% Used Memory`` (Linux); failing both,
    100 - ``% Available Memory`` (Linux, a percentage). ``Available MBytes``/``Available Bytes``/
    ``Available MBytes Memory`` are absolute, and Perf carries no total memory to divide by, so
    they are not turned into a percentage (mem_pct stays None rather than guessed).
    """
    where_computer = _computer_clause(computers)
    if where_computer == "":
        return None
    memory_counters = MEMORY_USED_PCT_COUNTERS + (MEMORY_AVAILABLE_PCT_COUNTER,)
    return _assemble(
        [
            "Perf",
            _window_clause(start, end),
            where_computer,
            f"| where (CounterName == {kql_string(CPU_COUNTER)} and ObjectName in {_tuple(CPU_OBJECTS)}"
            f" and InstanceName in {_tuple(CPU_INSTANCES)})"
            f" or (ObjectName == {kql_string(MEMORY_OBJECT)} and CounterName in {_tuple(memory_counters)})",
            f"| summarize CpuPct = avgif(CounterValue, CounterName == {kql_string(CPU_COUNTER)}),"
            f" MemUsedPct = avgif(CounterValue, CounterName in {_tuple(MEMORY_USED_PCT_COUNTERS)}),"
            f" MemAvailablePct = avgif(CounterValue, CounterName == {kql_string(MEMORY_AVAILABLE_PCT_COUNTER)})"
            " by Computer, TimeGenerated = bin(TimeGenerated, 1m)",
            "| project Computer, TimeGenerated, CpuPct, MemUsedPct, MemAvailablePct",
        ]
    )


def agent_events_query(start: datetime, end: datetime, computers: Sequence[str] | None = None) -> str | None:
    """Event 4502 (Operations Manager log) per computer in [start, end): count, first, last, one message."""
    where_computer = _computer_clause(computers)
    if where_computer == "":
        return None
    return _assemble(
        [
            "Event",
            _window_clause(start, end),
            f"| where EventLog == {kql_string(AGENT_EVENT_LOG)} and EventID == {AGENT_EVENT_ID}",
            where_computer,
            "| summarize EventCount = count(), FirstAt = min(TimeGenerated), LastAt = max(TimeGenerated),"
            " Message = take_any(RenderedDescription) by Computer",
            "| project Computer, EventCount, FirstAt, LastAt, Message",
        ]
    )


# =============================================================================================
# Parsing: wire values -> records (one bad row is dropped and logged, never the whole list)
# =============================================================================================


class _BadRow(ValueError):
    """One row that cannot become a record."""


def _text(value: Any) -> str:
    """Cell/field text: None, the string 'None' (what the Logs client makes of null) and '' mean empty."""
    if value is None:
        return ""
    text = str(value)
    return "" if text == "None" else text


def parse_datetime(value: Any) -> datetime | None:
    """An aware UTC datetime from an SDK/wire value; None for empty; ``_BadRow`` if malformed.

    Accepts datetime objects and ISO 8601 text with Z or an offset and 0-7 fractional digits.
    """
    if isinstance(value, datetime):
        return _utc(value)
    text = _text(value).strip()
    if not text:
        return None
    candidate = text[:-1] + "+00:00" if text[-1:] in "Zz" else text
    if "." in candidate:
        head, _, tail = candidate.partition(".")
        digits = ""
        rest = tail
        while rest[:1].isdigit():
            digits, rest = digits + rest[0], rest[1:]
        if not digits:
            raise _BadRow(f"malformed datetime {text!r}")
        candidate = f"{head}.{digits[:6].ljust(6, '0')}{rest}"
    try:
        parsed = datetime.fromisoformat(candidate)
    except ValueError as exc:
        raise _BadRow(f"malformed datetime {text!r}") from exc
    return _utc(parsed)


def _get(mapping: Any, *path: str) -> Any:
    """``mapping[path[0]][path[1]]...`` tolerating missing keys and non-mapping values."""
    current = mapping
    for key in path:
        if not isinstance(current, Mapping):
            return None
        current = current.get(key)
    return current


def parse_group(raw: Mapping[str, Any]) -> GroupRecord:
    name = _text(_get(raw, "name"))
    azure_id = _text(_get(raw, "id")).lower()
    if not name or not azure_id:
        raise _BadRow("worker group without a name or id")
    return GroupRecord(azure_id=azure_id, name=name, group_type=_text(_get(raw, "properties", "groupType")))


def parse_worker(raw: Mapping[str, Any], group_name: str) -> WorkerRecord:
    worker_id = _text(_get(raw, "name"))
    azure_id = _text(_get(raw, "id")).lower()
    if not worker_id or not azure_id:
        raise _BadRow("hybrid worker without a name or id")
    props = _get(raw, "properties") or {}
    return WorkerRecord(
        azure_id=azure_id,
        worker_id=worker_id,
        group_name=group_name,
        name=_text(_get(props, "workerName")),
        ip=_text(_get(props, "ip")),
        registered_at=parse_datetime(_get(props, "registeredDateTime")),
        last_seen_at=parse_datetime(_get(props, "lastSeenDateTime")),
        worker_type=_text(_get(props, "workerType")),
        vm_resource_id=_text(_get(props, "vmResourceId")),
    )


def parse_job(raw: Mapping[str, Any]) -> JobRecord:
    props = _get(raw, "properties") or {}
    job_id = _text(_get(props, "jobId")) or _text(_get(raw, "name"))
    if not job_id:
        raise _BadRow("job without an id")
    created_at = parse_datetime(_get(props, "creationTime"))
    if created_at is None:
        raise _BadRow(f"job {job_id} has no creationTime")
    return JobRecord(
        job_id=job_id.lower(),
        runbook=_text(_get(props, "runbook", "name")),
        status=_text(_get(props, "status")),
        run_on=_text(_get(props, "runOn")),
        started_by=_text(_get(props, "startedBy")),
        provisioning_state=_text(_get(props, "provisioningState")),
        created_at=created_at,
        started_at=parse_datetime(_get(props, "startTime")),
        ended_at=parse_datetime(_get(props, "endTime")),
        last_modified_at=parse_datetime(_get(props, "lastModifiedTime")),
        exception=_text(_get(props, "exception")),
    )


def _raw(item: Any) -> Mapping[str, Any]:
    """The wire-shaped mapping behind an SDK model (hybrid models are Mappings of wire names)."""
    if isinstance(item, Mapping):
        return item
    as_dict = getattr(item, "as_dict", None)
    if callable(as_dict):
        return as_dict()
    raise _BadRow(f"unexpected item type {type(item).__name__}")


def _parse_rows(items: Iterable[Any], parse: Callable[[Any], T], what: str) -> list[T]:
    """Parse each item; a bad one is logged and skipped (one bad row never sinks the rest)."""
    out: list[T] = []
    for item in items:
        try:
            out.append(parse(item))
        except _BadRow as exc:
            logger.warning("skipping a %s row from Azure: %s", what, exc)
    return out


class _Row:
    """Column access by name over a Log Analytics row (LogsTableRow or a plain list)."""

    __slots__ = ("_index", "_values")

    def __init__(self, index: Mapping[str, int], values: Sequence[Any]) -> None:
        self._index = index
        self._values = values

    def __getitem__(self, name: str) -> Any:
        position = self._index.get(name)
        if position is None or position >= len(self._values):
            return None
        return self._values[position]


def _table_rows(tables: Sequence[Any] | None) -> Iterator[_Row]:
    if not tables:
        return
    table = tables[0]
    index = {name: i for i, name in enumerate(getattr(table, "columns", None) or [])}
    for row in getattr(table, "rows", None) or []:
        yield _Row(index, list(row))


def parse_heartbeat_row(row: _Row) -> HeartbeatRecord:
    computer = _text(row["Computer"])
    time_generated = parse_datetime(row["TimeGenerated"])
    if not computer or time_generated is None:
        raise _BadRow("heartbeat row without Computer or TimeGenerated")
    return HeartbeatRecord(
        computer=computer,
        time_generated=time_generated,
        version=_text(row["Version"]),
        os_type=_text(row["OSType"]),
        category=_text(row["Category"]),
        computer_ip=_text(row["ComputerIP"]),
        resource_id=_text(row["_ResourceId"]),
    )


def parse_utilization_row(row: _Row) -> UtilizationRecord:
    computer = _text(row["Computer"])
    ts = parse_datetime(row["TimeGenerated"])
    if not computer or ts is None:
        raise _BadRow("Perf row without Computer or TimeGenerated")
    mem = finite_float(row["MemUsedPct"])
    if mem is None:
        available = finite_float(row["MemAvailablePct"])
        mem = None if available is None else 100.0 - available
    return UtilizationRecord(computer=computer, ts=ts, cpu_pct=finite_float(row["CpuPct"]), mem_pct=mem)


def parse_agent_event_row(row: _Row) -> AgentEventRecord:
    computer = _text(row["Computer"])
    first_at = parse_datetime(row["FirstAt"])
    last_at = parse_datetime(row["LastAt"])
    count = finite_float(row["EventCount"])
    if not computer or first_at is None or last_at is None or count is None:
        raise _BadRow("event row without Computer, EventCount, FirstAt or LastAt")
    return AgentEventRecord(
        computer=computer,
        event_id=AGENT_EVENT_ID,
        count=int(count),
        first_at=first_at,
        last_at=last_at,
        message=_text(row["Message"]),
    )


# =============================================================================================
# Errors
# =============================================================================================


class _LastStatus:
    """A ``raw_response_hook`` remembering the last HTTP status of one call (all pages, all retries).

    The Logs client lets ``json.JSONDecodeError`` escape for a non-JSON error body; the status tells
    a transient HTML 502 apart from a malformed 200.
    """

    def __init__(self) -> None:
        self.status: int | None = None
        self.retry_after: float | None = None

    def __call__(self, response: PipelineResponse) -> None:
        http = response.http_response
        self.status = http.status_code
        self.retry_after = _retry_after_header(http.headers)


def _retry_after_header(headers: Mapping[str, str] | None) -> float | None:
    if not headers:
        return None
    for name, scale in (("retry-after-ms", 0.001), ("x-ms-retry-after-ms", 0.001), ("Retry-After", 1.0)):
        value = headers.get(name)
        if value:
            try:
                return max(0.0, float(value) * scale)
            except ValueError:
                continue
    return None


def _is_transient_status(status: int | None) -> bool:
    return status is not None and (status in _TRANSIENT_STATUS or status >= 500)


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """The exceptions ``exc`` was raised from (``__cause__`` / ``__context__``), nearest first."""
    seen = {id(exc)}
    current = exc.__cause__ or exc.__context__
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _tls_untrusted(exc: BaseException) -> bool:
    """Did the TLS handshake fail (certificate not trusted)? Retrying cannot fix that: ca_bundle can."""
    for err in (exc, *_causes(exc)):
        for candidate in (err, getattr(err, "inner_exception", None)):
            if isinstance(candidate, ssl.SSLCertVerificationError):
                return True
            # requests keeps the ssl error only as text inside its own SSLError; a dropped
            # connection mid-handshake (EOF, reset) is an SSLError too, and stays transient.
            if isinstance(candidate, requests.exceptions.SSLError) and "CERTIFICATE_VERIFY_FAILED" in str(candidate):
                return True
    return False


def _map_error(exc: BaseException, what: str, hook: _LastStatus | None = None) -> AzureError:
    """Our error for any exception raised while talking to Azure."""
    if isinstance(exc, AzureError):  # ours already
        return exc
    if _tls_untrusted(exc):
        return AzureError(f"{what}: the TLS certificate was not trusted; check the CA bundle ({_short(exc)})")
    if isinstance(exc, DecodeError):
        return AzureError(f"{what}: Azure sent a body that could not be decoded ({_short(exc)})")
    if isinstance(exc, ClientAuthenticationError):
        # azure-identity reports an unreachable or failing token endpoint as an authentication
        # error too; that is an outage, not a wrong secret.
        status = getattr(getattr(exc, "response", None), "status_code", None)
        if _is_transient_status(status) or any(
            isinstance(cause, (ServiceRequestError, ServiceResponseError, OSError)) for cause in _causes(exc)
        ):
            return AzureTransientError(f"{what}: the token endpoint could not be reached ({_short(exc)})")
        return AzureError(f"{what}: authentication failed ({_short(exc)})")
    if isinstance(exc, HttpResponseError):
        status = exc.status_code
        response = getattr(exc, "response", None)
        retry_after = _retry_after_header(getattr(response, "headers", None))
        if status is None and hook is not None:
            status = hook.status
        if _is_transient_status(status):
            return AzureTransientError(f"{what}: HTTP {status} ({_short(exc)})", retry_after=retry_after)
        return AzureError(f"{what}: HTTP {status} ({_short(exc)})")
    if isinstance(exc, (ServiceRequestError, ServiceResponseError)):
        return AzureTransientError(f"{what}: connection failed ({type(exc).__name__}: {_short(exc)})")
    if isinstance(exc, _SdkAzureError):
        return AzureError(f"{what}: {type(exc).__name__}: {_short(exc)}")
    if isinstance(exc, ValueError):  # json.JSONDecodeError and friends from the Logs client
        status = hook.status if hook else None
        if _is_transient_status(status):
            return AzureTransientError(
                f"{what}: HTTP {status} with a non-JSON body", retry_after=hook.retry_after if hook else None
            )
        return AzureError(f"{what}: Azure sent a malformed body ({_short(exc)})")
    if isinstance(exc, OSError):
        return AzureTransientError(f"{what}: connection failed ({_short(exc)})")
    return AzureError(f"{what}: unexpected {type(exc).__name__}: {_short(exc)}")


# Exceptions the boundary converts. Anything else is a bug in this module and should be seen.
_CONVERTED = (_SdkAzureError, ValueError, OSError, TypeError, KeyError, AttributeError)


class _CappedRetryPolicy(RetryPolicy):
    """The SDK's retry policy, except that a Retry-After longer than the cap is not slept."""

    def __init__(self, *, max_retry_after: float, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._max_retry_after = max_retry_after

    def is_retry(self, settings: dict[str, Any], response: PipelineResponse) -> bool:
        retry_after = self.get_retry_after(response)
        if retry_after is not None and retry_after > self._max_retry_after:
            return False
        return super().is_retry(settings, response)


# =============================================================================================
# The client
# =============================================================================================


class AzureClient:
    """Reads one Automation account and its Log Analytics workspace.

    SDK clients are created on first use and reused. Read-only: every method is safe to call again.
    Use as a context manager, or call ``close()``.
    """

    def __init__(self, conn: ConnectionSettings, *, credential: Any = None, transport: Any = None) -> None:
        """``credential`` / ``transport`` override azure-identity / the requests transport; only the
        wire-format fixture tests use them (a real SDK pipeline over an in-process transport)."""
        self.conn = conn
        self._credential: Any = credential
        self._transport = transport
        self._automation: AutomationClient | None = None
        self._logs: LogsQueryClient | None = None
        # Lazy creation under a lock: a cached client may be shared by threads of one worker process.
        self._lock = threading.RLock()

    # --- plumbing ------------------------------------------------------------------------------

    def _transport_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "connection_timeout": self.conn.connect_timeout,
            "read_timeout": self.conn.read_timeout,
        }
        if self._transport is not None:
            kwargs["transport"] = self._transport
        if self.conn.ca_bundle:
            # Explicit: never rely on REQUESTS_CA_BUNDLE, which a CI box may point elsewhere.
            kwargs["connection_verify"] = self.conn.ca_bundle
        return kwargs

    def _retry_policy(self) -> RetryPolicy:
        return _CappedRetryPolicy(
            max_retry_after=RETRY_AFTER_CAP_SECONDS,
            retry_total=self.conn.retry_total,
            retry_backoff_factor=RETRY_BACKOFF_FACTOR,
            retry_backoff_max=RETRY_BACKOFF_MAX_SECONDS,
        )

    def _get_credential(self) -> Any:
        with self._lock:
            if self._credential is None:
                authority = self.conn.authority_host or None
                common = {
                    "disable_instance_discovery": bool(authority),
                    # Token requests get the same bounded retries as the clients.
                    "retry_total": self.conn.retry_total,
                    "retry_backoff_factor": RETRY_BACKOFF_FACTOR,
                    "retry_backoff_max": RETRY_BACKOFF_MAX_SECONDS,
                    **self._transport_kwargs(),
                }
                if authority:
                    common["authority"] = authority
                if self.conn.client_secret:
                    self._credential = ClientSecretCredential(
                        self.conn.tenant_id, self.conn.client_id, self.conn.client_secret, **common
                    )
                else:
                    self._credential = DefaultAzureCredential(**common)
            return self._credential

    def _automation_client(self) -> AutomationClient:
        with self._lock:
            if self._automation is None:
                self._automation = AutomationClient(
                    self._get_credential(),
                    self.conn.subscription_id,
                    base_url=self.conn.arm_endpoint,
                    retry_policy=self._retry_policy(),
                    **self._transport_kwargs(),
                )
            return self._automation

    def _logs_client(self) -> LogsQueryClient:
        with self._lock:
            if self._logs is None:
                self._logs = LogsQueryClient(
                    self._get_credential(),
                    endpoint=self.conn.logs_endpoint,
                    audience=self.conn.logs_audience,
                    retry_policy=self._retry_policy(),
                    **self._transport_kwargs(),
                )
            return self._logs

    def close(self) -> None:
        """Close the SDK clients and the credential. Safe to call twice."""
        for attr in ("_automation", "_logs", "_credential"):
            with self._lock:
                obj = getattr(self, attr)
                setattr(self, attr, None)
            close = getattr(obj, "close", None)
            if callable(close):
                try:
                    close()
                except _CONVERTED as exc:  # closing must never mask the real outcome
                    logger.debug("closing %s failed: %s", attr, exc)

    def __enter__(self) -> AzureClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # --- Automation (ARM) ----------------------------------------------------------------------

    def _list(self, what: str, call: Callable[[_LastStatus], Iterable[Any]], parse: Callable[[Any], T]) -> list[T]:
        """Materialise every page inside the error boundary: a failure on page N returns nothing."""
        hook = _LastStatus()
        try:
            items = [_raw(item) for item in call(hook)]
        except _BadRow as exc:
            raise AzureError(f"{what}: {exc}") from exc
        except _CONVERTED as exc:
            raise _map_error(exc, what, hook) from exc
        return _parse_rows(items, parse, what)

    def list_groups(self) -> list[GroupRecord]:
        """Every Hybrid Runbook Worker group of the account (all nextLink pages)."""
        c = self.conn
        return self._list(
            "list worker groups",
            lambda hook: self._automation_client().hybrid_runbook_worker_group.list_by_automation_account(
                c.resource_group, c.automation_account, raw_response_hook=hook
            ),
            parse_group,
        )

    def list_workers(self, group_name: str) -> list[WorkerRecord]:
        """Every worker of one group (all pages). The name goes into a URL path, percent-encoded by the SDK."""
        c = self.conn
        return self._list(
            f"list workers of group {group_name!r}",
            lambda hook: self._automation_client().hybrid_runbook_workers.list_by_hybrid_runbook_worker_group(
                c.resource_group, c.automation_account, group_name, raw_response_hook=hook
            ),
            lambda raw: parse_worker(raw, group_name),
        )

    def list_jobs(
        self,
        *,
        since: datetime,
        until: datetime | None = None,
        status: str | None = None,
        run_on: str | None = None,
    ) -> list[JobRecord]:
        """Jobs created OR last modified in [since, until), optionally of one status / one group.

        Two filtered listings merged by job id (the later ``lastModifiedTime`` wins). ``status`` and
        ``run_on`` are also applied here, in case a service ignores part of the filter.
        """
        c = self.conn
        merged: dict[str, JobRecord] = {}
        for flt in jobs_filters(since=since, until=until, status=status, run_on=run_on):
            jobs = self._list(
                "list jobs",
                lambda hook, flt=flt: self._automation_client().job.list_by_automation_account(
                    c.resource_group, c.automation_account, filter=flt, raw_response_hook=hook
                ),
                parse_job,
            )
            for job in jobs:
                known = merged.get(job.job_id)
                if known is None or _newer(job, known):
                    merged[job.job_id] = job
        out = list(merged.values())
        if status:
            out = [j for j in out if j.status.lower() == status.lower()]
        if run_on:
            out = [j for j in out if j.run_on.lower() == run_on.lower()]
        out.sort(key=lambda j: (j.created_at, j.job_id))
        return out

    # --- Log Analytics -------------------------------------------------------------------------

    def _query(self, what: str, query: str | None, start: datetime, end: datetime, parse: Callable[[_Row], T]) -> LogsResult:
        if query is None:
            return LogsResult(rows=())
        if not self.conn.workspace_id:
            raise AzureError(f"{what}: no Log Analytics workspace is configured for this account")
        hook = _LastStatus()
        try:
            result = self._logs_client().query_workspace(
                self.conn.workspace_id, query, timespan=(_utc(start), _utc(end)), raw_response_hook=hook
            )
        except _CONVERTED as exc:
            raise _map_error(exc, what, hook) from exc
        partial_error: str | None = None
        if isinstance(result, LogsQueryPartialResult):
            tables = result.partial_data
            err = result.partial_error
            code = _text(getattr(err, "code", ""))
            message = _text(getattr(err, "message", ""))
            parts = [p for p in (code, message) if p] + _inner_messages(getattr(err, "details", None))
            partial_error = ": ".join(dict.fromkeys(parts)) or "partial result"
            logger.warning("%s: Log Analytics returned a partial result: %s", what, partial_error)
        else:
            tables = getattr(result, "tables", None)
        try:
            rows = tuple(_parse_rows(_table_rows(tables), parse, what))
        except (TypeError, AttributeError) as exc:
            raise AzureError(f"{what}: unexpected result shape ({_short(exc)})") from exc
        return LogsResult(rows=rows, partial_error=partial_error)

    def latest_heartbeats(
        self, *, start: datetime, end: datetime, computers: Sequence[str] | None = None
    ) -> LogsResult:
        """The latest Heartbeat per Computer in [start, end). rows: tuple[HeartbeatRecord, ...]."""
        return self._query(
            "latest heartbeats", heartbeat_query(start, end, computers), start, end, parse_heartbeat_row
        )

    def utilization(self, *, start: datetime, end: datetime, computers: Sequence[str] | None = None) -> LogsResult:
        """CPU and memory % per computer per minute in [start, end). rows: tuple[UtilizationRecord, ...]."""
        return self._query("utilization", utilization_query(start, end, computers), start, end, parse_utilization_row)

    def agent_events(self, *, start: datetime, end: datetime, computers: Sequence[str] | None = None) -> LogsResult:
        """Event 4502 per computer in [start, end). rows: tuple[AgentEventRecord, ...]."""
        return self._query("agent events", agent_events_query(start, end, computers), start, end, parse_agent_event_row)


def _inner_messages(details: Any) -> list[str]:
    """The innermost message of each ``details`` entry of a Log Analytics error (the useful text)."""
    out: list[str] = []
    for detail in details if isinstance(details, list) else []:
        node, message = detail, ""
        while isinstance(node, Mapping):
            message = _text(node.get("message")) or message
            node = node.get("innererror")
        if message:
            out.append(message)
    return out


def _newer(a: JobRecord, b: JobRecord) -> bool:
    """Is ``a`` a later view of the job than ``b``?"""
    if a.last_modified_at is None:
        return False
    return b.last_modified_at is None or a.last_modified_at > b.last_modified_at
