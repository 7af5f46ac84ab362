"""Pages and API make a fixed number of queries: the same for an empty fleet, 3 groups, and 1,000 workers."""
from __future__ import annotations

from datetime import timedelta

import pytest

from tests.fixtures.web import build_fleet, make_account, record_polls

pytestmark = pytest.mark.django_db

# Each logged-in request also loads its session and user (2 queries), included below.
FLEET_URLS = {
    # session, user, freshness, job data version (cache key), groups+member counts, recent worker polls
    # (a group whose own poll fails), thresholds; then once per jobs poll (a cache miss, as here): job
    # outcomes+queue p95 and 4 for the timeout counts (over now, over in the window, the rollup coverage
    # markers, the uncovered raw rows; one more once rollups cover part of the window); the open alerts
    # (their members in one more when there are any) and the workers under pressure (live pages)
    "/": 14,
    "/api/v1/groups": 7,
    "/jobs/": 6,  # session, user, group choices, count, page, freshness
    "/api/v1/jobs": 4,
    # session, user, workers by status, last poll, accounts + poll runs, last successes, in flight, outbox, notifications,
    # open alerts, the job data version, job rollups with their group names (reused per jobs poll);
    # dashboard/metrics.py
    "/metrics": 13,
}
# With no jobs at all, the jobs list skips the page query after a zero count; with no account, /metrics
# skips the poll runs query.
EMPTY_URLS = {**FLEET_URLS, "/jobs/": 5, "/api/v1/jobs": 3, "/metrics": 12}


@pytest.fixture(params=[(3, 2), (100, 10)], ids=["6-workers", "1000-workers"])
def fleet(request, now):
    groups, per_group = request.param
    account = make_account()
    built = build_fleet(groups=groups, workers_per_group=per_group, now=now, account=account, jobs_per_group=4)
    record_polls(account, at=now - timedelta(seconds=20))
    assert len(built.workers) == groups * per_group
    return built


@pytest.mark.parametrize(("url", "queries"), FLEET_URLS.items())
def test_it_makes_a_fixed_number_of_queries(client_in, fleet, django_assert_num_queries, url, queries):
    with django_assert_num_queries(queries):
        assert client_in.get(url).status_code == 200


@pytest.mark.parametrize(("url", "queries"), EMPTY_URLS.items())
def test_it_makes_no_more_queries_for_an_empty_fleet(client_in, django_assert_num_queries, url, queries):
    with django_assert_num_queries(queries):
        assert client_in.get(url).status_code == 200


# Until the next jobs poll, every later view reuses the job aggregates (selectors.per_jobs_poll).
WARM_URLS = {"/": 9, "/api/v1/groups": 6}


@pytest.mark.parametrize(("url", "queries"), WARM_URLS.items())
def test_it_reuses_the_job_aggregates_until_the_next_jobs_poll(client_in, fleet, django_assert_num_queries, url, queries):
    first = client_in.get(url)
    with django_assert_num_queries(queries):
        again = client_in.get(url)
    assert first.status_code == again.status_code == 200
    if url.startswith("/api/"):
        assert [g["jobs_24h"] for g in first.json()["groups"]] == [g["jobs_24h"] for g in again.json()["groups"]]


def test_it_makes_a_fixed_number_of_queries_on_the_group_page(client_in, fleet, django_assert_num_queries):
    # session, user, group+counts, job outcomes+p95, members, hourly utilization, jobs, freshness
    with django_assert_num_queries(8):
        assert client_in.get(f"/groups/{fleet.groups[0].pk}/").status_code == 200


def test_it_makes_a_fixed_number_of_queries_on_the_worker_page(client_in, fleet, django_assert_num_queries):
    # session, user, worker, samples, status changes, signal spans (the timeline's Automation and
    # Heartbeat lanes, one query for both), group size, group jobs, freshness, its open alerts
    with django_assert_num_queries(10):
        assert client_in.get(f"/workers/{fleet.workers[0].pk}/").status_code == 200


def test_it_makes_a_fixed_number_of_queries_for_the_workers_api(client_in, fleet, django_assert_num_queries):
    # session, user, groups by name, members
    with django_assert_num_queries(4):
        body = client_in.get(f"/api/v1/workers?group={fleet.groups[0].name}").json()
    assert len(body["workers"]) == len(fleet.workers) // len(fleet.groups)


def test_it_lists_every_group_of_a_1000_worker_fleet(client_in, now):
    account = make_account()
    build_fleet(groups=100, workers_per_group=10, now=now, account=account)
    record_polls(account, at=now - timedelta(seconds=20))
    body = client_in.get("/api/v1/groups").json()
    assert len(body["groups"]) == 100
    assert sum(g["workers_total"] for g in body["groups"]) == 1000
