"""One source of truth per figure: the overview, latency and timeouts count the same jobs in the same
window, whether or not a rollup has run, and say when a window is only partly covered by our data.

The scene of issue 12: jobs were ingested for the last 26 h (the first poll's backfill) but the job
rollups cover only the last 2 h. Each figure is computed two ways (the page or API, and the raw rows).
"""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.contrib.auth import get_user_model
from django.core.cache import cache

from tests.latency.factory import job, make_account, make_group
from workers.fleet.selectors.overview import fleet_overview
from workers.latency import selectors as sel
from workers.latency.rollups import rollup_jobs
from workers.models import Job

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 11, 25, 12, 30, tzinfo=UTC)


@pytest.fixture(autouse=True)
def frozen_clock():
    cache.clear()  # the overview's per-poll cache must not carry a result from another test
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def user_client(client):
    client.force_login(get_user_model().objects.create_user("ops", password="correct horse battery"))
    return client


@pytest.fixture
def backfilled():
    """26 h of jobs every 10 min in two groups (every 7th Suspended), rollups over the last 2 h only."""
    account = make_account()
    groups = [make_group(account, "grp-a"), make_group(account, "grp-b")]
    jobs = []
    for i in range(1, 26 * 6 + 1):
        created = NOW - timedelta(minutes=10 * i)
        for g in groups:
            status = "Suspended" if i % 7 == 0 else "Completed"
            jobs.append(job(g, created, queue=5 + i % 30, duration=60 if status == "Completed" else None, status=status))
    Job.objects.bulk_create(jobs)
    rollup_jobs(NOW - timedelta(hours=2), NOW, now=NOW)
    return groups


def _raw(since: datetime, **filters) -> int:
    return Job.objects.filter(group__isnull=False, created_at__gte=since, created_at__lte=NOW, **filters).count()


def test_latency_api_overview_and_raw_rows_count_the_same_24h_jobs(user_client, backfilled):
    raw = _raw(NOW - timedelta(hours=24))
    body = user_client.get("/api/v1/jobs/latency", {"window": "24h"}).json()
    overview = fleet_overview(now=NOW)
    overview_total = sum(overview.totals.jobs_24h.values())
    assert body["counts"]["total"] == overview_total == raw == 24 * 6 * 2


@pytest.mark.parametrize("window", ["24h", "7d", "30d"])
def test_latency_counts_do_not_depend_on_whether_a_rollup_has_run(backfilled, window):
    before = sel.latency_summary(window, now=NOW)[1]
    rollup_jobs(NOW - timedelta(days=31), NOW, now=NOW)
    after = sel.latency_summary(window, now=NOW)[1]
    span = sel.resolve_window(window, now=NOW)
    assert before.jobs == after.jobs == _raw(span.start)
    assert before.counts == after.counts
    assert before.queue == after.queue and before.duration == after.duration


def test_the_overview_kpi_counts_the_suspended_jobs_its_rows_add_up_to(backfilled):
    overview = fleet_overview(now=NOW)
    rows_suspended = sum(g.jobs_24h["suspended"] for g in overview.groups)
    kpi = sel.timeout_counts("24h", now=NOW)
    assert kpi["suspended"] == rows_suspended == _raw(NOW - timedelta(hours=24), status="Suspended") > 0


def test_the_timeouts_page_counts_what_the_raw_rows_hold_before_and_after_a_rollup(backfilled):
    raw = _raw(NOW - timedelta(days=7), status="Suspended")
    before = sel.timeout_report("7d", now=NOW, list_limit=5).suspended_stopped.total
    rollup_jobs(NOW - timedelta(days=31), NOW, now=NOW)
    cache.clear()
    assert before == sel.timeout_report("7d", now=NOW, list_limit=5).suspended_stopped.total == raw


def test_a_partly_covered_window_says_so_on_the_page(user_client, backfilled):
    body = user_client.get("/latency/", {"window": "30d"}).content.decode()
    assert "26 h of data in this 30-day window" in body
    assert "of data in this" not in user_client.get("/latency/", {"window": "24h"}).content.decode()
    assert "26 h of data in this 7-day window" in user_client.get("/timeouts/", {"window": "7d"}).content.decode()


def test_hours_before_the_first_data_are_gaps_not_zeros(backfilled):
    trend = sel.latency_report("7d", now=NOW).trend
    before = [p for p in trend if p.start + timedelta(hours=1) <= NOW - timedelta(hours=26)]
    assert before and all(p.jobs is None for p in before)
    assert sum(p.jobs or 0 for p in trend) == _raw(NOW - timedelta(days=7))


def test_the_latency_chart_is_dated_by_its_window_even_without_data(user_client):
    make_account()
    body = user_client.get("/latency/", {"window": "24h"}).content.decode()
    assert "2000-01-01" not in body
    assert (NOW - timedelta(hours=24)).isoformat() in body and NOW.isoformat() in body
