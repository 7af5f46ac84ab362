"""Reading one Log Analytics window for a poll, at workspace scale.

1. **Only our machines.** A shared workspace may hold tens of thousands of other computers. Every
   query names our fleet's machines: by ``_ResourceId`` where the worker's ``vmResourceId`` is known,
   else by ``Computer``, at most ``MACHINES_PER_QUERY`` per query (``fleet_machines``).
2. **Never stuck on a partial result.** When Log Analytics answers with a partial result (its row or
   size limit, or a shard that did not answer), the slice is read again as two halves (split on a
   minute boundary), down to ``MIN_SLICE``; the partial rows are dropped since the halves re-read
   them. Every split is noted (the PollRun keeps the note). Only a slice of ``MIN_SLICE`` that is
   still partial is reported as partial, which the row limit alone cannot cause for one batch.
3. **VM insights.** CPU/memory: machines that Perf returned nothing for in a slice are asked again
   in ``InsightsMetrics`` (VM insights), whose rows have the same shape.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from workers.azure.queries import MACHINES_PER_QUERY
from workers.models import AutomationAccount, HybridWorker

if TYPE_CHECKING:  # the adapter imports the Azure SDK; load it only when a poll runs
    from workers.azure.client import AzureClient

MIN_SLICE = timedelta(minutes=1)
MAX_NOTES = 5  # per read: the first few splits are named, the rest counted
# The InsightsMetrics query asked for the machines a Perf query returned nothing for; and the bin of
# each kind (a slice is split on its bins only, so one bin's rows never straddle two slices).
INSIGHTS_FALLBACK = {"utilization": "insights_utilization", "utilization_hourly": "insights_utilization_hourly"}
HOURLY = {"utilization_hourly", "insights_utilization_hourly"}


@dataclass(frozen=True)
class Machine:
    name: str
    resource_id: str  # lower case; "" when the worker's vmResourceId is unknown

    def matches(self, computer: str, resource_id: str) -> bool:
        if self.resource_id and resource_id:
            return self.resource_id == resource_id.lower()
        return _host(self.name) == _host(computer)


def _host(name: str) -> str:
    return (name or "").strip().lower().split(".", 1)[0]


def fleet_machines(account: AutomationAccount) -> list[list[Machine]]:
    """The account's current workers as machines, in batches of at most ``MACHINES_PER_QUERY``."""
    seen: set[tuple[str, str]] = set()
    machines: list[Machine] = []
    rows = HybridWorker.objects.filter(group__account=account, removed_at__isnull=True).values_list("name", "vm_resource_id")
    for name, rid in rows.order_by("name", "pk"):
        rid = (rid or "").strip().lower()
        key = ("", rid) if rid else (name.strip().lower(), "")
        if key in seen or not (rid or name.strip()):
            continue
        seen.add(key)
        machines.append(Machine(name=name, resource_id=rid))
    return [machines[i:i + MACHINES_PER_QUERY] for i in range(0, len(machines), MACHINES_PER_QUERY)]


@dataclass
class LogRead:
    """Rows of one window for every batch; ``partial_error`` only if a minimal slice stayed partial."""

    collected: list = field(default_factory=list)
    partial_error: str | None = None
    splits: int = 0
    queries: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def rows(self) -> tuple:
        return tuple(self.collected)

    def note(self) -> str:
        if not self.splits:
            return ""
        shown = "; ".join(self.notes[:MAX_NOTES])
        more = f" (+{len(self.notes) - MAX_NOTES} more)" if len(self.notes) > MAX_NOTES else ""
        return f"{self.splits} slice(s) split in halves after a partial result: {shown}{more}"


def _midpoint(start: datetime, end: datetime, unit: timedelta = MIN_SLICE) -> datetime | None:
    """Half-way, on a whole ``unit`` (minute or hour: a bin's rows never straddle two slices); None if too short."""
    if end - start < 2 * unit:
        return None
    mid = start + (end - start) / 2
    mid = mid.replace(second=0, microsecond=0, minute=0 if unit >= timedelta(hours=1) else mid.minute)
    if mid - start < unit:
        mid += unit
    return mid if start < mid < end else None


def _read(client: AzureClient, kind: str, batch: list[Machine], start: datetime, end: datetime, out: LogRead) -> None:
    computers = [m.name for m in batch if not m.resource_id]
    resource_ids = [m.resource_id for m in batch if m.resource_id]
    answer = client.logs(kind, start=start, end=end, computers=computers, resource_ids=resource_ids)
    out.queries += 1
    if answer.partial_error is not None:
        mid = _midpoint(start, end, timedelta(hours=1) if kind in HOURLY else MIN_SLICE)
        if mid is not None:
            out.splits += 1
            out.notes.append(f"{start:%H:%M:%S}-{end:%H:%M:%S} ({answer.partial_error[:120]})")
            _read(client, kind, batch, start, mid, out)
            _read(client, kind, batch, mid, end, out)
            return
        out.partial_error = out.partial_error or answer.partial_error
    out.collected.extend(answer.rows)
    if kind in INSIGHTS_FALLBACK:
        _read_insights(client, INSIGHTS_FALLBACK[kind], batch, answer.rows, start, end, out)


def _read_insights(client: AzureClient, kind: str, batch: list[Machine], perf_rows: tuple, start: datetime, end: datetime,
                   out: LogRead) -> None:
    """Ask InsightsMetrics for the machines Perf had nothing for in [start, end)."""
    by_id = {r.resource_id.lower() for r in perf_rows if getattr(r, "resource_id", "")}
    by_host = {_host(r.computer) for r in perf_rows}
    missing = [m for m in batch if not ((m.resource_id and m.resource_id in by_id) or _host(m.name) in by_host)]
    if missing:
        _read(client, kind, missing, start, end, out)


def read_logs(client: AzureClient, kind: str, batches: list[list[Machine]], *, start: datetime, end: datetime) -> LogRead:
    """Every row of ``kind`` in [start, end) for these machines, split as needed (module docstring)."""
    out = LogRead()
    if not batches:
        # Nothing is asked (never "every computer"), so nothing proves the window was read: the poll
        # is not counted as fresh and its watermark stays until the inventory knows a worker.
        out.partial_error = "no current workers in this account to read Log Analytics for"
    for batch in batches:
        _read(client, kind, batch, start, end, out)
    return out
