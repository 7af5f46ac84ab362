"""Ingest Automation's listings of worker groups and their workers (complete listings, by ARM id).

A group or worker missing from a listing is marked removed; one listed again is revived. Each
changed ``lastSeenDateTime`` is also recorded as an Automation signal span. See
``workers.fleet.ingest`` for what every ingest function guarantees.
"""
from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction

from workers.azure.records import GroupRecord, WorkerRecord
from workers.fleet import signal_spans
from workers.fleet.ingest import BATCH, IngestResult, clip
from workers.models import AutomationAccount, HybridWorker, SignalSource, WorkerGroup
from workers.rules.signals import tolerance

log = logging.getLogger(__name__)


def ingest_groups(account: AutomationAccount, records: Sequence[GroupRecord], *, now: datetime) -> IngestResult:
    """Upsert the account's worker groups; mark the ones no longer listed as removed.

    ``records`` must be a complete listing (the adapter never returns half a list). A group listed
    again after removal is revived (``removed_at`` cleared). Safe to run twice.
    """
    taken = dict(WorkerGroup.objects.filter(account=account).values_list("name", "azure_id"))
    taken_lower = {name.lower(): azure_id for name, azure_id in taken.items()}
    removed_before = set(
        WorkerGroup.objects.filter(account=account, removed_at__isnull=False).values_list("azure_id", flat=True)
    )
    objs: dict[str, WorkerGroup] = {}
    skipped = 0
    for rec in records:
        azure_id = (rec.azure_id or "").lower()
        if not azure_id or not rec.name:
            log.warning("skipping group record without id or name: %r", rec)
            skipped += 1
            continue
        owner = taken_lower.get(rec.name.lower())
        if owner is not None and owner != azure_id:
            log.warning("skipping group %r: its name already belongs to %s", rec.name, owner)
            skipped += 1
            continue
        objs[azure_id] = WorkerGroup(
            account=account,
            azure_id=clip(azure_id, "azure_id", WorkerGroup),
            name=clip(rec.name, "name", WorkerGroup),
            group_type=clip(rec.group_type or "User", "group_type", WorkerGroup),
            last_listed_at=now,
            removed_at=None,
        )
    with transaction.atomic():
        WorkerGroup.objects.bulk_create(
            list(objs.values()),
            batch_size=BATCH,
            update_conflicts=True,
            unique_fields=["azure_id"],
            update_fields=["name", "group_type", "last_listed_at", "removed_at"],
        )
        removed = (
            WorkerGroup.objects.filter(account=account, removed_at__isnull=True)
            .exclude(azure_id__in=list(objs))
            .update(removed_at=now)
        )
    return IngestResult(rows=len(objs), skipped=skipped, removed=removed, revived=len(removed_before & set(objs)))


def ingest_workers(group: WorkerGroup, records: Sequence[WorkerRecord], *, now: datetime) -> IngestResult:
    """Upsert one group's workers from a complete listing.

    Workers missing from the listing get ``removed_at = now``; a returning worker is revived.
    Existing rows are locked in primary-key order first, the same order every other multi-row
    writer uses, so concurrent polls cannot deadlock. Each listed ``lastSeenDateTime`` that differs
    from the stored one is also recorded as an Automation signal span
    (``signal_spans.record_signal``), in the same transaction; an unchanged one is already in a
    span (migration 0004 seeded spans from the values stored before). Safe to run twice.
    """
    objs: dict[str, HybridWorker] = {}
    skipped = 0
    for rec in records:
        azure_id = (rec.azure_id or "").lower()
        if not azure_id or not rec.name:
            log.warning("skipping worker record without id or name in group %s: %r", group.name, rec)
            skipped += 1
            continue
        objs[azure_id] = HybridWorker(
            group=group,
            azure_id=clip(azure_id, "azure_id", HybridWorker),
            worker_id=clip(rec.worker_id, "worker_id", HybridWorker),
            name=clip(rec.name, "name", HybridWorker),
            ip=clip(rec.ip, "ip", HybridWorker),
            worker_type=clip(rec.worker_type, "worker_type", HybridWorker),
            vm_resource_id=clip(rec.vm_resource_id, "vm_resource_id", HybridWorker),
            registered_at=rec.registered_at,
            last_seen_at=rec.last_seen_at,
            removed_at=None,
        )
    with transaction.atomic():
        existing = {
            azure_id: (pk, removed_at, last_seen_at)
            for pk, azure_id, removed_at, last_seen_at in HybridWorker.objects.select_for_update()
            .filter(group=group)
            .order_by("pk")
            .values_list("pk", "azure_id", "removed_at", "last_seen_at")
        }
        # Updates in pk order, then inserts: the same lock order as every other writer.
        ordered = sorted(objs.values(), key=lambda o: (existing.get(o.azure_id, (math.inf,))[0], o.azure_id))
        HybridWorker.objects.bulk_create(
            ordered,
            batch_size=BATCH,
            update_conflicts=True,
            unique_fields=["azure_id"],
            update_fields=[
                "group", "worker_id", "name", "ip", "worker_type", "vm_resource_id",
                "registered_at", "last_seen_at", "removed_at",
            ],
        )
        gone = [pk for azure_id, (pk, removed_at, _seen) in existing.items() if azure_id not in objs and removed_at is None]
        removed = HybridWorker.objects.filter(pk__in=gone).update(removed_at=now) if gone else 0
        # A lastSeen equal to the stored one is already in a span (recorded when it was stored).
        changed = [w for w in ordered if w.azure_id not in existing or existing[w.azure_id][2] != w.last_seen_at]
        _record_last_seen(group, changed, now=now)
    revived = sum(1 for azure_id in objs if azure_id in existing and existing[azure_id][1] is not None)
    return IngestResult(rows=len(objs), skipped=skipped, removed=removed, revived=revived)


def _record_last_seen(group: WorkerGroup, workers: Sequence[HybridWorker], *, now: datetime) -> None:
    """The listing's lastSeen values as Automation signal spans. ``bulk_create`` set the pks (it
    returns them on PostgreSQL and SQLite); if a backend did not, one query maps ARM ids to pks."""
    seen = [w for w in workers if w.last_seen_at is not None]
    if not seen:
        return
    if any(w.pk is None for w in seen):
        pks = dict(HybridWorker.objects.filter(azure_id__in=[w.azure_id for w in seen]).values_list("azure_id", "pk"))
        observations = {pks[w.azure_id]: w.last_seen_at for w in seen if w.azure_id in pks}
    else:
        observations = {w.pk: w.last_seen_at for w in seen}
    signal_spans.record_signal(
        SignalSource.AUTOMATION,
        observations,
        tolerance(SignalSource.AUTOMATION, group.grace_seconds),
        not_before=now - timedelta(days=settings.UTILIZATION_RETENTION_DAYS),
    )
