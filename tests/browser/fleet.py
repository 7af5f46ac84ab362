"""Fleets built straight through the ORM for the wall and browser tests (the emulator-driven fleet
lives in the browser tests that need the real pipeline). Everything is bulk-created, so a 500-group
fleet takes well under a second."""
from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from workers.models import AutomationAccount, HybridWorker, Job, PollKind, PollRun, WorkerGroup, WorkerStatus


@dataclass
class Fleet:
    account: AutomationAccount
    groups: list[WorkerGroup]
    workers: list[HybridWorker]


StatusRule = Callable[[int, int], str]


def all_online(group_index: int, worker_index: int) -> str:
    return WorkerStatus.ONLINE.value


def build_fleet(
    *,
    now: datetime,
    groups: int = 4,
    workers_per_group: int = 3,
    status: StatusRule = all_online,
    account_name: str = "acct-main",
    group_names: list[str] | None = None,
    polled: bool = True,
    poll_age_seconds: float = 10,
    workspace: bool = True,
) -> Fleet:
    """An account with ``groups`` groups of ``workers_per_group`` workers whose stored status comes
    from ``status(group_index, worker_index)``; with ``polled`` every poll kind succeeded
    ``poll_age_seconds`` before ``now`` (fresh data)."""
    account = AutomationAccount.objects.create(
        name=account_name, subscription_id="00000000-0000-0000-0000-000000000000", resource_group="rg",
        automation_account=account_name, workspace_id="ws-1" if workspace else "",
    )
    names = group_names or [f"hrw-{account_name}-{i:03d}" for i in range(groups)]
    group_rows = WorkerGroup.objects.bulk_create(
        [
            WorkerGroup(account=account, azure_id=f"/subscriptions/x/{account_name}/hybridrunbookworkergroups/{name.lower()}", name=name)
            for name in names
        ]
    )
    worker_rows = []
    for gi, group in enumerate(group_rows):
        for wi in range(workers_per_group):
            worker_rows.append(
                HybridWorker(
                    group=group, azure_id=f"{group.azure_id}/hybridrunbookworkers/w{wi}", worker_id=f"{gi:04d}-{wi:04d}",
                    name=f"{group.name}-vm{wi:02d}", worker_type="HybridV2", status=status(gi, wi),
                    last_seen_at=now - timedelta(seconds=20), registered_at=now - timedelta(days=30),
                )
            )
    worker_rows = HybridWorker.objects.bulk_create(worker_rows)
    if polled:
        record_polls(account, at=now - timedelta(seconds=poll_age_seconds))
    return Fleet(account=account, groups=list(group_rows), workers=list(worker_rows))


def record_polls(account: AutomationAccount, *, at: datetime, ok: bool = True, error: str = "") -> None:
    """One PollRun per kind the pages read freshness from, finished at ``at``."""
    PollRun.objects.bulk_create(
        [
            PollRun(account=account, kind=kind, started_at=at - timedelta(seconds=1), finished_at=at, duration_ms=1000, ok=ok, error=error)
            for kind in (PollKind.WORKERS, PollKind.JOBS, PollKind.HEARTBEAT)
        ]
    )


def add_jobs(group: WorkerGroup, *, now: datetime, queue_seconds: list[float | None], status: str = "Completed") -> list[Job]:
    """Jobs created in the last hour with the given queue delays (None = not started yet)."""
    jobs = []
    for i, delay in enumerate(queue_seconds):
        created = now - timedelta(minutes=30, seconds=i)
        started = created + timedelta(seconds=delay) if delay is not None else None
        jobs.append(
            Job(
                account=group.account, job_id=uuid.uuid4().hex, runbook="rb", status=status if started else "New",
                run_on=group.name, group=group, created_at=created, started_at=started, queue_seconds=delay,
            )
        )
    return Job.objects.bulk_create(jobs)
