"""One full poll cycle at fleet scale, through the ingestion services (no Azure): correct row counts,
and a second cycle that changes nothing writes no StatusChange. Timings are printed, never asserted.

``HRW_SCALE_WORKERS`` sets the fleet size (default 2,000; the issue's target is 10,000 in <= 10 s on
PostgreSQL: run with ``HRW_SCALE_WORKERS=10000 pytest tests/fleet/test_ingest_scale.py -s``).
"""
from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta

import pytest

from workers.azure.records import AgentEventRecord, GroupRecord, HeartbeatRecord, JobRecord, UtilizationRecord, WorkerRecord
from workers.fleet.inventory import ingest_groups, ingest_workers
from workers.fleet.jobs import ingest_jobs
from workers.fleet.status import refresh_statuses
from workers.fleet.telemetry import ingest_agent_events, ingest_heartbeats, ingest_utilization
from workers.models import AutomationAccount, HybridWorker, Job, StatusChange, UtilizationSample, WorkerGroup

WORKERS = int(os.environ.get("HRW_SCALE_WORKERS", "2000"))
PER_GROUP = 20
GROUPS = max(1, WORKERS // PER_GROUP)
NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)
BASE = "/subscriptions/s/resourcegroups/rg/providers/microsoft.automation/automationaccounts/scale/hybridrunbookworkergroups/"


def names() -> list[tuple[int, int]]:
    return [(g, i) for g in range(GROUPS) for i in range(PER_GROUP)]


def cycle(account: AutomationAccount, now: datetime) -> dict[str, float]:
    timings: dict[str, float] = {}
    t = time.perf_counter()
    ingest_groups(account, [GroupRecord(f"{BASE}g{g:04}", f"g{g:04}", "User") for g in range(GROUPS)], now=now)
    for group in WorkerGroup.objects.filter(account=account):
        g = int(group.name[1:])
        ingest_workers(group, [
            WorkerRecord(f"{BASE}g{g:04}/hybridrunbookworkers/w{g:04}-{i:02}", f"w{g:04}-{i:02}", group.name,
                         f"hrw-{g:04}-{i:02}", "10.0.0.1", now - timedelta(days=3), now - timedelta(seconds=5), "HybridV2", "")
            for i in range(PER_GROUP)
        ], now=now)
    timings["workers"] = time.perf_counter() - t
    t = time.perf_counter()
    ingest_heartbeats(account, [
        HeartbeatRecord(f"hrw-{g:04}-{i:02}", now - timedelta(seconds=30), "1.0", "Windows", "Direct Agent", "") for g, i in names()
    ])
    minutes = [now.replace(second=0) - timedelta(minutes=m) for m in range(11)]
    ingest_utilization(account, [
        UtilizationRecord(f"hrw-{g:04}-{i:02}", ts, float(ts.minute), 40.0) for g, i in names() for ts in minutes
    ])
    ingest_agent_events(account, [AgentEventRecord("hrw-0000-00", 4502, 2, now, now)])
    timings["logs"] = time.perf_counter() - t
    t = time.perf_counter()
    ingest_jobs(account, [
        JobRecord(f"job-{j}", "rb", "Completed", f"g{j % GROUPS:04}", "ops", "Succeeded", now - timedelta(minutes=5),
                  now - timedelta(minutes=4), now - timedelta(minutes=1), now - timedelta(minutes=1))
        for j in range(WORKERS // 5)
    ], now=now)
    timings["jobs"] = time.perf_counter() - t
    t = time.perf_counter()
    timings["changes"] = refresh_statuses(account.pk, now=now).changes
    timings["refresh"] = time.perf_counter() - t
    return timings


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.django_db
def test_a_fleet_scale_poll_cycle_is_complete_and_idempotent():
    account = AutomationAccount.objects.create(name="scale", subscription_id="s", resource_group="rg", automation_account="scale")
    first = cycle(account, NOW)
    second = cycle(account, NOW + timedelta(seconds=60))
    print(f"\n{WORKERS} workers: first cycle {first}; second cycle {second}")
    assert HybridWorker.objects.count() == WORKERS
    assert HybridWorker.objects.filter(status="online", last_heartbeat_at=NOW + timedelta(seconds=30)).count() == WORKERS
    assert UtilizationSample.objects.count() == WORKERS * 12
    assert Job.objects.count() == WORKERS // 5
    assert (first["changes"], second["changes"]) == (WORKERS, 0)
    assert StatusChange.objects.count() == WORKERS
