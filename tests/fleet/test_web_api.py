"""The JSON API: stable field names, pagination, 400 for bad parameters, 404 for unknown groups."""
from __future__ import annotations

from datetime import timedelta

import pytest

from tests.fixtures.web import build_fleet, make_account, record_polls
from workers.models import HybridWorker, Job, WorkerStatus

pytestmark = pytest.mark.django_db

GROUP_FIELDS = {
    "id", "name", "account", "group_type", "health", "workers_total", "workers_online", "workers_late", "workers_offline",
    "single_member", "flags", "jobs_24h", "queue_p95_seconds_24h", "data_age_seconds", "stale", "poll_problem",
}
WORKER_FIELDS = {
    "id", "name", "group", "account", "status", "status_reason", "last_seen", "last_heartbeat", "worker_type", "os_type",
    "agent_version", "cpu_pct", "mem_pct", "utilization_at",
}
JOB_FIELDS = {
    "job_id", "runbook", "status", "outcome", "group", "account", "run_on", "created_at", "started_at", "ended_at",
    "queue_seconds", "duration_seconds",
}


def test_it_returns_an_empty_group_list_for_an_empty_fleet(client_in):
    body = client_in.get("/api/v1/groups").json()
    assert body["groups"] == []


def test_it_describes_each_group_with_the_documented_fields(client_in, small_fleet):
    groups = client_in.get("/api/v1/groups").json()["groups"]
    assert len(groups) == 3
    assert set(groups[0]) == GROUP_FIELDS


def test_it_counts_members_and_jobs_per_group(client_in, small_fleet):
    group = client_in.get("/api/v1/groups").json()["groups"][0]
    assert (group["workers_total"], group["workers_online"], group["workers_offline"]) == (2, 1, 1)
    assert group["health"] == "degraded"
    assert group["jobs_24h"] == {"completed": 1, "failed": 1, "suspended": 1, "stopped": 0, "other": 0}
    assert group["single_member"] is False


def test_it_computes_queue_p95_over_24_hours(client_in, small_fleet):
    group = client_in.get("/api/v1/groups").json()["groups"][0]
    # queue delays 10, 11, 12 s: p95 by linear interpolation = 11.9 s
    assert group["queue_p95_seconds_24h"] == 11.9


def test_it_reports_data_age_and_staleness_per_group(client_in, small_fleet):
    group = client_in.get("/api/v1/groups").json()["groups"][0]
    assert group["data_age_seconds"] == 20
    assert group["stale"] is False


def test_it_marks_a_group_stale_when_its_account_poll_failed(client_in, small_fleet, now):
    record_polls(small_fleet.account, at=now - timedelta(seconds=1), ok=False, error="boom")
    assert client_in.get("/api/v1/groups").json()["groups"][0]["stale"] is True


def test_it_lists_the_workers_of_a_group(client_in, small_fleet):
    group = small_fleet.groups[0]
    workers = client_in.get(f"/api/v1/workers?group={group.name}").json()["workers"]
    assert len(workers) == 2
    assert set(workers[0]) == WORKER_FIELDS
    assert {w["group"] for w in workers} == {group.name}
    assert workers[0]["last_seen"] == "2026-11-20T11:59:20Z"


def test_it_leaves_removed_workers_out(client_in, small_fleet, now):
    group = small_fleet.groups[0]
    HybridWorker.objects.filter(pk=small_fleet.workers[0].pk).update(removed_at=now)
    assert len(client_in.get(f"/api/v1/workers?group={group.name}").json()["workers"]) == 1


def test_it_filters_workers_by_account(client_in, small_fleet, now):
    other = make_account("other")
    build_fleet(groups=1, workers_per_group=3, now=now, account=other, group_names=[small_fleet.groups[0].name])
    name = small_fleet.groups[0].name
    assert len(client_in.get(f"/api/v1/workers?group={name}").json()["workers"]) == 5
    assert len(client_in.get(f"/api/v1/workers?group={name}&account=other").json()["workers"]) == 3


def test_it_requires_the_group_parameter_for_workers(client_in, small_fleet):
    response = client_in.get("/api/v1/workers")
    assert response.status_code == 400
    assert "group is required" in response.json()["error"]


def test_it_answers_404_json_for_an_unknown_group(client_in, small_fleet):
    response = client_in.get("/api/v1/workers?group=nope")
    assert response.status_code == 404
    assert response.json() == {"error": "unknown group"}


def test_it_answers_404_json_for_jobs_of_an_unknown_group(client_in, small_fleet):
    assert client_in.get("/api/v1/jobs?group=nope").status_code == 404


