"""Azure Monitor platform metrics of the Automation account: ``HybridWorkerPing`` per worker.

The third liveness signal (``workers.rules.signals.PING``). Read with azure-mgmt-monitor's
``MonitorManagementClient.metrics.list`` (ARM ``GET {accountId}/providers/Microsoft.Insights/metrics``,
api-version 2024-02-01): one call per account per poll, split by the ``HybridWorker`` dimension with
the fixed filter ``HybridWorker eq '*'`` (nothing from outside is ever pasted into it), one-minute
grain, aggregation Total. The metric (Learn: "Supported metrics for Microsoft.Automation/
automationAccounts") counts pings with the dimensions HybridWorkerGroup, HybridWorker and
HybridWorkerVersion at PT1M; a bucket lands in the metrics store a few minutes late.

One of the SDK-importing modules (with ``client``, ``arm`` and ``machines``). Returns
``PingRecord``s; raises our ``AzureError`` / ``AzureTransientError``.
"""
from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from azure.core.exceptions import AzureError as _SdkAzureError
from azure.mgmt.monitor import MonitorManagementClient

from workers.azure.arm import arm_client_kwargs, make_credential, map_sdk_error, shared_throttle
from workers.azure.connection import ConnectionSettings
from workers.azure.records import PingRecord

logger = logging.getLogger(__name__)

METRIC = "HybridWorkerPing"
DIMENSION = "HybridWorker"
# A constant: the split is by every value of the dimension. Never built from stored or Azure strings.
SPLIT_FILTER = f"{DIMENSION} eq '*'"
# With a $filter the service returns only ``top`` series (default 10); an account holds at most
# 4,000 user + 4,000 system workers, so ask for all of them.
TOP = 10_000


def account_resource_id(conn: ConnectionSettings) -> str:
    """The Automation account's ARM id (the metrics' resource URI)."""
    return (
        f"/subscriptions/{conn.subscription_id}/resourceGroups/{conn.resource_group}"
        f"/providers/Microsoft.Automation/automationAccounts/{conn.automation_account}"
    )


def timespan(start: datetime, end: datetime) -> str:
    """ISO 8601 ``start/end`` in UTC, whole seconds (the metrics API's timespan form)."""
    fmt = "%Y-%m-%dT%H:%M:%SZ"
    return f"{start.astimezone(UTC).strftime(fmt)}/{end.astimezone(UTC).strftime(fmt)}"


def _text(value: Any) -> str:
    return str(getattr(value, "value", value) or "")


def parse_pings(response: Any) -> list[PingRecord]:
    """Per worker, the latest minute with pings, from a metrics ``Response`` (SDK model).

    A bucket counts when its total (or, failing that, count) is above zero; a bucket without values
    (no data) does not. Dimension names are matched case-insensitively (the service lower-cases
    them in answers). A series without the HybridWorker value is skipped; a worker with two series
    (several groups or versions) keeps its latest minute.
    """
    latest: dict[str, PingRecord] = {}
    for metric in getattr(response, "value", None) or []:
        if _text(getattr(metric.name, "value", None)).lower() != METRIC.lower():
            continue
        for series in metric.timeseries or []:
            worker = ""
            for meta in series.metadatavalues or []:
                if _text(getattr(meta.name, "value", "")).lower() == DIMENSION.lower():
                    worker = (meta.value or "").strip()
            if not worker:
                continue
            for point in series.data or []:
                pings = point.total if point.total is not None else point.count
                if not pings or pings <= 0 or point.time_stamp is None:
                    continue
                at = (point.time_stamp if point.time_stamp.tzinfo else point.time_stamp.replace(tzinfo=UTC)).astimezone(UTC)
                key = worker.lower()
                if key not in latest or latest[key].last_ping_at < at:
                    latest[key] = PingRecord(worker=worker[:260], last_ping_at=at, pings=float(pings))
    return sorted(latest.values(), key=lambda r: r.worker.lower())


class PingReader:
    """Reads ``HybridWorkerPing`` of one account; use as a context manager."""

    def __init__(self, conn: ConnectionSettings, *, credential: Any = None) -> None:
        self.conn = conn
        self._credential = credential
        self._client: Any = None

    def _cred(self) -> Any:
        if self._credential is None:
            self._credential = make_credential(self.conn)
        return self._credential

    def _monitor(self) -> Any:
        if self._client is None:
            self._client = MonitorManagementClient(
                self._cred(), self.conn.subscription_id, **arm_client_kwargs(self.conn, shared_throttle(self.conn))
            )
        return self._client

    def read(self, *, start: datetime, end: datetime) -> list[PingRecord]:
        """The latest ping minute of every worker that pinged between ``start`` and ``end``. One call."""
        try:
            response = self._monitor().metrics.list(
                account_resource_id(self.conn),
                timespan=timespan(start, end),
                interval="PT1M",
                metricnames=METRIC,
                aggregation="Total",
                top=TOP,
                filter=SPLIT_FILTER,
                metricnamespace="Microsoft.Automation/automationAccounts",
            )
        except _SdkAzureError as exc:
            raise map_sdk_error(exc, f"reading the {METRIC} metric") from exc
        return parse_pings(response)

    def close(self) -> None:
        for thing in (self._client, self._credential):
            close = getattr(thing, "close", None)
            if callable(close):
                try:
                    close()
                except Exception as exc:  # closing must never mask the real outcome
                    logger.debug("closing a metrics client failed: %s", exc)
        self._client = None
        self._credential = None

    def __enter__(self) -> PingReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

