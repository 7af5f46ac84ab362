"""Ingestion: turn the adapter's records into rows, idempotently.

Every function upserts by the natural key (ARM id, ``(account, job_id)``, ``(worker, ts)``) in
batches with ``bulk_create(update_conflicts=True)``, which is ``INSERT ... ON CONFLICT DO UPDATE``
on both PostgreSQL and SQLite. Feeding the same records twice, or two overlapping windows, leaves
the same rows. One malformed record is logged and skipped; it never sinks the batch. No per-row
queries: a poll of 10,000 workers costs a handful of statements per batch.

Called by ``workers.fleet.polling`` (one function per poll kind) and by tests with hand-built
records.
"""
from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction

from workers.models import (
    AutomationAccount,
    HybridWorker,
    Job,
    SignalSource,
    UtilizationSample,
    WorkerGroup,
)
from workers.azure.records import AgentEventRecord, GroupRecord, HeartbeatRecord, JobRecord, UtilizationRecord, WorkerRecord, finite_float
from workers.fleet import signal_spans
from workers.fleet.locking import update_workers_in_pk_order

log = logging.getLogger(__name__)

BATCH = 1000
TLS_INTERCEPTION_EVENT_ID = 4502


@dataclass(frozen=True)
class IngestResult:
    rows: int  # records written (inserted or updated)
    skipped: int = 0  # malformed, unmatched or stale records
    removed: int = 0  # rows newly marked removed (groups/workers no longer listed)
    revived: int = 0  # removed rows listed again


def _clip(value: str | None, field_name: str, model: type) -> str:
    """Fit a string into its column so one long Azure value cannot fail a whole batch."""
    text = value or ""
    limit = model._meta.get_field(field_name).max_length
    return text[:limit] if limit else text


# --- groups and workers ---------------------------------------------------------------------------


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
            azure_id=_clip(azure_id, "azure_id", WorkerGroup),
            name=_clip(rec.name, "name", WorkerGroup),
            group_type=_clip(rec.group_type or "User", "group_type", WorkerGroup),
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
            azure_id=_clip(azure_id, "azure_id", HybridWorker),
            worker_id=_clip(rec.worker_id, "worker_id", HybridWorker),
            name=_clip(rec.name, "name", HybridWorker),
            ip=_clip(rec.ip, "ip", HybridWorker),
            worker_type=_clip(rec.worker_type, "worker_type", HybridWorker),
            vm_resource_id=_clip(rec.vm_resource_id, "vm_resource_id", HybridWorker),
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
        signal_spans.tolerance(SignalSource.AUTOMATION, group.grace_seconds),
        not_before=now - timedelta(days=settings.UTILIZATION_RETENTION_DAYS),
    )


# --- jobs -------------------------------------------------------------------------------------------


def _seconds(later: datetime | None, earlier: datetime | None) -> float | None:
    if later is None or earlier is None:
        return None
    # Clock skew between Azure's stamps can make a tiny negative; a job cannot wait negative time.
    return max(0.0, (later - earlier).total_seconds())


