"""The latency tables reuse the covered part of a window only while the rollups are unchanged: a
re-run of the rollup (same clock, new rows) or a new rollup shows the new jobs at once."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core.cache import cache

from tests.latency.factory import job, make_account, make_group
from workers.latency import selectors as sel
from workers.latency.rollups import rollup_jobs
from workers.models import Job

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 11, 25, 12, 30, tzinfo=UTC)


@pytest.fixture(autouse=True)
def frozen_clock():
    cache.clear()
    with time_machine.travel(NOW, tick=False):
        yield
    cache.clear()


def _group_jobs(report: sel.LatencyReport) -> dict[str, int]:
    return {s.label: s.jobs for s in report.by_group}


def test_a_rerun_rollup_replaces_the_reused_rows():
    group = make_group(make_account(), "grp")
    Job.objects.bulk_create([job(group, NOW - timedelta(days=3, minutes=i), queue=5, duration=60) for i in range(10)])
    rollup_jobs(NOW - timedelta(days=8), NOW, now=NOW)
    assert _group_jobs(sel.latency_report("7d", now=NOW)) == {"grp": 10}
    assert _group_jobs(sel.latency_report("7d", now=NOW)) == {"grp": 10}  # the reused rows say the same

    # Jobs land in an hour the rollup covers (a late poll); the rollup runs again with the same clock.
    Job.objects.bulk_create([job(group, NOW - timedelta(days=3, minutes=i), queue=500, duration=60) for i in range(20, 25)])
    rollup_jobs(NOW - timedelta(days=8), NOW, now=NOW)
    report = sel.latency_report("7d", now=NOW)
    assert _group_jobs(report) == {"grp": 15}
    assert report.by_group[0].queue_max == 500


def test_the_reused_rows_leave_the_raw_tail_current():
    group = make_group(make_account(), "grp")
    Job.objects.bulk_create([job(group, NOW - timedelta(days=2, minutes=i), queue=5, duration=60) for i in range(4)])
    rollup_jobs(NOW - timedelta(days=8), NOW, now=NOW)
    assert _group_jobs(sel.latency_report("30d", now=NOW)) == {"grp": 4}
    # The last hours are always read raw: a job polled just now counts without any rollup.
    Job.objects.bulk_create([job(group, NOW - timedelta(minutes=5), queue=5, duration=None, status="Running")])
    assert _group_jobs(sel.latency_report("30d", now=NOW)) == {"grp": 5}
