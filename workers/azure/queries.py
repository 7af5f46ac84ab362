"""Query text: the only doors through which values enter KQL and OData ``$filter``.

Untrusted strings (names from Azure or from users) reach queries only through ``kql_string`` (KQL)
and ``odata_string`` (``$filter``); datetimes only through ``kql_datetime`` / ``odata_datetime``,
which accept ``datetime`` objects, never text. Every other piece of query text is a constant of
this module. Pure: no SDK, no I/O.
"""
from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

logger = logging.getLogger(__name__)

# --- Log Analytics vocabulary (constants: the only text a query is built from) ---------------
CPU_COUNTER = "% Processor Time"
CPU_OBJECTS = ("Processor", "Processor Information")  # legacy agent / Azure Monitor Agent on Windows
CPU_INSTANCES = ("_Total", "total")  # "total": AMA spelling on Linux
MEMORY_OBJECT = "Memory"
MEMORY_USED_PCT_COUNTERS = ("% Committed Bytes In Use", "% Used Memory")  # Windows / Linux
MEMORY_AVAILABLE_PCT_COUNTER = "% Available Memory"  # Linux: a percentage, so the total is implied
AGENT_EVENT_LOG = "Operations Manager"
AGENT_EVENT_ID = 4502  # TLS interception: certificate not issued by a Microsoft CA

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


def as_utc(value: datetime) -> datetime:
    """Aware UTC. A naive datetime is taken to be UTC already (the project runs with TIME_ZONE=UTC)."""
    if not isinstance(value, datetime):
        raise TypeError("expected a datetime")
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def _seven_digit(value: datetime) -> str:
    v = as_utc(value)
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


# Job statuses of the Automation REST spec (JobStatus) that are not final, plus the portal's "Queued"
# (not in the spec's enum, but the service reports it). The only status names that ever go into a
# jobs $filter: constants, never a value read from Azure or a user.
UNFINISHED_JOB_STATUSES: tuple[str, ...] = (
    "New", "Activating", "Running", "Blocked", "Disconnected", "Resuming", "Stopping", "Suspending", "Queued",
)


def jobs_created_filter(*, since: datetime, until: datetime | None = None) -> str:
    """``properties/creationTime ge <since>`` (and ``lt <until>``): the filter the public scripts use."""
    clauses = [f"properties/creationTime ge {odata_datetime(since)}"]
    if until is not None:
        clauses.append(f"properties/creationTime lt {odata_datetime(until)}")
    return " and ".join(clauses)


def jobs_modified_filter(*, since: datetime, created_before: datetime | None = None) -> str:
    """``properties/lastModifiedTime ge <since>``: undocumented; a service may refuse or ignore it.

    With ``created_before``, also ``and properties/creationTime lt <created_before>``: only the jobs
    created before it (the jobs polls list those created since with ``jobs_created_filter``).
    """
    clauses = [f"properties/lastModifiedTime ge {odata_datetime(since)}"]
    if created_before is not None:
        clauses.append(f"properties/creationTime lt {odata_datetime(created_before)}")
    return " and ".join(clauses)


def jobs_status_filter(status: str) -> str:
    """``properties/status eq '<status>'`` for one of ``UNFINISHED_JOB_STATUSES`` only (ValueError otherwise)."""
    if status not in UNFINISHED_JOB_STATUSES:
        raise ValueError(f"not a job status this poll lists by: {status!r}")
    return f"properties/status eq {odata_string(status)}"


def _computer_clause(computers: Sequence[str] | None) -> str | None:
    """``| where <names match>``, or None for "every computer" ("" when nothing is left to ask).

    Names that cannot be written as a literal are skipped with a warning; if nothing is left the
    caller must not query at all (an empty list must never widen to "every computer").
    """
    if computers is None:
        return None
    match = _names_match(computers)
    return f"| where {match}" if match else ""


def _names_match(computers: Sequence[str]) -> str:
    """A KQL condition matching ``Computer`` the way ingestion does (``_ComputerIndex``): the whole
    name case-insensitively, or the host part before the first dot on both sides (an agent may
    report ``hrw01.contoso.com`` where Automation lists ``HRW01``). "" when no name is usable."""
    names = _literals(computers, "computer name")
    if not names:
        return ""
    hosts = _literals(sorted({c.split(".", 1)[0] for c in computers if c and c.split(".", 1)[0]}), "computer name")
    whole = "Computer in~ (" + ", ".join(names) + ")"
    return f"({whole} or tostring(split(Computer, '.')[0]) in~ (" + ", ".join(hosts) + "))" if hosts else whole


