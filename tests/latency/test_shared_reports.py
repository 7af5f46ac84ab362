"""The latency and timeouts pages share one computation per jobs poll (``per_jobs_poll``).

At estate scale a 30-day latency report costs hundreds of milliseconds; the pages reuse it until the
next jobs poll lands (or it is older than its window may slide). These tests pin what that may and may
not change: the figures are the same as a fresh computation, a new poll means new figures, the jobs
queued now are never reused, a custom range is never shared, and warming after a poll spares the page.
"""
from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from tests.fixtures.web import build_fleet
from workers.fleet.tasks import warm_job_caches
from workers.latency import selectors as sel
from workers.models import AutomationAccount, Job

pytestmark = pytest.mark.django_db


def _job(fleet, created, **extra) -> Job:
    group = fleet.groups[0]
    return Job.objects.create(account=fleet.account, job_id=str(uuid.uuid4()), runbook="Patch-Servers", run_on=group.name,
                              group=group, created_at=created, **extra)


def _new_poll(fleet, at) -> None:
    """What a successful jobs poll does to the data version: its account's watermark moves."""
    AutomationAccount.objects.filter(pk=fleet.account.pk).update(jobs_watermark=at)


def test_a_shared_report_equals_a_fresh_one_and_a_new_poll_refreshes_it(now):
    fleet = build_fleet(groups=3, workers_per_group=2, now=now, jobs_per_group=4)
    _new_poll(fleet, now)
    shared = sel.latency_report("24h", now=now, shared=True)
    assert shared == sel.latency_report("24h", now=now)
    assert shared.summary.jobs == 12

    # Rows written without a poll (no new version) do not show: the page reuses what it computed.
    _job(fleet, now - timedelta(hours=1), status="Completed", started_at=now - timedelta(minutes=59),
         queue_seconds=60.0, ended_at=now - timedelta(minutes=58), duration_seconds=60.0)
    assert sel.latency_report("24h", now=now, shared=True).summary.jobs == 12
    # A jobs poll lands: the next view counts the new job.
    _new_poll(fleet, now + timedelta(seconds=1))
    assert sel.latency_report("24h", now=now, shared=True).summary.jobs == 13


def test_the_jobs_queued_now_are_read_afresh_on_every_view(now):
    fleet = build_fleet(groups=2, workers_per_group=1, now=now, jobs_per_group=2)
    _new_poll(fleet, now)
    assert sel.latency_report("24h", now=now, shared=True).queued.count == 0
    _job(fleet, now - timedelta(minutes=5), status="New")
    queued = sel.latency_report("24h", now=now, shared=True).queued
    assert queued.count == 1 and queued.oldest_seconds == pytest.approx(300)


def test_a_custom_range_is_never_shared(now):
    fleet = build_fleet(groups=2, workers_per_group=1, now=now, jobs_per_group=2)
    _new_poll(fleet, now)
    span = sel.span_between(now - timedelta(hours=12), now)
    assert sel.latency_report(span, now=now, shared=True).summary.jobs == 4
    _job(fleet, now - timedelta(hours=1), status="Failed", started_at=now - timedelta(minutes=59), queue_seconds=60.0)
    assert sel.latency_report(span, now=now, shared=True).summary.jobs == 5


def test_the_timeouts_report_is_shared_per_poll_and_per_threshold(now):
    from workers.latency.thresholds import set_threshold

    fleet = build_fleet(groups=2, workers_per_group=1, now=now, jobs_per_group=3)
    _new_poll(fleet, now)
    before = sel.timeout_report("24h", now=now, shared=True)
    assert before == sel.timeout_report("24h", now=now)
    assert before.over_past.total == 0
    # A threshold is part of the key: changing one shows at once, without waiting for a poll.
    set_threshold(runbook="Patch-Servers", max_queue_seconds=1, max_run_seconds=1)
    after = sel.timeout_report("24h", now=now, shared=True)
    assert after.over_past.total == 6
    assert after == sel.timeout_report("24h", now=now)


def test_warming_after_a_jobs_poll_spares_the_latency_and_timeouts_pages(now, django_assert_num_queries):
    fleet = build_fleet(groups=3, workers_per_group=2, now=now, jobs_per_group=4)
    _new_poll(fleet, now)
    warm_job_caches(force=True)
    with django_assert_num_queries(2):  # the job data version, the count of jobs queued now (none: no rows read)
        report = sel.latency_report("24h", now=now, shared=True)
    assert report.summary.jobs == 12
    with django_assert_num_queries(2):  # the thresholds (part of the key), the job data version
        sel.timeout_report("24h", now=now, shared=True)


def test_a_long_window_is_reused_across_polls_until_it_is_five_minutes_old(now):
    import time_machine

    fleet = build_fleet(groups=2, workers_per_group=1, now=now, jobs_per_group=2)
    _new_poll(fleet, now)
    first = sel.latency_report("30d", now=now, shared=True)
    _job(fleet, now - timedelta(hours=1), status="Completed", started_at=now - timedelta(minutes=59), queue_seconds=60.0)
    _new_poll(fleet, now + timedelta(seconds=1))
    assert sel.latency_report("30d", now=now + timedelta(seconds=299), shared=True).summary.jobs == first.summary.jobs == 4
    later = now + timedelta(seconds=300)
    with time_machine.travel(later, tick=False):
        fresh = sel.latency_report("30d", now=later, shared=True)
    assert fresh.summary.jobs == 5 and fresh.span.end == later
