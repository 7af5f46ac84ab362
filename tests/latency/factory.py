"""Rows for the latency tests, written directly (bulk_create), as ingestion would leave them."""
from __future__ import annotations

import itertools
from datetime import datetime, timedelta

from workers.models import AutomationAccount, HybridWorker, Job, WorkerGroup

_ids = itertools.count(1)


def make_account(name: str = "acct") -> AutomationAccount:
    return AutomationAccount.objects.create(name=name, subscription_id="sub", resource_group="rg", automation_account=name)


def make_group(account: AutomationAccount, name: str) -> WorkerGroup:
    return WorkerGroup.objects.create(account=account, azure_id=f"/{account.name}/hybridrunbookworkergroups/{name}".lower(), name=name)


def make_worker(group: WorkerGroup, name: str) -> HybridWorker:
    return HybridWorker.objects.create(group=group, azure_id=f"{group.azure_id}/hybridrunbookworkers/{name}".lower(),
                                       worker_id=name, name=name)


def job(
    group: WorkerGroup | None,
    created_at: datetime,
    *,
    queue: float | None = None,
    duration: float | None = None,
    status: str = "Completed",
    runbook: str = "Patch-Servers",
    worker: HybridWorker | None = None,
    exception: str = "",
    modified_at: datetime | None = None,
    account: AutomationAccount | None = None,
) -> Job:
    """An unsaved Job; started/ended times follow from queue/duration."""
    started = created_at + timedelta(seconds=queue) if queue is not None else None
    ended = started + timedelta(seconds=duration) if (started is not None and duration is not None) else None
    if status == "Failed" and started is None and ended is None:
        ended = created_at
    return Job(
        account=account or group.account, job_id=f"job-{next(_ids):08d}", runbook=runbook, status=status,
        run_on=group.name if group else "", group=group, worker=worker, created_at=created_at, started_at=started,
        ended_at=ended, last_modified_at=modified_at or ended or started or created_at, queue_seconds=queue,
        duration_seconds=duration, exception=exception,
    )