# At most this many machines (resource ids plus computer names) in one Log Analytics query: the
# ``in`` lists stay far below the service's query-text limit, and one query's rows stay bounded.
MACHINES_PER_QUERY = 500


def _literals(values: Sequence[str], what: str) -> list[str]:
    out: list[str] = []
    seen: set[str] = set()
    for value in values:
        if value in seen:
            continue
        seen.add(value)
        try:
            out.append(kql_string(value))
        except (TypeError, ValueError) as exc:
            logger.warning("skipping %s %r in a Log Analytics query: %s", what, value, exc)
    return out


def machine_clause(computers: Sequence[str] | None, resource_ids: Sequence[str] | None = None) -> str | None:
    """``| where _ResourceId in~ (...) or <names match>``: our machines only, or None for "every machine".

    Machines whose ARM id (a worker's ``vmResourceId``) is known are matched by ``_ResourceId``, which
    Log Analytics fills for Azure VMs and Arc servers whatever the computer calls itself (compared
    case-insensitively: the column is usually lower case); the others by ``Computer``. Without
    ``resource_ids`` this is ``_computer_clause``. "" when nothing is left to ask (never widened).
    """
    if resource_ids is None:
        return _computer_clause(computers)
    ids = _literals(resource_ids, "resource id")
    parts = []
    if ids:
        parts.append("_ResourceId in~ (" + ", ".join(ids) + ")")
    match = _names_match(computers or ())
    if match:
        parts.append(match)
    return ("| where " + " or ".join(parts)) if parts else ""


def _window_clause(start: datetime, end: datetime) -> str:
    return f"| where TimeGenerated >= {kql_datetime(start)} and TimeGenerated < {kql_datetime(end)}"


def _tuple(values: Iterable[str]) -> str:
    return "(" + ", ".join(kql_string(v) for v in values) + ")"


def _assemble(lines: Iterable[str | None]) -> str:
    return "\n".join(line for line in lines if line)


def heartbeat_query(
    start: datetime, end: datetime, computers: Sequence[str] | None = None, *, resource_ids: Sequence[str] | None = None
) -> str | None:
    """Latest Heartbeat per computer in [start, end). None when ``computers`` leaves nothing to ask."""
    where_computer = machine_clause(computers, resource_ids)
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


def utilization_query(
    start: datetime, end: datetime, computers: Sequence[str] | None = None, *, resource_ids: Sequence[str] | None = None
) -> str | None:
    """CPU and memory per computer per minute in [start, end).

    CPU: ``% Processor Time`` of object Processor or Processor Information, instance _Total/total.
    Memory used %: ``% Committed Bytes In Use`` (Windows) or ``% Used Memory`` (Linux); failing both,
    100 - ``% Available Memory`` (Linux, a percentage). ``Available MBytes``/``Available Bytes``/
    ``Available MBytes Memory`` are absolute, and Perf carries no total memory to divide by, so
    they are not turned into a percentage (mem_pct stays None rather than guessed).
    """
    where_computer = machine_clause(computers, resource_ids)
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
            f" MemAvailablePct = avgif(CounterValue, CounterName == {kql_string(MEMORY_AVAILABLE_PCT_COUNTER)}),"
            " ResourceId = take_any(_ResourceId) by Computer, TimeGenerated = bin(TimeGenerated, 1m)",
            "| project Computer, TimeGenerated, CpuPct, MemUsedPct, MemAvailablePct, ResourceId",
        ]
    )


def utilization_hourly_query(
    start: datetime, end: datetime, computers: Sequence[str] | None = None, *, resource_ids: Sequence[str] | None = None
) -> str | None:
    """CPU and memory per computer per hour in [start, end): the hourly rollup, computed in the workspace.

    The same one-minute values as ``utilization_query`` (memory: used %, else 100 - available %),
    then per hour their mean, maximum and the number of minutes with a value, exactly what
    ``rollup_utilization`` computes from stored minutes. The history backfill reads weeks this way:
    one row per machine-hour instead of sixty.
    """
    minutes = utilization_query(start, end, computers, resource_ids=resource_ids)
    if minutes is None:
        return None
    return _assemble(
        [
            minutes,
            "| extend MemPct = iff(isnotnull(MemUsedPct), MemUsedPct, 100.0 - MemAvailablePct)",
            "| where isnotnull(CpuPct) or isnotnull(MemPct)",
            "| summarize CpuAvg = avg(CpuPct), CpuMax = max(CpuPct), MemAvg = avg(MemPct), MemMax = max(MemPct),"
            " Minutes = count() by Computer, Hour = bin(TimeGenerated, 1h)",
            "| project Computer, Hour, CpuAvg, CpuMax, MemAvg, MemMax, Minutes",
        ]
    )


