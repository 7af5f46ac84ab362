"""The Log Analytics queries a poll can ask by name: what each is called in errors, its builder, its row parser.

``AzureClient.logs(kind, ...)`` runs one of them restricted to a set of machines (computer names and
``_ResourceId`` values; see ``workers.azure.queries.machine_clause``). Pure: no SDK, no I/O.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, Protocol

from workers.azure.parse import (
    Row,
    parse_agent_event_row,
    parse_heartbeat_row,
    parse_utilization_hour_row,
    parse_utilization_row,
)
from workers.azure.probes import heartbeat_volume_query, insights_volume_query, parse_volume_row, perf_volume_query
from workers.azure.queries import (
    agent_events_query,
    heartbeat_query,
    insights_utilization_hourly_query,
    insights_utilization_query,
    utilization_hourly_query,
    utilization_query,
)


class QueryBuilder(Protocol):
    def __call__(
        self, start: datetime, end: datetime, computers: Sequence[str] | None = None, *, resource_ids: Sequence[str] | None = None
    ) -> str | None: ...


LOG_QUERIES: dict[str, tuple[str, QueryBuilder, Callable[[Row], Any]]] = {
    "latest_heartbeats": ("latest heartbeats", heartbeat_query, parse_heartbeat_row),
    "utilization": ("utilization", utilization_query, parse_utilization_row),
    "insights_utilization": ("VM insights utilization", insights_utilization_query, parse_utilization_row),
    "utilization_hourly": ("hourly utilization", utilization_hourly_query, parse_utilization_hour_row),
    "insights_utilization_hourly": ("hourly VM insights utilization", insights_utilization_hourly_query, parse_utilization_hour_row),
    "agent_events": ("agent events", agent_events_query, parse_agent_event_row),
    # manage.py doctor's counts (workers.azure.probes)
    "heartbeat_volume": ("count of Heartbeat rows", heartbeat_volume_query, parse_volume_row),
    "perf_volume": ("count of Perf rows", perf_volume_query, parse_volume_row),
    "insights_volume": ("count of InsightsMetrics rows", insights_volume_query, parse_volume_row),
}
