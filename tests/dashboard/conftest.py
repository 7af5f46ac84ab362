"""Fixtures for page and API tests: a logged-in client, tokens, and fleets built with bulk_create."""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import pytest
from django.test import Client

from dashboard.auth import issue_token
from workers.models import (
    AutomationAccount,
    HybridWorker,
    Job,
    PollKind,
    PollRun,
    StatusChange,
    UtilizationHourly,
    UtilizationSample,
    WorkerGroup,
    WorkerStatus,
)

NOW = datetime(2026, 11, 20, 12, 0, 0, tzinfo=timezone.utc)


@pytest.fixture
def now():
    """A frozen clock at NOW for every test that reads ages or windows."""
    import time_machine

    with time_machine.travel(NOW, tick=False):
        yield NOW


@pytest.fixture
def user(django_user_model):
    return django_user_model.objects.create_user("alice", password="pw-not-secret-123")


@pytest.fixture
def client_in(client: Client, user) -> Client:
    client.force_login(user)
    return client


@pytest.fixture
def read_token(db) -> str:
    _token, raw = issue_token(name="wall")
    return raw


def make_account(name: str = "acct", *, workspace: str = "ws-1") -> AutomationAccount:
    return AutomationAccount.objects.create(
        name=name, subscription_id="sub", resource_group="rg", automation_account=name, workspace_id=workspace
    )


def record_polls(account: AutomationAccount, *, at: datetime, ok: bool = True, error: str = "", kinds=None) -> None:
    """Finished PollRuns as the polling services write them: worker polls once per group (scope =
    group name), the other kinds once per account."""
    kinds = kinds or [PollKind.WORKERS, PollKind.JOBS, PollKind.HEARTBEAT]
    group_names = list(account.groups.values_list("name", flat=True)) or [""]
    runs = []
    for kind in kinds:
        for scope in group_names if kind == PollKind.WORKERS else [""]:
            runs.append(PollRun(account=account, kind=kind, scope=scope, started_at=at - timedelta(seconds=2),
                                finished_at=at, ok=ok, error=error, rows=1))
    PollRun.objects.bulk_create(runs)


@dataclass
class Fleet:
    account: AutomationAccount
    groups: list[WorkerGroup]
    workers: list[HybridWorker]


def build_fleet(
    *, groups: int, workers_per_group: int, now: datetime, jobs_per_group: int = 3, statuses=None, account=None,
    group_names=None,
) -> Fleet:
    """A fleet written with bulk_create: ``groups`` groups of ``workers_per_group`` workers each,
    member statuses cycling through ``statuses``, a few jobs per group and a day of hourly utilization
    for the first member of each group."""
    account = account or make_account()
    statuses = statuses or [WorkerStatus.ONLINE]
    names = group_names or [f"group-{i:04d}" for i in range(groups)]
    group_rows = WorkerGroup.objects.bulk_create([
        WorkerGroup(account=account, azure_id=f"/sub/rg/{account.name}/g/{uuid.uuid4()}", name=names[i], group_type="User")
        for i in range(groups)
    ])
    worker_rows = []
    n = 0
    for g in group_rows:
        for _ in range(workers_per_group):
            status = statuses[n % len(statuses)]
            worker_rows.append(HybridWorker(
                group=g, azure_id=f"{g.azure_id}/w/{uuid.uuid4()}", worker_id=str(uuid.uuid4()), name=f"host-{g.pk}-{n}",
                worker_type="HybridV2", os_type="Windows", agent_version="1.1.0", status=status,
                last_seen_at=now - timedelta(seconds=40), last_heartbeat_at=now - timedelta(seconds=70),
                cpu_pct=20.0, mem_pct=40.0, utilization_at=now - timedelta(minutes=1),
            ))
            n += 1
    worker_rows = HybridWorker.objects.bulk_create(worker_rows, batch_size=2000)
    jobs = []
    for g in group_rows:
        for k in range(jobs_per_group):
            created = now - timedelta(hours=1, minutes=k)
            status = ["Completed", "Failed", "Suspended", "Running"][k % 4]
            jobs.append(Job(
                account=account, job_id=str(uuid.uuid4()), runbook="Patch-Servers", status=status, run_on=g.name, group=g,
                created_at=created, started_at=created + timedelta(seconds=10 + k), queue_seconds=10.0 + k,
                ended_at=created + timedelta(seconds=70), duration_seconds=60.0 - k,
            ))
    Job.objects.bulk_create(jobs, batch_size=2000)
    first_members = {}
    for w in worker_rows:
        first_members.setdefault(w.group_id, w)
    UtilizationHourly.objects.bulk_create([
        UtilizationHourly(worker=w, hour=now - timedelta(hours=h), cpu_avg=30.0 + h, cpu_max=50.0, mem_avg=40.0, mem_max=60.0, samples=60)
        for w in first_members.values() for h in range(1, 4)
    ])
    return Fleet(account=account, groups=group_rows, workers=worker_rows)


@pytest.fixture
def small_fleet(db, now) -> Fleet:
    fleet = build_fleet(groups=3, workers_per_group=2, now=now, statuses=[WorkerStatus.ONLINE, WorkerStatus.OFFLINE])
    record_polls(fleet.account, at=now - timedelta(seconds=20))
    w = fleet.workers[0]
    UtilizationSample.objects.bulk_create([
        UtilizationSample(worker=w, ts=now - timedelta(minutes=m), cpu_pct=25.0, mem_pct=45.0) for m in range(1, 30)
    ])
    StatusChange.objects.create(worker=w, old_status="online", new_status="offline", reason="Automation last seen 4 min ago", created_at=now - timedelta(hours=2))
    return fleet
