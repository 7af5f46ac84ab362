"""Ingestion from hand-built records: idempotent upserts, removal/revival, job updates, log matching."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from workers.azure.records import AgentEventRecord, GroupRecord, HeartbeatRecord, JobRecord, UtilizationRecord, WorkerRecord
from workers.fleet.inventory import ingest_groups, ingest_workers
from workers.fleet.jobs import ingest_jobs
from workers.fleet.telemetry import ingest_agent_events, ingest_heartbeats, ingest_utilization
from workers.models import AutomationAccount, HybridWorker, Job, UtilizationSample, WorkerGroup

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
ACCT = "/subscriptions/s/resourcegroups/rg/providers/microsoft.automation/automationaccounts/a"


def gid(name: str) -> str:
    return f"{ACCT}/hybridrunbookworkergroups/{name}".lower()


def group_rec(name: str, group_type: str = "User") -> GroupRecord:
    return GroupRecord(azure_id=gid(name), name=name, group_type=group_type)


def worker_rec(group: str, name: str, *, seen: datetime | None = NOW, worker_type: str = "HybridV2") -> WorkerRecord:
    return WorkerRecord(
        azure_id=f"{gid(group)}/hybridrunbookworkers/{name}-id",
        worker_id=f"{name}-id",
        group_name=group,
        name=name,
        ip="10.0.0.1",
        registered_at=NOW - timedelta(days=3),
        last_seen_at=seen,
        worker_type=worker_type,
        vm_resource_id="",
    )


def job_rec(job_id: str, *, run_on: str = "g1", status: str = "Completed", created: datetime = NOW - timedelta(minutes=10),
            started: datetime | None = NOW - timedelta(minutes=9), ended: datetime | None = NOW - timedelta(minutes=5),
            modified: datetime | None = None) -> JobRecord:
    return JobRecord(
        job_id=job_id,
        runbook="Patch-Servers",
        status=status,
        run_on=run_on,
        started_by="ops",
        provisioning_state="Succeeded",
        created_at=created,
        started_at=started,
        ended_at=ended,
        last_modified_at=modified or ended or started or created,
    )


@pytest.fixture
def account(db) -> AutomationAccount:
    return AutomationAccount.objects.create(name="a", subscription_id="s", resource_group="rg", automation_account="a")


@pytest.fixture
def g1(account) -> WorkerGroup:
    ingest_groups(account, [group_rec("g1")], now=NOW)
    return WorkerGroup.objects.get(name="g1")


def table(model, *fields):
    return sorted(model.objects.values_list(*fields))


# --- groups


def test_it_creates_groups(account):
    result = ingest_groups(account, [group_rec("g1"), group_rec("sys", "System")], now=NOW)
    assert result.rows == 2
    assert table(WorkerGroup, "name", "group_type", "last_listed_at") == [("g1", "User", NOW), ("sys", "System", NOW)]


def test_the_same_group_listing_twice_leaves_the_same_rows(account):
    ingest_groups(account, [group_rec("g1")], now=NOW)
    first = table(WorkerGroup, "pk", "azure_id", "name")
    ingest_groups(account, [group_rec("g1")], now=NOW)
    assert table(WorkerGroup, "pk", "azure_id", "name") == first


def test_it_marks_an_unlisted_group_removed_and_revives_it(account):
    ingest_groups(account, [group_rec("g1"), group_rec("g2")], now=NOW)
    assert ingest_groups(account, [group_rec("g1")], now=NOW).removed == 1
    assert WorkerGroup.objects.get(name="g2").removed_at == NOW
    result = ingest_groups(account, [group_rec("g1"), group_rec("g2")], now=NOW + timedelta(minutes=1))
    assert result.revived == 1 and WorkerGroup.objects.get(name="g2").removed_at is None


def test_it_skips_a_group_record_without_a_name(account):
    result = ingest_groups(account, [GroupRecord(azure_id=gid("x"), name="", group_type="User"), group_rec("g1")], now=NOW)
    assert (result.rows, result.skipped) == (1, 1)


# --- workers


def test_it_upserts_workers_idempotently(g1):
    recs = [worker_rec("g1", "hrw-01"), worker_rec("g1", "hrw-02")]
    ingest_workers(g1, recs, now=NOW)
    first = table(HybridWorker, "pk", "azure_id", "name", "last_seen_at")
    ingest_workers(g1, recs, now=NOW)
    assert table(HybridWorker, "pk", "azure_id", "name", "last_seen_at") == first
    assert len(first) == 2


def test_it_updates_last_seen_from_a_new_listing(g1):
    ingest_workers(g1, [worker_rec("g1", "hrw-01", seen=NOW - timedelta(minutes=1))], now=NOW)
    ingest_workers(g1, [worker_rec("g1", "hrw-01", seen=NOW)], now=NOW)
    assert HybridWorker.objects.get().last_seen_at == NOW


def test_it_marks_a_removed_worker_and_revives_it(g1):
    ingest_workers(g1, [worker_rec("g1", "hrw-01"), worker_rec("g1", "hrw-02")], now=NOW)
    result = ingest_workers(g1, [worker_rec("g1", "hrw-01")], now=NOW)
    assert result.removed == 1
    assert HybridWorker.objects.get(name="hrw-02").removed_at == NOW
    result = ingest_workers(g1, [worker_rec("g1", "hrw-01"), worker_rec("g1", "hrw-02")], now=NOW)
    assert result.revived == 1 and HybridWorker.objects.get(name="hrw-02").removed_at is None


def test_it_keeps_unknown_worker_types(g1):
    ingest_workers(g1, [worker_rec("g1", "hrw-01", worker_type="HybridV3")], now=NOW)
    assert HybridWorker.objects.get().worker_type == "HybridV3"


# --- jobs


def test_it_maps_run_on_to_the_group_and_computes_seconds(g1):
    ingest_workers(g1, [worker_rec("g1", "a"), worker_rec("g1", "b")], now=NOW)
    ingest_jobs(g1.account, [job_rec("j1", run_on="G1")], now=NOW)
    job = Job.objects.get()
    assert (job.group_id, job.queue_seconds, job.duration_seconds, job.worker_id) == (g1.pk, 60.0, 240.0, None)


def test_it_attributes_the_worker_only_in_a_single_member_group(g1):
    ingest_workers(g1, [worker_rec("g1", "solo")], now=NOW)
    ingest_jobs(g1.account, [job_rec("j1")], now=NOW)
    assert Job.objects.get().worker == HybridWorker.objects.get(name="solo")


def test_it_does_not_attribute_a_job_that_never_started(g1):
    ingest_workers(g1, [worker_rec("g1", "solo")], now=NOW)
    ingest_jobs(g1.account, [job_rec("j1", status="New", started=None, ended=None)], now=NOW)
    job = Job.objects.get()
    assert job.worker_id is None and job.queue_seconds is None


def test_the_same_jobs_twice_leave_the_same_rows(g1):
    recs = [job_rec("j1"), job_rec("j2")]
    ingest_jobs(g1.account, recs, now=NOW)
    first = table(Job, "pk", "job_id", "status", "queue_seconds")
    ingest_jobs(g1.account, recs, now=NOW)
    assert table(Job, "pk", "job_id", "status", "queue_seconds") == first


def test_overlapping_job_windows_keep_one_row_per_job(g1):
    ingest_jobs(g1.account, [job_rec("j1"), job_rec("j2")], now=NOW)
    ingest_jobs(g1.account, [job_rec("j2"), job_rec("j3")], now=NOW)
    assert table(Job, "job_id") == [("j1",), ("j2",), ("j3",)]


def test_a_job_that_changes_status_later_is_updated(g1):
    running = job_rec("j1", status="Running", ended=None, modified=NOW - timedelta(minutes=9))
    ingest_jobs(g1.account, [running], now=NOW)
    ingest_jobs(g1.account, [job_rec("j1", status="Failed")], now=NOW)
    job = Job.objects.get()
    assert (job.status, job.duration_seconds) == ("Failed", 240.0)


def test_an_older_answer_never_rolls_a_job_back(g1):
    ingest_jobs(g1.account, [job_rec("j1", status="Completed")], now=NOW)
    stale = job_rec("j1", status="Running", ended=None, modified=NOW - timedelta(minutes=9))
    result = ingest_jobs(g1.account, [stale], now=NOW)
    assert Job.objects.get().status == "Completed" and result.skipped == 1


def test_it_keeps_unknown_job_statuses(g1):
    ingest_jobs(g1.account, [job_rec("j1", status="Queued")], now=NOW)
    assert Job.objects.get().status == "Queued"


def test_it_skips_a_job_without_an_id(g1):
    result = ingest_jobs(g1.account, [job_rec(""), job_rec("j1")], now=NOW)
    assert (result.rows, result.skipped) == (1, 1)


def test_a_sandbox_job_has_no_group(g1):
    ingest_jobs(g1.account, [job_rec("j1", run_on="")], now=NOW)
    assert Job.objects.get().group_id is None


# --- heartbeats, utilization, events


def hb(computer: str, at: datetime) -> HeartbeatRecord:
    return HeartbeatRecord(computer=computer, time_generated=at, version="10.20", os_type="Windows", category="Direct Agent", computer_ip="10.0.0.1")


def test_it_matches_heartbeats_case_insensitively(g1):
    ingest_workers(g1, [worker_rec("g1", "HRW-Win-01")], now=NOW)
    result = ingest_heartbeats(g1.account, [hb("hrw-win-01", NOW), hb("stranger", NOW)])
    w = HybridWorker.objects.get()
    assert (w.last_heartbeat_at, w.agent_version, w.os_type) == (NOW, "10.20", "Windows")
    assert (result.rows, result.skipped) == (1, 1)


def test_it_matches_an_fqdn_heartbeat_to_the_short_worker_name(g1):
    ingest_workers(g1, [worker_rec("g1", "hrw-01")], now=NOW)
    ingest_heartbeats(g1.account, [hb("HRW-01.corp.example.com", NOW)])
    assert HybridWorker.objects.get().last_heartbeat_at == NOW


def test_a_heartbeat_never_moves_backwards(g1):
    ingest_workers(g1, [worker_rec("g1", "hrw-01")], now=NOW)
    ingest_heartbeats(g1.account, [hb("hrw-01", NOW)])
    ingest_heartbeats(g1.account, [hb("hrw-01", NOW - timedelta(minutes=5))])
    assert HybridWorker.objects.get().last_heartbeat_at == NOW


def test_it_ignores_heartbeats_of_workers_in_another_account(g1):
    other = AutomationAccount.objects.create(name="b", subscription_id="s", resource_group="rg", automation_account="b")
    ingest_workers(g1, [worker_rec("g1", "hrw-01")], now=NOW)
    assert ingest_heartbeats(other, [hb("hrw-01", NOW)]).rows == 0


def util(computer: str, minute: int, cpu: float | None, mem: float | None = 40.0) -> UtilizationRecord:
    return UtilizationRecord(computer=computer, ts=NOW - timedelta(minutes=minute), cpu_pct=cpu, mem_pct=mem)


def test_overlapping_utilization_windows_keep_one_sample_per_minute(g1):
    ingest_workers(g1, [worker_rec("g1", "hrw-01")], now=NOW)
    ingest_utilization(g1.account, [util("hrw-01", 3, 10.0), util("hrw-01", 2, 20.0)])
    ingest_utilization(g1.account, [util("hrw-01", 2, 25.0), util("hrw-01", 1, 30.0)])
    assert table(UtilizationSample, "ts", "cpu_pct") == [
        (NOW - timedelta(minutes=3), 10.0), (NOW - timedelta(minutes=2), 25.0), (NOW - timedelta(minutes=1), 30.0)
    ]


def test_it_keeps_the_latest_utilization_on_the_worker(g1):
    ingest_workers(g1, [worker_rec("g1", "hrw-01")], now=NOW)
    ingest_utilization(g1.account, [util("hrw-01", 1, 55.0, 60.0), util("hrw-01", 5, 99.0, 99.0)])
    ingest_utilization(g1.account, [util("hrw-01", 10, 11.0, 11.0)])
    w = HybridWorker.objects.get()
    assert (w.cpu_pct, w.mem_pct, w.utilization_at) == (55.0, 60.0, NOW - timedelta(minutes=1))


def test_it_skips_samples_without_any_value(g1):
    ingest_workers(g1, [worker_rec("g1", "hrw-01")], now=NOW)
    result = ingest_utilization(g1.account, [util("hrw-01", 1, None, None), util("hrw-01", 2, float("nan"), 30.0)])
    assert (result.rows, result.skipped) == (1, 1)
    assert UtilizationSample.objects.get().cpu_pct is None


def ev(computer: str, count: int, event_id: int = 4502) -> AgentEventRecord:
    return AgentEventRecord(computer=computer, event_id=event_id, count=count, first_at=NOW - timedelta(minutes=5), last_at=NOW)


def test_it_counts_tls_interception_events(g1):
    ingest_workers(g1, [worker_rec("g1", "hrw-01")], now=NOW)
    ingest_agent_events(g1.account, [ev("hrw-01", 3), ev("hrw-01", 9, event_id=1000)])
    w = HybridWorker.objects.get()
    assert (w.event_4502_count, w.last_4502_at) == (3, NOW)


def test_a_window_without_events_resets_the_count_and_keeps_the_last_time(g1):
    ingest_workers(g1, [worker_rec("g1", "hrw-01")], now=NOW)
    ingest_agent_events(g1.account, [ev("hrw-01", 3)])
    ingest_agent_events(g1.account, [])
    w = HybridWorker.objects.get()
    assert (w.event_4502_count, w.last_4502_at) == (0, NOW)


def test_the_same_event_window_twice_gives_the_same_count(g1):
    ingest_workers(g1, [worker_rec("g1", "hrw-01")], now=NOW)
    ingest_agent_events(g1.account, [ev("hrw-01", 3)])
    ingest_agent_events(g1.account, [ev("hrw-01", 3)])
    assert HybridWorker.objects.get().event_4502_count == 3


def test_the_latest_reading_takes_each_metric_from_its_newest_sample(g1):
    ingest_workers(g1, [worker_rec("g1", "hrw-01")], now=NOW)
    ingest_utilization(g1.account, [util("hrw-01", 2, 50.0, 70.0), util("hrw-01", 1, None, 75.0)])
    w = HybridWorker.objects.get()
    assert (w.cpu_pct, w.mem_pct, w.utilization_at) == (50.0, 75.0, NOW - timedelta(minutes=1))


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_worker_heartbeat_and_status_writers_neither_deadlock_nor_duplicate():
    import threading

    from django.db import connection

    from workers.fleet.status import refresh_statuses

    account = AutomationAccount.objects.create(name="a", subscription_id="s", resource_group="rg", automation_account="a")
    ingest_groups(account, [group_rec("g1")], now=NOW)
    group = WorkerGroup.objects.get()
    recs = [worker_rec("g1", f"hrw-{i:03}") for i in range(300)]
    ingest_workers(group, recs, now=NOW)
    beats = [hb(f"hrw-{i:03}", NOW) for i in reversed(range(300))]
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def run(work) -> None:
        try:
            barrier.wait()
            for _ in range(5):
                work()
        except BaseException as exc:  # surfaced below
            errors.append(exc)
        finally:
            connection.close()

    jobs = [
        lambda: ingest_workers(group, recs, now=NOW),
        lambda: ingest_workers(group, list(reversed(recs)), now=NOW),
        lambda: ingest_heartbeats(account, beats),
        lambda: refresh_statuses(account.pk, now=NOW),
    ]
    threads = [threading.Thread(target=run, args=(job,)) for job in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert HybridWorker.objects.count() == 300
    assert HybridWorker.objects.filter(last_heartbeat_at=NOW).count() == 300
