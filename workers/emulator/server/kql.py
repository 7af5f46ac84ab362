"""Log Analytics for the emulator: KQL run by duckdb-kql over the simulation's tables.

Each request gets a private DuckDB cursor on which ``Heartbeat``, ``Perf`` and ``Event`` are TEMP
VIEWs carrying Log Analytics' real column names, restricted to rows already *ingested* at the
simulation's ``now`` and to the request's timespan. The views are built from parsed datetimes only,
never from request text. ``now()``/``ago()`` are pinned to the simulation clock.

Fidelity guards, because DuckDB is more lenient than Log Analytics: a table or column name whose case
differs from the real schema is refused (Azure rejects ``heartbeat``), and a query that reads any
table other than the three emulated ones is refused (it must never see the internal tables).
"""
from __future__ import annotations

import decimal
import math
import re
import threading
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import duckdb
import duckdb_kql
from duckdb_kql.types import kusto_type

from workers.emulator.server.kql_tables import foreign_rows, insights_view
from workers.emulator.simulation import TLS_DESCRIPTION, FleetSimulation

HEARTBEAT_COLUMNS = (
    "TenantId", "SourceSystem", "TimeGenerated", "MG", "ManagementGroupName", "SourceComputerId", "ComputerIP",
    "Computer", "Category", "OSType", "OSName", "OSMajorVersion", "OSMinorVersion", "Version", "SCAgentChannel",
    "IsGatewayInstalled", "RemoteIPLongitude", "RemoteIPLatitude", "RemoteIPCountry", "SubscriptionId",
    "ResourceGroup", "ResourceProvider", "Resource", "ResourceId", "ResourceType", "ComputerEnvironment",
    "Solutions", "VMUUID", "ComputerPrivateIPs", "Type", "_ResourceId",
)
PERF_COLUMNS = (
    "TenantId", "Computer", "ObjectName", "CounterName", "InstanceName", "Min", "Max", "SampleCount",
    "CounterValue", "TimeGenerated", "BucketStartTime", "BucketEndTime", "SourceSystem", "CounterPath",
    "StandardDeviation", "MG", "Type", "_ResourceId",
)
EVENT_COLUMNS = (
    "TenantId", "SourceSystem", "TimeGenerated", "Source", "EventLog", "Computer", "EventLevel", "EventLevelName",
    "ParameterXml", "EventData", "EventID", "RenderedDescription", "AzureDeploymentID", "Role", "EventCategory",
    "UserName", "Message", "MG", "ManagementGroupName", "Type", "_ResourceId",
)
INSIGHTS_COLUMNS = (
    "TenantId", "Computer", "Origin", "Namespace", "Name", "Val", "Tags", "AgentId", "TimeGenerated",
    "SourceSystem", "Type", "_ResourceId",
)
SCHEMA: dict[str, list[str]] = {
    "Heartbeat": list(HEARTBEAT_COLUMNS),
    "Perf": list(PERF_COLUMNS),
    "Event": list(EVENT_COLUMNS),
    "InsightsMetrics": list(INSIGHTS_COLUMNS),
}
_CANONICAL = {name.lower(): name for name in SCHEMA}
for _cols in SCHEMA.values():
    _CANONICAL.update({c.lower(): c for c in _cols})

MAX_ROWS = 500_000