def agent_events_query(
    start: datetime, end: datetime, computers: Sequence[str] | None = None, *, resource_ids: Sequence[str] | None = None
) -> str | None:
    """Event 4502 (Operations Manager log) per computer in [start, end): count, first, last, one message."""
    where_computer = machine_clause(computers, resource_ids)
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


# VM insights (Azure Monitor Agent with a VM insights data collection rule) writes CPU and memory to
# InsightsMetrics, not Perf: Origin "vm.azm.ms"; Processor/UtilizationPercentage (percent) and
# Memory/AvailableMB, whose Tags (a JSON string) carry the machine's "vm.azm.ms/memorySizeMB".
# (Learn: "Create alerts from VM insights" / "VM insights log query samples".)
INSIGHTS_ORIGIN = "vm.azm.ms"
INSIGHTS_CPU = ("Processor", "UtilizationPercentage")
INSIGHTS_MEMORY = ("Memory", "AvailableMB")
INSIGHTS_MEMORY_SIZE_TAG = "vm.azm.ms/memorySizeMB"


def insights_utilization_query(
    start: datetime, end: datetime, computers: Sequence[str] | None = None, *, resource_ids: Sequence[str] | None = None
) -> str | None:
    """CPU and memory per computer per minute in [start, end) from InsightsMetrics (VM insights).

    The same columns as ``utilization_query``: CPU % is UtilizationPercentage; memory used % is
    100 - 100 * AvailableMB / memorySizeMB (None when the tag is missing or zero, never guessed).
    """
    where_computer = machine_clause(computers, resource_ids)
    if where_computer == "":
        return None
    cpu_ns, cpu_name = (kql_string(v) for v in INSIGHTS_CPU)
    mem_ns, mem_name = (kql_string(v) for v in INSIGHTS_MEMORY)
    return _assemble(
        [
            "InsightsMetrics",
            _window_clause(start, end),
            f"| where Origin == {kql_string(INSIGHTS_ORIGIN)}",
            where_computer,
            f"| where (Namespace == {cpu_ns} and Name == {cpu_name}) or (Namespace == {mem_ns} and Name == {mem_name})",
            f"| extend MemorySizeMB = toreal(todynamic(Tags)[{kql_string(INSIGHTS_MEMORY_SIZE_TAG)}])",
            f"| summarize CpuPct = avgif(Val, Namespace == {cpu_ns}),"
            f" MemUsedPct = avgif(100.0 - 100.0 * Val / MemorySizeMB, Namespace == {mem_ns} and MemorySizeMB > 0),"
            " ResourceId = take_any(_ResourceId) by Computer, TimeGenerated = bin(TimeGenerated, 1m)",
            "| extend MemAvailablePct = 100.0 - MemUsedPct",
            "| project Computer, TimeGenerated, CpuPct, MemUsedPct, MemAvailablePct, ResourceId",
        ]
    )


def insights_utilization_hourly_query(
    start: datetime, end: datetime, computers: Sequence[str] | None = None, *, resource_ids: Sequence[str] | None = None
) -> str | None:
    """``utilization_hourly_query`` over InsightsMetrics (VM insights) instead of Perf: same columns."""
    minutes = insights_utilization_query(start, end, computers, resource_ids=resource_ids)
    if minutes is None:
        return None
    return _assemble(
        [
            minutes,
            "| extend MemPct = MemUsedPct",
            "| where isnotnull(CpuPct) or isnotnull(MemPct)",
            "| summarize CpuAvg = avg(CpuPct), CpuMax = max(CpuPct), MemAvg = avg(MemPct), MemMax = max(MemPct),"
            " Minutes = count() by Computer, Hour = bin(TimeGenerated, 1h)",
            "| project Computer, Hour, CpuAvg, CpuMax, MemAvg, MemMax, Minutes",
        ]
    )
