"""The Log Analytics count queries of ``manage.py doctor``: rows and machines of one table in a window.

Registered in ``workers.azure.logs.LOG_QUERIES`` (run by ``AzureClient.logs``). The table name is one
of ``VOLUME_TABLES`` (constants); machines enter only through ``queries.machine_clause`` (escaped
literals) and times only through ``queries.kql_datetime``. Pure: no SDK, no I/O.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from workers.azure.parse import BadRow, Row, finite_float
from workers.azure.queries import kql_datetime, machine_clause

VOLUME_TABLES = ("Heartbeat", "Perf", "InsightsMetrics")


@dataclass(frozen=True)
class VolumeRecord:
    rows: int
    computers: int


def volume_query(
    table: str, start: datetime, end: datetime, computers: Sequence[str] | None = None, *,
    resource_ids: Sequence[str] | None = None,
) -> str | None:
    """``Rows`` and distinct ``Computers`` of ``table`` in [start, end); None when the machine list is empty."""
    if table not in VOLUME_TABLES:
        raise ValueError(f"not a table the doctor counts: {table!r}")
    where = machine_clause(computers, resource_ids)
    if where == "":
        return None
    lines = [
        table,
        f"| where TimeGenerated >= {kql_datetime(start)} and TimeGenerated < {kql_datetime(end)}",
        where,
        "| summarize Rows = count(), Computers = dcount(Computer)",
    ]
    return "\n".join(line for line in lines if line)


def heartbeat_volume_query(start: datetime, end: datetime, computers: Sequence[str] | None = None, *,
                           resource_ids: Sequence[str] | None = None) -> str | None:
    return volume_query("Heartbeat", start, end, computers, resource_ids=resource_ids)


def perf_volume_query(start: datetime, end: datetime, computers: Sequence[str] | None = None, *,
                      resource_ids: Sequence[str] | None = None) -> str | None:
    return volume_query("Perf", start, end, computers, resource_ids=resource_ids)


def insights_volume_query(start: datetime, end: datetime, computers: Sequence[str] | None = None, *,
                          resource_ids: Sequence[str] | None = None) -> str | None:
    return volume_query("InsightsMetrics", start, end, computers, resource_ids=resource_ids)


def parse_volume_row(row: Row) -> VolumeRecord:
    rows, computers = finite_float(row["Rows"]), finite_float(row["Computers"])
    if rows is None or rows < 0:
        raise BadRow("count row without Rows")
    return VolumeRecord(rows=int(rows), computers=int(computers or 0))
