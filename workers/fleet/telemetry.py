"""Ingest Log Analytics signals: heartbeats, one-minute CPU/memory samples and agent events.

Records name a ``Computer``, matched to the account's current workers by ``_ComputerIndex``;
unmatched ones are counted as skipped. Per-worker columns are written in primary-key order under
row locks (``workers.fleet.locking``); their timestamps never move backwards. See ``workers.fleet.ingest`` for
what every ingest function guarantees.
"""
from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import cast

from workers.azure.parse import finite_float
from workers.azure.records import (
    AgentEventRecord,
    HeartbeatRecord,
    UtilizationHourRecord,
    UtilizationRecord,
)
from workers.fleet import signal_spans
from workers.fleet.ingest import BATCH, IngestResult, clip
from workers.fleet.locking import update_workers_in_pk_order
from workers.models import (
    AutomationAccount,
    HybridWorker,
    SignalSource,
    UtilizationHourly,
    UtilizationSample,
)
from workers.rules.signals import tolerance

TLS_INTERCEPTION_EVENT_ID = 4502


class _ComputerIndex:
    """Heartbeat/Perf/Event row -> current workers of the account.

    The row's ``_ResourceId`` first: it equals a V2 worker's ``vmResourceId`` (case-insensitively)
    whatever name the machine reports. Then its ``Computer``, case-insensitively: an exact match
    wins; otherwise the host part before the first dot is tried on both sides, since an agent may
    report an FQDN where Automation shows the short name.
    """

    def __init__(self, account: AutomationAccount) -> None:
        self.exact: dict[str, list[int]] = {}
        self.short: dict[str, list[int]] = {}
        self.resource: dict[str, list[int]] = {}
        workers = HybridWorker.objects.filter(group__account=account, removed_at__isnull=True)
        for pk, name, rid in workers.values_list("pk", "name", "vm_resource_id"):
            key = name.strip().lower()
            self.exact.setdefault(key, []).append(pk)
            self.short.setdefault(key.split(".", 1)[0], []).append(pk)
            if rid and rid.strip():
                self.resource.setdefault(rid.strip().lower(), []).append(pk)

    def find(self, computer: str, resource_id: str = "") -> list[int]:
        """The workers a row names by ``_ResourceId`` or ``Computer`` (usually one; none when unknown)."""
        by_resource = self.resource.get((resource_id or "").strip().lower()) if resource_id else None
        if by_resource:
            return by_resource
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
        pks = index.find(rec.computer, rec.resource_id)
        if not pks or rec.time_generated is None:
            skipped += 1
            continue
        for pk in pks:
            if pk not in latest or rec.time_generated > latest[pk].time_generated:
                latest[pk] = rec
    values = {
        pk: {
            "last_heartbeat_at": rec.time_generated,
            "agent_version": clip(rec.version, "agent_version", HybridWorker),
            "agent_category": clip(rec.category, "agent_category", HybridWorker),
            "os_type": clip(rec.os_type, "os_type", HybridWorker),
            "computer_ip": clip(rec.computer_ip, "computer_ip", HybridWorker),
        }
        for pk, rec in latest.items()
    }
    # Workers whose group overrides the grace period get their own (capped) tolerance: usually none.
    graces: dict[int, int] = {}
    if latest:
        # group__grace_seconds__isnull=False: every grace is an int (the stubs type it int | None).
        graces = dict(cast(
            "Iterable[tuple[int, int]]",
            HybridWorker.objects.filter(group__account=account, group__grace_seconds__isnull=False, removed_at__isnull=True)
            .values_list("pk", "group__grace_seconds"),
        ))

    def record_spans(batch: list[int]) -> None:
        by_grace: dict[int | None, dict[int, datetime]] = {}
        for pk in batch:
            by_grace.setdefault(graces.get(pk), {})[pk] = latest[pk].time_generated
        for grace, observations in by_grace.items():
            signal_spans.record_signal(
                SignalSource.HEARTBEAT, observations, tolerance(SignalSource.HEARTBEAT, grace)
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
        pks = index.find(rec.computer, rec.resource_id)
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


def ingest_utilization_hourly(account: AutomationAccount, records: Iterable[UtilizationHourRecord]) -> IngestResult:
    """Upsert hourly CPU/memory rows by ``(worker, hour)``, as the workspace summarised them.

    The history backfill reads weeks this way; the hours it writes are the same rows
    ``rollup_utilization`` would build from the minutes, which stay unread (and unstored) there.
    """
    index = _ComputerIndex(account)
    hours: dict[tuple[int, datetime], UtilizationHourRecord] = {}
    skipped = 0
    for rec in records:
        pks = index.find(rec.computer)
        if not pks or rec.minutes < 1:
            skipped += 1
            continue
        hour = rec.hour.replace(minute=0, second=0, microsecond=0)
        for pk in pks:
            hours[(pk, hour)] = rec
    objs = [
        UtilizationHourly(worker_id=pk, hour=hour, cpu_avg=finite_float(r.cpu_avg), cpu_max=finite_float(r.cpu_max),
                          mem_avg=finite_float(r.mem_avg), mem_max=finite_float(r.mem_max), samples=r.minutes)
        for (pk, hour), r in sorted(hours.items())
    ]
    UtilizationHourly.objects.bulk_create(
        objs, batch_size=BATCH, update_conflicts=True, unique_fields=["worker", "hour"],
        update_fields=["cpu_avg", "cpu_max", "mem_avg", "mem_max", "samples"],
    )
    return IngestResult(rows=len(objs), skipped=skipped)


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
