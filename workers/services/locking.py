"""Multi-row writes to ``HybridWorker`` that cannot deadlock each other or move a value backwards.

Ingestion (per group, per account), heartbeat/utilization updates and status refreshes all write
many worker rows at once, possibly at the same time in different Celery processes. Each batch here
first locks its rows with ``SELECT ... FOR UPDATE ORDER BY id`` (every writer takes locks in the
same order, so no lock cycle can form on PostgreSQL; SQLite serialises writers with IMMEDIATE
transactions), then re-reads the guarded column under that lock, so "only if newer" checks are
exact even when two polls overlap.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from django.db import transaction

from workers.models import HybridWorker

BATCH = 1000


def update_workers_in_pk_order(
    values: Mapping[int, Mapping[str, Any]],
    fields: Sequence[str],
    *,
    keep_newer: str | None = None,
) -> int:
    """Write ``values[pk][field]`` for every pk, in batches, locking rows in primary-key order.

    With ``keep_newer`` (a datetime field), a row is written only when its new value is later than
    the stored one (or nothing is stored): a late, older answer never moves the worker backwards.
    Returns the number of rows written. Safe to run twice: the second run writes the same values.
    """
    if not values:
        return 0
    written = 0
    pks = sorted(values)
    for start in range(0, len(pks), BATCH):
        batch = pks[start : start + BATCH]
        with transaction.atomic():
            locked = HybridWorker.objects.select_for_update().filter(pk__in=batch).order_by("pk")
            if keep_newer:
                current: dict[int, datetime | None] = dict(locked.values_list("pk", keep_newer))
                batch = [
                    pk
                    for pk in batch
                    if pk in current
                    and values[pk][keep_newer] is not None
                    and (current[pk] is None or values[pk][keep_newer] > current[pk])
                ]
            else:
                present = set(locked.values_list("pk", flat=True))
                batch = [pk for pk in batch if pk in present]
            objs = []
            for pk in batch:
                obj = HybridWorker(pk=pk)
                for name in fields:
                    setattr(obj, name, values[pk][name])
                objs.append(obj)
            if objs:
                HybridWorker.objects.bulk_update(objs, list(fields))
            written += len(objs)
    return written
