"""Parsing: SDK/wire values -> the frozen records of ``workers.azure.records``.

One bad row is dropped and logged, never the whole list. ARM items arrive as SDK models (read
through their wire-shaped mapping) or plain mappings; Log Analytics rows as lists read by column
name. Pure: no SDK import, no I/O.
"""
from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, TypeVar

from workers.azure.queries import AGENT_EVENT_ID, as_utc
from workers.azure.records import (
    AgentEventRecord,
    GroupRecord,
    HeartbeatRecord,
    JobRecord,
    JobStreamRecord,
    UtilizationHourRecord,
    UtilizationRecord,
    WorkerRecord,
)

logger = logging.getLogger(__name__)

T = TypeVar("T")


class BadRow(ValueError):
    """One row that cannot become a record."""


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


def cell_text(value: Any) -> str:
    """Cell/field text: None, the string 'None' (what the Logs client makes of null) and '' mean empty."""
    if value is None:
        return ""
    text = str(value)
    return "" if text == "None" else text


def parse_datetime(value: Any) -> datetime | None:
    """An aware UTC datetime from an SDK/wire value; None for empty; ``BadRow`` if malformed.

    Accepts datetime objects and ISO 8601 text with Z or an offset and 0-7 fractional digits.
    """
    if isinstance(value, datetime):
        return as_utc(value)
    text = cell_text(value).strip()
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
            raise BadRow(f"malformed datetime {text!r}")
        candidate = f"{head}.{digits[:6].ljust(6, '0')}{rest}"
    try:
        parsed = datetime.fromisoformat(candidate)
    except ValueError as exc:
        raise BadRow(f"malformed datetime {text!r}") from exc
    return as_utc(parsed)


def _get(mapping: Any, *path: str) -> Any:
    """``mapping[path[0]][path[1]]...`` tolerating missing keys and non-mapping values."""
    current = mapping
    for key in path:
        if not isinstance(current, Mapping):
            return None
        current = current.get(key)
    return current


# --- Automation (ARM) items ------------------------------------------------------------------


def wire_mapping(item: Any) -> Mapping[str, Any]:
    """The wire-shaped mapping behind an SDK model (hybrid models are Mappings of wire names)."""
    if isinstance(item, Mapping):
        return item
    as_dict = getattr(item, "as_dict", None)
    if callable(as_dict):
        return as_dict()
    raise BadRow(f"unexpected item type {type(item).__name__}")


def parse_rows(items: Iterable[Any], parse: Callable[[Any], T], what: str) -> list[T]:
    """Parse each item; a bad one is logged and skipped (one bad row never sinks the rest)."""
    out: list[T] = []
    for item in items:
        try:
            out.append(parse(item))
        except BadRow as exc:
            logger.warning("skipping a %s row from Azure: %s", what, exc)
    return out


def parse_group(raw: Mapping[str, Any]) -> GroupRecord:
    name = cell_text(_get(raw, "name"))
    azure_id = cell_text(_get(raw, "id")).lower()
    if not name or not azure_id:
        raise BadRow("worker group without a name or id")
    return GroupRecord(azure_id=azure_id, name=name, group_type=cell_text(_get(raw, "properties", "groupType")))


def parse_worker(raw: Mapping[str, Any], group_name: str) -> WorkerRecord:
    worker_id = cell_text(_get(raw, "name"))
    azure_id = cell_text(_get(raw, "id")).lower()
    if not worker_id or not azure_id:
        raise BadRow("hybrid worker without a name or id")
    props = _get(raw, "properties") or {}
    return WorkerRecord(
        azure_id=azure_id,
        worker_id=worker_id,
        group_name=group_name,
        name=cell_text(_get(props, "workerName")),
        ip=cell_text(_get(props, "ip")),
        registered_at=parse_datetime(_get(props, "registeredDateTime")),
        last_seen_at=parse_datetime(_get(props, "lastSeenDateTime")),
        worker_type=cell_text(_get(props, "workerType")),
        vm_resource_id=cell_text(_get(props, "vmResourceId")),
    )


def parse_job(raw: Mapping[str, Any]) -> JobRecord:
    props = _get(raw, "properties") or {}
    job_id = cell_text(_get(props, "jobId")) or cell_text(_get(raw, "name"))
    if not job_id:
        raise BadRow("job without an id")
    created_at = parse_datetime(_get(props, "creationTime"))
    if created_at is None:
        raise BadRow(f"job {job_id} has no creationTime")
    return JobRecord(
        job_id=job_id.lower(),
        runbook=cell_text(_get(props, "runbook", "name")),
        status=cell_text(_get(props, "status")),
        run_on=cell_text(_get(props, "runOn")),
        started_by=cell_text(_get(props, "startedBy")),
        provisioning_state=cell_text(_get(props, "provisioningState")),
        created_at=created_at,
        started_at=parse_datetime(_get(props, "startTime")),
        ended_at=parse_datetime(_get(props, "endTime")),
        last_modified_at=parse_datetime(_get(props, "lastModifiedTime")),
        exception=cell_text(_get(props, "exception")),
    )