class QueryError(Exception):
    """A query Log Analytics would refuse: becomes a 400 ``BadArgumentError`` body."""

    def __init__(self, code: str, message: str, *, inner: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.inner = inner or {}

    def body(self) -> dict[str, Any]:
        inner: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.inner:
            inner["innererror"] = self.inner
        return {
            "error": {
                "message": "The request had some invalid properties",
                "code": "BadArgumentError",
                "correlationId": str(uuid.uuid4()),
                "innererror": inner,
            }
        }


@dataclass
class QueryResult:
    columns: list[tuple[str, str]]
    rows: list[list[Any]]
    truncated: bool
    total_rows: int


# ------------------------------------------------------------------------------------- timespan

_DURATION = re.compile(
    r"P(?:(?P<d>\d+(?:\.\d+)?)D)?(?:T(?:(?P<h>\d+(?:\.\d+)?)H)?(?:(?P<m>\d+(?:\.\d+)?)M)?(?:(?P<s>\d+(?:\.\d+)?)S)?)?"
)


def parse_duration(text: str) -> timedelta:
    m = _DURATION.fullmatch(text)
    if not m or text in ("P", "PT") or not any(m.groupdict().values()):
        raise QueryError("InvalidTimespan", f"'{text}' is not an ISO 8601 duration")
    parts = {k: float(v) if v else 0.0 for k, v in m.groupdict().items()}
    return timedelta(days=parts["d"], hours=parts["h"], minutes=parts["m"], seconds=parts["s"])


def parse_instant(text: str) -> datetime:
    t = text.strip()
    if t.endswith("Z") or t.endswith("z"):
        t = t[:-1] + "+00:00"
    m = re.fullmatch(r"(\d{4}-\d{2}-\d{2}(?:T\d{2}:\d{2}(?::\d{2})?)?)(?:\.(\d{1,7}))?([+-]\d{2}:\d{2})?", t)
    if not m:
        raise QueryError("InvalidTimespan", f"'{text}' is not an ISO 8601 datetime")
    base, frac, tz = m.groups()
    try:
        dt = datetime.fromisoformat(base + (("." + frac[:6].ljust(6, "0")) if frac else "") + (tz or "+00:00"))
    except ValueError as exc:
        raise QueryError("InvalidTimespan", f"'{text}' is not an ISO 8601 datetime") from exc
    return dt.astimezone(UTC)


def parse_timespan(value: Any, now: datetime) -> tuple[datetime | None, datetime | None]:
    """``None`` (no window), ``PT3600.0S`` (ending now), ``start/end`` or ``start/duration``."""
    if value is None:
        return None, None
    if not isinstance(value, str) or not value.strip():
        raise QueryError("InvalidTimespan", "timespan must be an ISO 8601 interval string or null")
    text = value.strip()
    if "/" in text:
        left, _, right = text.partition("/")
        if left.startswith("P"):
            end = parse_instant(right)
            return end - parse_duration(left), end
        start = parse_instant(left)
        end = start + parse_duration(right) if right.startswith("P") else parse_instant(right)
    else:
        if not text.startswith("P"):
            raise QueryError("InvalidTimespan", f"'{text}' is not an ISO 8601 interval")
        end = now
        start = now - parse_duration(text)
    if end < start:
        raise QueryError("InvalidTimespan", "timespan ends before it starts")
    return start, end


# ----------------------------------------------------------------------------------- validation

_TOKEN = re.compile(
    r"""//[^\n]*                      # comment
      | [@hH]?"(?:[^"\\\n]|\\.)*"     # double-quoted string (optionally verbatim / obfuscated)
      | [@hH]?'(?:[^'\\\n]|\\.)*'     # single-quoted string
      | \[\s*(?:'[^']*'|"[^"]*")\s*\] # bracketed name ['x']
      | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
      | .""",
    re.VERBOSE | re.DOTALL,
)


def check_identifier_case(query: str) -> None:
    """Refuse a known table/column name spelled in another case (Log Analytics is case-sensitive)."""
    for m in _TOKEN.finditer(query):
        ident = m.group("ident")
        if not ident:
            continue
        canonical = _CANONICAL.get(ident.lower())
        if canonical is None or canonical == ident:
            continue
        rest = query[m.end():].lstrip()
        if rest.startswith("("):
            continue  # a function call (max(), min(), ...), not a column
        raise QueryError(
            "SemanticError",
            f"'{ident}' could not be resolved: Failed to resolve table or column expression named '{ident}'",
            inner={"code": "SEM0100", "message": f"Failed to resolve table or column expression named '{ident}'"},
        )


_SOURCE = re.compile(
    r"(?<![A-Za-z])(?<!DISTINCT )(?:FROM|JOIN)\s+((?:\"(?:[^\"]|\"\")*\"(?:\.\"(?:[^\"]|\"\")*\")*)|[A-Za-z_][\w.]*)",
    re.IGNORECASE,
)
_COLUMNS = {c for cols in SCHEMA.values() for c in cols}


def check_sources(sql: str) -> None:
    """Only the emulated tables, CTEs and let-bindings may be read (never the internal tables).

    Reads the SQL that duckdb-kql produced: every ``FROM``/``JOIN`` target must be one of our three
    tables (quoted), a generated CTE (``_s0``, ``"_l0_name"``) or a subquery. ``IS NOT DISTINCT FROM``
    and qualified column references (``_r."Computer"``) are expressions, not sources.
    """
    for m in _SOURCE.finditer(sql):
        src = m.group(1)
        if src.startswith('"'):
            name = src[1:-1].replace('""', '"') if src.count('"') == 2 else src
            if name in SCHEMA or name in _COLUMNS or re.fullmatch(r"_l\d+_\w*", name):
                continue
        elif src.endswith(".") or re.fullmatch(r"_s\d+|_[a-z]\w*", src):
            continue
        shown = src.strip('"')
        raise QueryError(
            "SemanticError",
            f"'{shown}' could not be resolved: Failed to resolve table expression named '{shown}'",
            inner={"code": "SEM0100", "message": f"Failed to resolve table expression named '{shown}'"},
        )


# ---------------------------------------------------------------------------------------- views


def _lit(dt: datetime) -> str:
    """A DuckDB TIMESTAMP literal from a datetime object (never from request text)."""
    naive = dt.astimezone(UTC).replace(tzinfo=None)
    return f"TIMESTAMP '{naive:%Y-%m-%d %H:%M:%S.%f}'"


def _create_views(cur: duckdb.DuckDBPyConnection, sim: FleetSimulation, now: datetime,
                  start: datetime | None, end: datetime | None) -> None:
    def window(alias: str) -> str:
        cond = f"{alias}.ingest <= {_lit(now)}"
        if start is not None and end is not None:
            cond += f" AND {alias}.t >= {_lit(start)} AND {alias}.t <= {_lit(end)}"
        return cond

    tenant = sim.workspace_id.replace("'", "")
    cur.execute(
        f"""CREATE OR REPLACE TEMP VIEW "Heartbeat" AS SELECT
        '{tenant}' AS TenantId, w.SourceSystem, h.t AS TimeGenerated, w.MG, w.ManagementGroupName,
        w.SourceComputerId, w.ComputerIP, w.Computer, w.Category, w.OSType, w.OSName, w.OSMajorVersion,
        w.OSMinorVersion, w.Version, w.SCAgentChannel, FALSE AS IsGatewayInstalled,
        CAST(NULL AS DOUBLE) AS RemoteIPLongitude, CAST(NULL AS DOUBLE) AS RemoteIPLatitude,
        CAST(NULL AS VARCHAR) AS RemoteIPCountry, w.SubscriptionId, w.ResourceGroup, w.ResourceProvider,
        w.Resource, w.ResourceId, w.ResourceType, w.ComputerEnvironment, w.Solutions, w.VMUUID,
        w.ComputerPrivateIPs, 'Heartbeat' AS Type, w._ResourceId
        FROM memory.main.hb_raw h JOIN memory.main.hrw_workers w ON h.widx = w.widx
        WHERE {window('h')}{foreign_rows(sim, now, start, end, 'Heartbeat')}"""
    )
    cur.execute(
        f"""CREATE OR REPLACE TEMP VIEW "Perf" AS SELECT
        '{tenant}' AS TenantId, w.Computer,
        CASE p.kind WHEN 0 THEN w.CpuObject ELSE 'Memory' END AS ObjectName,
        CASE p.kind WHEN 0 THEN '% Processor Time' WHEN 1 THEN w.MemPctCounter ELSE w.MemAvailCounter END
            AS CounterName,
        CASE p.kind WHEN 0 THEN w.CpuInstance ELSE '' END AS InstanceName,
        CAST(NULL AS DOUBLE) AS "Min", CAST(NULL AS DOUBLE) AS "Max", CAST(NULL AS INTEGER) AS SampleCount,
        p.v AS CounterValue, p.t AS TimeGenerated, CAST(NULL AS TIMESTAMP) AS BucketStartTime,
        CAST(NULL AS TIMESTAMP) AS BucketEndTime, w.SourceSystem,
        '\\\\' || w.Computer || '\\' ||
            CASE p.kind WHEN 0 THEN w.CpuObject || '(' || w.CpuInstance || ')' ELSE 'Memory' END || '\\' ||
            CASE p.kind WHEN 0 THEN '% Processor Time' WHEN 1 THEN w.MemPctCounter ELSE w.MemAvailCounter END
            AS CounterPath,
        CAST(NULL AS DOUBLE) AS StandardDeviation, w.MG, 'Perf' AS Type, w._ResourceId
        FROM memory.main.perf_raw p JOIN memory.main.hrw_workers w ON p.widx = w.widx
        WHERE NOT w.Insights AND {window('p')}{foreign_rows(sim, now, start, end, 'Perf')}"""
    )
    cur.execute(insights_view(tenant, window('p')))
    tls = TLS_DESCRIPTION.format(host=f"{tenant}.oms.opinsights.azure.com").replace("'", "''")
    cur.execute(
        f"""CREATE OR REPLACE TEMP VIEW "Event" AS SELECT
        '{tenant}' AS TenantId, 'OpsManager' AS SourceSystem, e.t AS TimeGenerated,
        CASE e.eid WHEN 7036 THEN 'Service Control Manager' ELSE 'HealthService' END AS Source,
        CASE e.eid WHEN 7036 THEN 'System' ELSE 'Operations Manager' END AS EventLog,
        w.Computer,
        CASE e.eid WHEN 4502 THEN 1 ELSE 4 END AS EventLevel,
        CASE e.eid WHEN 4502 THEN 'Error' ELSE 'Information' END AS EventLevelName,
        '' AS ParameterXml, '' AS EventData, e.eid AS EventID,
        CASE e.eid WHEN 4502 THEN '{tls}'
            WHEN 1210 THEN 'New configuration became active. Management group "' || w.ManagementGroupName || '".'
            ELSE 'The Microsoft Monitoring Agent service entered the running state.' END AS RenderedDescription,
        '' AS AzureDeploymentID, '' AS Role, 0 AS EventCategory, 'N/A' AS UserName, '' AS Message,
        w.MG, w.ManagementGroupName, 'Event' AS Type, w._ResourceId
        FROM memory.main.event_raw e JOIN memory.main.hrw_workers w ON e.widx = w.widx WHERE {window('e')}"""
    )


# ---------------------------------------------------------------------------------------- cells


def format_datetime(value: datetime) -> str:
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return f"{value:%Y-%m-%dT%H:%M:%S}.{value.microsecond:06d}0Z"


def format_timespan(value: timedelta) -> str:
    total_us = value.days * 86_400_000_000 + value.seconds * 1_000_000 + value.microseconds
    sign = "-" if total_us < 0 else ""
    total_us = abs(total_us)
    days, rem = divmod(total_us, 86_400_000_000)
    hours, rem = divmod(rem, 3_600_000_000)
    minutes, rem = divmod(rem, 60_000_000)
    seconds, micros = divmod(rem, 1_000_000)
    head = f"{days}." if days else ""
    return f"{sign}{head}{hours:02d}:{minutes:02d}:{seconds:02d}.{micros:06d}0"


def format_cell(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        return value
    if isinstance(value, datetime):
        return format_datetime(value)
    if isinstance(value, date):
        return format_datetime(datetime(value.year, value.month, value.day))
    if isinstance(value, timedelta):
        return format_timespan(value)
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, (list, tuple)):
        return [format_cell(v) for v in value]
    if isinstance(value, dict):
        return {str(k): format_cell(v) for k, v in value.items()}
    return str(value)


# ---------------------------------------------------------------------------------------- query


class QueryTimeout(Exception):
    """The query ran past its time limit (Log Analytics answers 504 GatewayTimeout)."""


def run_query(sim: FleetSimulation, query: str, *, now: datetime, start: datetime | None,
              end: datetime | None, max_rows: int = MAX_ROWS, timeout: float | None = None) -> QueryResult:
    """Run ``query`` as Log Analytics would at ``now``; raises ``QueryError`` for what Azure refuses.

    ``timeout`` (seconds) interrupts a runaway query (a huge self-join) like the service's own limit.
    """
    if not isinstance(query, str) or not query.strip():
        raise QueryError("SyntaxError", "The query is empty")
    check_identifier_case(query)
    try:
        translated = duckdb_kql.to_sql(query, schema=SCHEMA, query_now=now.astimezone(UTC).replace(tzinfo=None))
    except duckdb_kql.KqlSyntaxError as exc:
        diag = (getattr(exc, "diagnostics", None) or [None])[0]
        line = getattr(getattr(diag, "span", None), "line", 1)
        col = getattr(getattr(diag, "span", None), "column", 0)
        raise QueryError(
            "SyntaxError", "A recognition error occurred in the query.",
            inner={"code": "SYN0002", "message": f"Query could not be parsed: {exc}", "line": line, "pos": col},
        ) from exc
    except duckdb_kql.KqlUnsupportedError as exc:
        raise QueryError("UnsupportedByEmulator", f"The local emulator does not support this query: {exc}") from exc
    except duckdb_kql.KqlError as exc:
        raise QueryError("SemanticError", f"A semantic error occurred: {exc}") from exc
    sql = str(translated)
    check_sources(sql)
    with sim.cursor() as cur:
        cur.execute("SET TimeZone='UTC'")
        _create_views(cur, sim, now, start, end)
        timer = threading.Timer(timeout, cur.interrupt) if timeout else None
        try:
            if timer:
                timer.start()
            rel = cur.sql(sql, params=translated.parameters or None)
            if rel is None:
                raise QueryError("SemanticError", "The query returned no table")
            columns = [(name, kusto_type(t)) for name, t in zip(rel.columns, rel.types, strict=True)]
            fetched = rel.limit(max_rows + 1).fetchall()
        except duckdb.InterruptException as exc:
            raise QueryTimeout(f"The query ran longer than {timeout} s") from exc
        except (duckdb.CatalogException, duckdb.BinderException) as exc:
            raise QueryError("SemanticError", f"A semantic error occurred: {str(exc).splitlines()[0]}") from exc
        except duckdb.Error as exc:
            raise QueryError("SemanticError", f"The query could not be run: {str(exc).splitlines()[0]}") from exc
        finally:
            if timer:
                timer.cancel()
    truncated = len(fetched) > max_rows
    rows = [[format_cell(v) for v in row] for row in fetched[:max_rows]]
    return QueryResult(columns=columns, rows=rows, truncated=truncated, total_rows=len(fetched))


def render_kind(query: str) -> str | None:
    m = re.search(r"\|\s*render\s+(\w+)", query)
    return m.group(1) if m else None
