"""Ingest Automation jobs by ``(account, job_id)``: queue and run time, group, and the worker when certain.

See ``workers.fleet.ingest`` for what every ingest function guarantees.
"""
from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime

from workers.azure.records import JobRecord
from workers.fleet.ingest import BATCH, IngestResult, clip
from workers.models import AutomationAccount, HybridWorker, Job, WorkerGroup

log = logging.getLogger(__name__)


def _seconds(later: datetime | None, earlier: datetime | None) -> float | None:
    """Seconds from ``earlier`` to ``later`` (never negative), or None when either is unknown."""
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
    (``last_modified_at`` earlier) is ignored, so an overlapping window never rolls a job back. An
    exception once read is kept when a later list item (which carries none) is ingested.
    """
    groups: dict[str, int] = {}
    for pk, name, removed_at in WorkerGroup.objects.filter(account=account).values_list("pk", "name", "removed_at"):
        if removed_at is None or name.lower() not in groups:
            groups[name.lower()] = pk
    members: dict[int, list[int]] = {}
    for pk, member_group_id in HybridWorker.objects.filter(group__account=account, removed_at__isnull=True).values_list("pk", "group_id"):
        members.setdefault(member_group_id, []).append(pk)
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
            job_id: (modified, worker_id, exception)
            for job_id, modified, worker_id, exception in Job.objects.filter(account=account, job_id__in=ids).values_list(
                "job_id", "last_modified_at", "worker_id", "exception"
            )
        }
        objs = []
        for job_id in ids:
            rec = unique[job_id]
            old_modified, old_worker, old_exception = stored.get(job_id, (None, None, ""))
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
                    job_id=clip(job_id, "job_id", Job),
                    runbook=clip(rec.runbook, "runbook", Job),
                    status=clip(rec.status or "Unknown", "status", Job),
                    run_on=clip(rec.run_on, "run_on", Job),
                    group_id=group_id,
                    worker_id=worker_id,
                    started_by=clip(rec.started_by, "started_by", Job),
                    provisioning_state=clip(rec.provisioning_state, "provisioning_state", Job),
                    created_at=rec.created_at,
                    started_at=rec.started_at,
                    ended_at=rec.ended_at,
                    last_modified_at=rec.last_modified_at,
                    queue_seconds=_seconds(rec.started_at, rec.created_at),
                    duration_seconds=_seconds(rec.ended_at, rec.started_at),
                    # List items carry no exception (only a GET of the job does): never blank a read one.
                    exception=rec.exception or old_exception or "",
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
    """``a`` is at least as new as ``b`` (an unknown ``b`` is older than anything)."""
    return b is None or (a is not None and a >= b)