def ingest_jobs(account: AutomationAccount, records: Sequence[JobRecord], *, now: datetime) -> IngestResult:
    """Upsert jobs by ``(account, job_id)``.

    ``run_on`` maps to the account's group (case-insensitively, as ARM names are); queue and run
    time are computed; ``worker`` is attributed only when certain: the group had exactly one member
    when the job was ingested (Azure does not say which member ran it), and an earlier attribution
    is kept. A job seen again with a new status is updated; an answer older than the stored row
    (``last_modified_at`` earlier) is ignored, so an overlapping window never rolls a job back.
    """
    groups: dict[str, int] = {}
    for pk, name, removed_at in WorkerGroup.objects.filter(account=account).values_list("pk", "name", "removed_at"):
        if removed_at is None or name.lower() not in groups:
            groups[name.lower()] = pk
    members: dict[int, list[int]] = {}
    for pk, group_id in HybridWorker.objects.filter(group__account=account, removed_at__isnull=True).values_list("pk", "group_id"):
        members.setdefault(group_id, []).append(pk)
    single = {group_id: pks[0] for group_id, pks in members.items() if len(pks) == 1}

    rows = 0
    skipped = 0
    unique: dict[str, JobRecord] = {}
    for rec in records:
        if not rec.job_id or rec.created_at is None:
            log.warning("skipping job record without id or creation time: %r", rec)
            skipped += 1
            continue
        prior = unique.get(rec.job_id)
        if prior is None or _later(rec.last_modified_at, prior.last_modified_at):
            unique[rec.job_id] = rec
    batch_ids = sorted(unique)
    for start in range(0, len(batch_ids), BATCH):
        ids = batch_ids[start : start + BATCH]
        stored = {
            job_id: (modified, worker_id)
            for job_id, modified, worker_id in Job.objects.filter(account=account, job_id__in=ids).values_list(
                "job_id", "last_modified_at", "worker_id"
            )
        }
        objs = []
        for job_id in ids:
            rec = unique[job_id]
            old_modified, old_worker = stored.get(job_id, (None, None))
            if old_modified is not None and rec.last_modified_at is not None and rec.last_modified_at < old_modified:
                skipped += 1
                continue
            group_id = groups.get(rec.run_on.lower()) if rec.run_on else None
            worker_id = old_worker
            if worker_id is None and group_id is not None and rec.started_at is not None:
                worker_id = single.get(group_id)
            objs.append(
                Job(
                    account=account,
                    job_id=_clip(job_id, "job_id", Job),
                    runbook=_clip(rec.runbook, "runbook", Job),
                    status=_clip(rec.status or "Unknown", "status", Job),
                    run_on=_clip(rec.run_on, "run_on", Job),
                    group_id=group_id,
                    worker_id=worker_id,
                    started_by=_clip(rec.started_by, "started_by", Job),
                    provisioning_state=_clip(rec.provisioning_state, "provisioning_state", Job),
                    created_at=rec.created_at,
                    started_at=rec.started_at,
                    ended_at=rec.ended_at,
                    last_modified_at=rec.last_modified_at,
                    queue_seconds=_seconds(rec.started_at, rec.created_at),
                    duration_seconds=_seconds(rec.ended_at, rec.started_at),
                    exception=rec.exception or "",
                )
            )
        Job.objects.bulk_create(
            objs,
            update_conflicts=True,
            unique_fields=["account", "job_id"],
            update_fields=[
                "runbook", "status", "run_on", "group", "worker", "started_by", "provisioning_state",
                "created_at", "started_at", "ended_at", "last_modified_at", "queue_seconds",
                "duration_seconds", "exception",
            ],
        )
        rows += len(objs)
    return IngestResult(rows=rows, skipped=skipped)


def _later(a: datetime | None, b: datetime | None) -> bool:
    return b is None or (a is not None and a >= b)


# --- Log Analytics ----------------------------------------------------------------------------------


class _ComputerIndex:
    """Heartbeat/Perf/Event ``Computer`` -> current workers of the account, case-insensitively.

    An exact (lower-cased) match wins; otherwise the host part before the first dot is tried on
    both sides, since an agent may report an FQDN where Automation shows the short name.
    """

    def __init__(self, account: AutomationAccount) -> None:
        self.exact: dict[str, list[int]] = {}
        self.short: dict[str, list[int]] = {}
        for pk, name in HybridWorker.objects.filter(group__account=account, removed_at__isnull=True).values_list("pk", "name"):
            key = name.strip().lower()
            self.exact.setdefault(key, []).append(pk)
            self.short.setdefault(key.split(".", 1)[0], []).append(pk)

    def find(self, computer: str) -> list[int]:
        key = (computer or "").strip().lower()
        if not key:
            return []
        return self.exact.get(key) or self.short.get(key.split(".", 1)[0], [])


def ingest_heartbeats(account: AutomationAccount, records: Iterable[HeartbeatRecord]) -> IngestResult:
    """Set each matched worker's latest heartbeat and agent facts, and record it as a Heartbeat
    signal span (``signal_spans.record_signal``, in each batch's transaction, under its row locks).

    ``last_heartbeat_at`` never moves backwards: the comparison runs under a row lock, so an
    overlapping or late poll cannot undo a newer one. Unmatched computers are counted as skipped.
    """
    index = _ComputerIndex(account)
    latest: dict[int, HeartbeatRecord] = {}
    skipped = 0
    for rec in records:
        pks = index.find(rec.computer)
        if not pks or rec.time_generated is None:
            skipped += 1
            continue
        for pk in pks:
            if pk not in latest or rec.time_generated > latest[pk].time_generated:
                latest[pk] = rec
    values = {
        pk: {
            "last_heartbeat_at": rec.time_generated,
            "agent_version": _clip(rec.version, "agent_version", HybridWorker),
            "agent_category": _clip(rec.category, "agent_category", HybridWorker),
            "os_type": _clip(rec.os_type, "os_type", HybridWorker),
            "computer_ip": _clip(rec.computer_ip, "computer_ip", HybridWorker),
        }
        for pk, rec in latest.items()
    }
    # Workers whose group overrides the grace period get their own (capped) tolerance: usually none.
    graces: dict[int, int] = {}
    if latest:
        graces = dict(
            HybridWorker.objects.filter(group__account=account, group__grace_seconds__isnull=False, removed_at__isnull=True)
            .values_list("pk", "group__grace_seconds")
        )

    def record_spans(batch: list[int]) -> None:
        by_grace: dict[int | None, dict[int, datetime]] = {}
        for pk in batch:
            by_grace.setdefault(graces.get(pk), {})[pk] = latest[pk].time_generated
        for grace, observations in by_grace.items():
            signal_spans.record_signal(
                SignalSource.HEARTBEAT, observations, signal_spans.tolerance(SignalSource.HEARTBEAT, grace)
            )

    written = update_workers_in_pk_order(
        values, ["last_heartbeat_at", "agent_version", "agent_category", "os_type", "computer_ip"], keep_newer="last_heartbeat_at",
        after_batch=record_spans,
    )
    return IngestResult(rows=written, skipped=skipped)