def ignored_filter(field: str, item: Any, floor: datetime) -> str | None:
    """Why ``item`` shows the service ignored a ``ge <floor>`` filter on ``field`` (None if it did not)."""
    try:
        value = parse_datetime(_get(item, "properties", field))
    except BadRow:
        return None
    if value is not None and value < floor - timedelta(seconds=1):
        return f"the service ignored the {field} filter (a job of {value.isoformat()} is older than {floor.isoformat()})"
    return None


def _newer(a: JobRecord, b: JobRecord) -> bool:
    """Is ``a`` a later view of the job than ``b``?"""
    if a.last_modified_at is None:
        return False
    return b.last_modified_at is None or a.last_modified_at > b.last_modified_at


def merge_jobs(
    listings: Iterable[Iterable[JobRecord]], *, status: str | None = None, run_on: str | None = None
) -> list[JobRecord]:
    """The job listings of ``jobs_filters`` merged by job id (the later ``lastModifiedTime`` wins).

    ``status`` and ``run_on`` are applied again here, in case a service ignores part of the
    filter. Sorted by creation time, then job id.
    """
    merged: dict[str, JobRecord] = {}
    for jobs in listings:
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


# --- Log Analytics rows ----------------------------------------------------------------------


class Row:
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


def table_rows(tables: Sequence[Any] | None) -> Iterator[Row]:
    """The rows of the first table of a Logs result, each readable by column name."""
    if not tables:
        return
    table = tables[0]
    index = {name: i for i, name in enumerate(getattr(table, "columns", None) or [])}
    for row in getattr(table, "rows", None) or []:
        yield Row(index, list(row))


def partial_error_text(error: Any) -> str:
    """One line for the error of a partial Logs result: code, message and the inner messages."""
    code = cell_text(getattr(error, "code", ""))
    message = cell_text(getattr(error, "message", ""))
    parts = [p for p in (code, message) if p] + _inner_messages(getattr(error, "details", None))
    return ": ".join(dict.fromkeys(parts)) or "partial result"


def _inner_messages(details: Any) -> list[str]:
    """The innermost message of each ``details`` entry of a Log Analytics error (the useful text)."""
    out: list[str] = []
    for detail in details if isinstance(details, list) else []:
        node, message = detail, ""
        while isinstance(node, Mapping):
            message = cell_text(node.get("message")) or message
            node = node.get("innererror")
        if message:
            out.append(message)
    return out


def parse_heartbeat_row(row: Row) -> HeartbeatRecord:
    computer = cell_text(row["Computer"])
    time_generated = parse_datetime(row["TimeGenerated"])
    if not computer or time_generated is None:
        raise BadRow("heartbeat row without Computer or TimeGenerated")
    return HeartbeatRecord(
        computer=computer,
        time_generated=time_generated,
        version=cell_text(row["Version"]),
        os_type=cell_text(row["OSType"]),
        category=cell_text(row["Category"]),
        computer_ip=cell_text(row["ComputerIP"]),
        resource_id=cell_text(row["_ResourceId"]),
    )


def parse_utilization_row(row: Row) -> UtilizationRecord:
    computer = cell_text(row["Computer"])
    ts = parse_datetime(row["TimeGenerated"])
    if not computer or ts is None:
        raise BadRow("Perf row without Computer or TimeGenerated")
    mem = finite_float(row["MemUsedPct"])
    if mem is None:
        available = finite_float(row["MemAvailablePct"])
        mem = None if available is None else 100.0 - available
    return UtilizationRecord(
        computer=computer, ts=ts, cpu_pct=finite_float(row["CpuPct"]), mem_pct=mem, resource_id=cell_text(row["ResourceId"])
    )


def parse_job_stream(raw: Any) -> JobStreamRecord:
    props = _get(wire_mapping(raw), "properties") or {}
    stream_id = cell_text(_get(props, "jobStreamId"))
    if not stream_id:
        raise BadRow("job stream without an id")
    return JobStreamRecord(
        stream_id=stream_id, time=parse_datetime(_get(props, "time")),
        stream_type=cell_text(_get(props, "streamType")) or "Unknown", summary=cell_text(_get(props, "summary"))[:4000],
    )


def parse_utilization_hour_row(row: Row) -> UtilizationHourRecord:
    computer = cell_text(row["Computer"])
    hour = parse_datetime(row["Hour"])
    minutes = finite_float(row["Minutes"])
    if not computer or hour is None or minutes is None or minutes < 1:
        raise BadRow("hourly Perf row without Computer, Hour or Minutes")
    return UtilizationHourRecord(
        computer=computer, hour=hour, cpu_avg=finite_float(row["CpuAvg"]), cpu_max=finite_float(row["CpuMax"]),
        mem_avg=finite_float(row["MemAvg"]), mem_max=finite_float(row["MemMax"]), minutes=int(minutes),
    )


def parse_agent_event_row(row: Row) -> AgentEventRecord:
    computer = cell_text(row["Computer"])
    first_at = parse_datetime(row["FirstAt"])
    last_at = parse_datetime(row["LastAt"])
    count = finite_float(row["EventCount"])
    if not computer or first_at is None or last_at is None or count is None:
        raise BadRow("event row without Computer, EventCount, FirstAt or LastAt")
    return AgentEventRecord(
        computer=computer,
        event_id=AGENT_EVENT_ID,
        count=int(count),
        first_at=first_at,
        last_at=last_at,
        message=cell_text(row["Message"]),
    )
