"""What the live pages add on top of the fleet's rows: the workers under CPU/memory pressure now
(``workers.rules.pressure``: the one pair of limits), and whether a worker's utilization reading
is current or only its last known value."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Q

from workers.models import HybridWorker, WorkerStatus
from workers.rules.pressure import UTILIZATION_RECENT, PressureLimits, is_recent


@dataclass(frozen=True)
class PressureWorker:
    id: int
    name: str
    group_id: int
    group_name: str
    cpu_pct: float | None
    mem_pct: float | None
    utilization_at: datetime
    cpu_high: bool
    mem_high: bool


def pressure_workers(*, now: datetime, limits: PressureLimits, limit: int = 50) -> list[PressureWorker]:
    """Live workers whose latest CPU/memory sample is recent (``UTILIZATION_RECENT``) and at or above
    a pressure limit, highest first. One query."""
    rows = (
        HybridWorker.objects.filter(
            removed_at__isnull=True, group__removed_at__isnull=True, utilization_at__gte=now - UTILIZATION_RECENT,
            utilization_at__lte=now,
        )
        .filter(Q(cpu_pct__gte=limits.cpu_pct) | Q(mem_pct__gte=limits.mem_pct))
        .values_list("pk", "name", "group_id", "group__name", "cpu_pct", "mem_pct", "utilization_at")
    )
    found = [
        PressureWorker(pk, name, gid, gname, cpu, mem, at, limits.cpu_high(cpu), limits.mem_high(mem))
        for pk, name, gid, gname, cpu, mem, at in rows
        if at is not None and is_recent(at, now=now) and limits.high(cpu, mem)
    ]
    found.sort(key=lambda w: (-max(w.cpu_pct or 0.0, w.mem_pct or 0.0), w.name))
    return found[:limit]


def utilization_is_current(worker: HybridWorker, *, now: datetime) -> bool:
    """Whether the worker's CPU/memory figures describe it now: it is online and the sample is recent.
    Otherwise the pages show them as last known, with their age."""
    return worker.status == WorkerStatus.ONLINE and is_recent(worker.utilization_at, now=now)