def test_it_paginates_jobs(client_in, small_fleet):
    body = client_in.get("/api/v1/jobs?page_size=4").json()
    assert (body["page"], body["page_size"], body["total"]) == (1, 4, 9)
    assert len(body["jobs"]) == 4
    assert set(body["jobs"][0]) == JOB_FIELDS
    assert body["next"] == "/api/v1/jobs?page_size=4&page=2"
    last = client_in.get("/api/v1/jobs?page_size=4&page=3").json()
    assert len(last["jobs"]) == 1 and last["next"] is None


def test_it_pages_through_every_job_exactly_once(client_in, small_fleet):
    seen, url = [], "/api/v1/jobs?page_size=2"
    while url:
        body = client_in.get(url).json()
        seen += [j["job_id"] for j in body["jobs"]]
        url = body["next"]
    assert sorted(seen) == sorted(Job.objects.values_list("job_id", flat=True))


def test_it_filters_jobs_by_group_status_and_relative_since(client_in, small_fleet, now):
    group = small_fleet.groups[0]
    Job.objects.filter(group=group, status="Completed").update(created_at=now - timedelta(days=3))
    assert client_in.get(f"/api/v1/jobs?group={group.name}").json()["total"] == 3
    assert client_in.get(f"/api/v1/jobs?group={group.name}&since=24h").json()["total"] == 2
    assert client_in.get(f"/api/v1/jobs?group={group.name}&status=failed").json()["total"] == 1


def test_it_accepts_an_iso_since_with_a_timezone(client_in, small_fleet):
    assert client_in.get("/api/v1/jobs?since=2026-11-20T10:59:30Z").json()["total"] == 3  # only the newest (11:00) per group
    assert client_in.get("/api/v1/jobs?since=2026-11-20T11:59:30%2B01:00").json()["total"] == 3


@pytest.mark.parametrize(("query", "message"), [
    ("since=tomorrow", "since:"),
    ("since=2026-11-20T10:00:00", "has no timezone"),
    ("since=9999d", "more than 400 days"),
    ("page=0", "page:"),
    ("page=abc", "page:"),
    ("page_size=501", "page_size:"),
    ("page_size=-1", "page_size:"),
])
def test_it_answers_400_json_for_bad_job_parameters(client_in, small_fleet, query, message):
    response = client_in.get(f"/api/v1/jobs?{query}")
    assert response.status_code == 400
    assert message in response.json()["error"]


def test_it_returns_an_empty_page_past_the_end(client_in, small_fleet):
    body = client_in.get("/api/v1/jobs?page=50").json()
    assert body["jobs"] == [] and body["next"] is None and body["total"] == 9


def test_it_refuses_writes_on_the_api(client_in):
    assert client_in.post("/api/v1/groups").status_code == 405


def test_it_exports_prometheus_metrics(client_in, small_fleet):
    body = client_in.get("/metrics").content.decode()
    group = small_fleet.groups[0].name
    assert f'hrw_workers{{account="acct",group="{group}",status="online"}} 1' in body
    assert "hrw_last_poll_age_seconds 20" in body


def test_it_escapes_label_values_in_metrics(client_in, now):
    account = make_account()
    build_fleet(groups=1, workers_per_group=1, now=now, account=account, group_names=['a"b\\c'], statuses=[WorkerStatus.LATE])
    body = client_in.get("/metrics").content.decode()
    assert 'group="a\\"b\\\\c",status="late"} 1' in body


def test_it_marks_a_group_whose_worker_poll_fails_as_stale_with_the_reason(client_in, now):
    from workers.models import PollKind, PollRun, WorkerGroup

    account = make_account()
    fleet = build_fleet(groups=2, workers_per_group=1, now=now, account=account)
    WorkerGroup.objects.update(first_seen_at=now - timedelta(days=1))
    record_polls(account, at=now - timedelta(seconds=20))
    PollRun.objects.filter(scope=fleet.groups[0].name).delete()  # its latest poll failed, before the other group's succeeded
    PollRun.objects.create(account=account, kind=PollKind.WORKERS, scope=fleet.groups[0].name, started_at=now - timedelta(seconds=29),
                           finished_at=now - timedelta(seconds=28), ok=False, error="404 group not found")
    groups = {g["name"]: g for g in client_in.get("/api/v1/groups").json()["groups"]}
    broken, fine = groups[fleet.groups[0].name], groups[fleet.groups[1].name]
    assert (broken["stale"], broken["poll_problem"]) == (True, "worker poll failing: 404 group not found")
    assert "worker_poll_failing" in broken["flags"]
    assert (fine["stale"], fine["poll_problem"]) == (False, None)