def ingest_utilization(account: AutomationAccount, records: Iterable[UtilizationRecord]) -> IngestResult:
    """Upsert one-minute CPU/memory samples by ``(worker, ts)`` and the latest reading per worker.

    A re-read minute overwrites itself (same key), so overlapping windows leave one row per minute.
    """
    index = _ComputerIndex(account)
    samples: dict[tuple[int, datetime], tuple[float | None, float | None]] = {}
    skipped = 0
    for rec in records:
        cpu, mem = finite_float(rec.cpu_pct), finite_float(rec.mem_pct)
        pks = index.find(rec.computer)
        if not pks or rec.ts is None or (cpu is None and mem is None):
            skipped += 1
            continue
        ts = rec.ts.replace(second=0, microsecond=0)
        for pk in pks:
            samples[(pk, ts)] = (cpu, mem)
    keys = sorted(samples)
    # Each poll re-reads the overlap window: skip minutes already stored with the same values, so a
    # steady-state poll writes about one new row per worker instead of the whole window again.
    stored: set[tuple[int, datetime, float | None, float | None]] = set()
    if keys:
        window = UtilizationSample.objects.filter(
            worker__group__account=account, ts__gte=min(ts for _, ts in keys), ts__lte=max(ts for _, ts in keys)
        )
        stored = set(window.values_list("worker_id", "ts", "cpu_pct", "mem_pct").iterator(chunk_size=10000))
    objs = [
        UtilizationSample(worker_id=pk, ts=ts, cpu_pct=samples[(pk, ts)][0], mem_pct=samples[(pk, ts)][1])
        for pk, ts in keys
        if (pk, ts, *samples[(pk, ts)]) not in stored
    ]
    UtilizationSample.objects.bulk_create(
        objs, batch_size=BATCH * 5, update_conflicts=True, unique_fields=["worker", "ts"], update_fields=["cpu_pct", "mem_pct"]
    )
    # Latest reading per worker: the newest minute, each metric from its newest non-empty sample
    # (one minute may carry CPU but not yet memory).
    latest: dict[int, dict[str, object]] = {}
    for pk, ts in keys:  # sorted by ts within each worker
        cpu, mem = samples[(pk, ts)]
        row = latest.setdefault(pk, {"cpu_pct": None, "mem_pct": None})
        row["utilization_at"] = ts
        if cpu is not None:
            row["cpu_pct"] = cpu
        if mem is not None:
            row["mem_pct"] = mem
    update_workers_in_pk_order(latest, ["cpu_pct", "mem_pct", "utilization_at"], keep_newer="utilization_at")
    return IngestResult(rows=len(keys), skipped=skipped)


def ingest_agent_events(account: AutomationAccount, records: Iterable[AgentEventRecord]) -> IngestResult:
    """Set the event 4502 (TLS interception) count seen in this poll's window per worker.

    The window is the poll's (watermark minus overlap, to now): workers with no 4502 in it go
    back to 0, so the count always describes the recent past. ``last_4502_at`` only moves forward.
    Safe to run twice: the same window gives the same counts.
    """
    index = _ComputerIndex(account)
    counts: dict[int, int] = {}
    last: dict[int, datetime] = {}
    skipped = 0
    for rec in records:
        pks = index.find(rec.computer)
        if rec.event_id != TLS_INTERCEPTION_EVENT_ID or not pks or rec.count < 0:
            skipped += 1
            continue
        for pk in pks:
            counts[pk] = counts.get(pk, 0) + rec.count
            if rec.last_at is not None and (pk not in last or rec.last_at > last[pk]):
                last[pk] = rec.last_at
    stored = dict(
        HybridWorker.objects.filter(group__account=account)
        .filter(event_4502_count__gt=0)
        .values_list("pk", "last_4502_at")
    )
    stored.update(HybridWorker.objects.filter(pk__in=list(counts)).values_list("pk", "last_4502_at"))
    values: dict[int, dict[str, object]] = {}
    for pk, previous in stored.items():
        newest = last.get(pk)
        if previous is not None and (newest is None or previous > newest):
            newest = previous
        values[pk] = {"event_4502_count": counts.get(pk, 0), "last_4502_at": newest}
    update_workers_in_pk_order(values, ["event_4502_count", "last_4502_at"])
    return IngestResult(rows=len(counts), skipped=skipped)
