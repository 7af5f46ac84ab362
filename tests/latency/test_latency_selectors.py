"""workers.latency.selectors: windows, percentiles from rollups vs raw, queued-now, timeouts, query counts."""
from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from tests.latency.factory import job, make_account, make_group, make_worker
from workers.latency import selectors as sel
from workers.latency.rollups import rollup_jobs
from workers.models import Job, RunbookThreshold
from workers.rules import latency

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 11, 25, 12, 30, tzinfo=UTC)


@pytest.fixture
def fleet():
    account = make_account()
    return account, make_group(account, "grp-a"), make_group(account, "grp-b")


def _within_one_bucket(estimate: float, exact: float) -> bool:
    return abs(math.log(estimate) - math.log(exact)) <= math.log(latency.BUCKET_RATIO) + 1e-9


def _rollup() -> None:
    rollup_jobs(NOW - timedelta(days=40), NOW, now=NOW)


@pytest.mark.parametrize("key,source,start", [
    ("1h", "raw", NOW - timedelta(hours=1)),
    ("24h", "hourly", NOW - timedelta(hours=24)),
    ("7d", "daily", NOW - timedelta(days=7)),
    ("30d", "daily", NOW - timedelta(days=30)),
])
def test_it_resolves_each_window_to_its_exact_span(key, source, start):
    span = sel.resolve_window(key, now=NOW)
    assert (span.source, span.start, span.end) == (source, start, NOW)


@pytest.mark.parametrize("raw", ["2h", "", "24H ", "7", "<script>"])
def test_it_rejects_unknown_windows(raw):
    if raw == "":
        assert sel.parse_window(raw) == "24h"
        return
    with pytest.raises(sel.WindowError):
        sel.parse_window(raw)


def test_it_matches_numpy_percentiles_within_one_bucket_from_rollups(fleet):
    _account, a, b = fleet
    rng = np.random.default_rng(7)
    queue = rng.lognormal(3.0, 1.0, 600)
    duration = rng.lognormal(5.0, 0.8, 600)
    Job.objects.bulk_create([
        job(a if i % 2 else b, NOW - timedelta(hours=20) + timedelta(seconds=i * 60), queue=float(queue[i]), duration=float(duration[i]))
        for i in range(600)
    ])
    _rollup()
    span, stats = sel.latency_summary("24h", now=NOW)
    assert not span.exact and stats.queue_n == 600
    for q, got in zip(latency.PERCENTILES, (stats.queue.p50, stats.queue.p95, stats.queue.p99)):
        assert _within_one_bucket(got, float(np.percentile(queue, q)))
    assert _within_one_bucket(stats.duration.p95, float(np.percentile(duration, 95)))


def test_it_computes_the_1h_window_exactly_from_raw_rows(fleet):
    _account, a, _b = fleet
    values = [3.0, 9.0, 27.0, 81.0]
    Job.objects.bulk_create([job(a, NOW - timedelta(minutes=10 + i), queue=v, duration=1) for i, v in enumerate(values)])
    span, stats = sel.latency_summary("1h", now=NOW)
    assert span.exact
    assert stats.queue.p95 == pytest.approx(float(np.percentile(values, 95)))


def test_it_leaves_jobs_before_the_window_out(fleet):
    _account, a, _b = fleet
    Job.objects.bulk_create([job(a, NOW - timedelta(hours=30), queue=5), job(a, NOW - timedelta(hours=2), queue=5)])
    _rollup()
    assert sel.latency_summary("24h", now=NOW)[1].jobs == 1
    assert sel.latency_summary("7d", now=NOW)[1].jobs == 2


def test_it_filters_by_group_from_group_rollups(fleet):
    _account, a, b = fleet
    Job.objects.bulk_create([job(a, NOW - timedelta(hours=2), queue=5), job(b, NOW - timedelta(hours=2), queue=500)])
    _rollup()
    _span, stats = sel.latency_summary("24h", now=NOW, group_id=b.pk)
    assert stats.jobs == 1 and stats.queue.p50 > 400


def test_it_filters_by_group_and_runbook_exactly(fleet):
    _account, a, _b = fleet
    Job.objects.bulk_create([job(a, NOW - timedelta(hours=2), queue=5, runbook="Sync-AD"),
                             job(a, NOW - timedelta(hours=2), queue=50, runbook="Backup-SQL")])
    _rollup()
    _span, stats = sel.latency_summary("7d", now=NOW, group_id=a.pk, runbook="Backup-SQL")
    assert (stats.jobs, stats.exact, stats.queue.p50) == (1, True, 50.0)


def test_it_breaks_latency_down_per_group_runbook_and_worker(fleet):
    account, a, b = fleet
    solo = make_group(account, "solo")
    member = make_worker(solo, "hrw-solo-01")
    Job.objects.bulk_create([job(a, NOW - timedelta(hours=3), queue=5, runbook="Sync-AD"),
                             job(b, NOW - timedelta(hours=3), queue=900, runbook="Sync-AD"),
                             job(solo, NOW - timedelta(hours=3), queue=60, runbook="Backup-SQL", worker=member)])
    _rollup()
    report = sel.latency_report("24h", now=NOW)
    assert [s.label for s in report.by_group] == ["grp-b", "solo", "grp-a"]
    assert {s.label: s.jobs for s in report.by_runbook} == {"Sync-AD": 2, "Backup-SQL": 1}
    assert [(s.label, s.account) for s in report.by_worker] == [("hrw-solo-01", "acct")]


def test_it_gives_the_30d_trend_per_day_and_7d_per_hour(fleet):
    _account, a, _b = fleet
    Job.objects.bulk_create([job(a, NOW - timedelta(days=d, hours=1), queue=5) for d in range(3)])
    _rollup()
    daily = sel.latency_report("30d", now=NOW).trend
    hourly = sel.latency_report("7d", now=NOW).trend
    # One point per step of the whole window; steps before the first job are missing (None), not 0.
    assert len(daily) == 31 and {p.start.hour for p in daily} == {0}
    assert [p.jobs for p in daily if p.jobs] == [1, 1, 1]
    assert all(p.jobs is None for p in daily if p.start < NOW - timedelta(days=3))
    assert len(hourly) == 7 * 24 + 1 and {p.start.hour for p in hourly if p.jobs} == {11}


def test_it_reports_still_queued_jobs_however_old(fleet):
    _account, a, _b = fleet
    Job.objects.bulk_create([
        job(a, NOW - timedelta(days=45), status="New"),
        job(a, NOW - timedelta(minutes=3), status="Some future status"),
        job(a, NOW - timedelta(minutes=3), queue=10, status="Running"),
        job(a, NOW - timedelta(minutes=3), status="Failed"),
    ])
    queued = sel.queued_now(now=NOW)
    assert queued.count == 2
    assert queued.oldest_seconds == pytest.approx(45 * 86400)
    assert queued.jobs[0].age_seconds == pytest.approx(45 * 86400)


def test_it_keeps_counting_queued_jobs_beyond_the_list_limit(fleet):
    _account, a, _b = fleet
    Job.objects.bulk_create([job(a, NOW - timedelta(minutes=i + 1), status="New") for i in range(5)])
    queued = sel.queued_now(now=NOW, limit=2)
    assert (queued.count, len(queued.jobs)) == (5, 2)


def test_it_finds_open_jobs_over_the_default_threshold_now(fleet):
    _account, a, _b = fleet
    Job.objects.bulk_create([
        job(a, NOW - timedelta(minutes=20), status="New"),
        job(a, NOW - timedelta(minutes=10), status="New"),
        job(a, NOW - timedelta(minutes=90), queue=60, status="Running"),
        job(a, NOW - timedelta(minutes=30), queue=60, status="Running"),
    ])
    tset, _rows = sel.thresholds()
    over = sel.over_threshold_now(now=NOW, tset=tset)
    assert sorted((r.kind, round(r.age_seconds)) for r in over) == [("queued", 1200), ("running", 5340)]


def test_it_applies_a_runbook_threshold_instead_of_the_default(fleet):
    _account, a, _b = fleet
    RunbookThreshold.objects.create(runbook="Backup-SQL", max_queue_seconds=900, max_run_seconds=4 * 3600)
    RunbookThreshold.objects.create(runbook="*", max_queue_seconds=900, max_run_seconds=600)
    Job.objects.bulk_create([
        job(a, NOW - timedelta(hours=2), queue=1, status="Running", runbook="Backup-SQL"),
        job(a, NOW - timedelta(minutes=15), queue=1, status="Running", runbook="Sync-AD"),
    ])
    tset, rows = sel.thresholds()
    over = sel.over_threshold_now(now=NOW, tset=tset)
    assert [r.runbook for r in over] == ["Sync-AD"]
    assert [t.runbook for t in rows] == ["*", "Backup-SQL"]


def test_it_lists_finished_jobs_over_their_threshold_in_the_window(fleet):
    _account, a, _b = fleet
    Job.objects.bulk_create([
        job(a, NOW - timedelta(hours=5), queue=1000, duration=5),
        job(a, NOW - timedelta(hours=5), queue=5, duration=4000),
        job(a, NOW - timedelta(hours=5), queue=5, duration=5),
        job(a, NOW - timedelta(days=3), queue=1000, duration=5),
    ])
    tset, _rows = sel.thresholds()
    past = sel.over_threshold_in_window(sel.resolve_window("24h", now=NOW), tset=tset)
    assert past.total == 2 and sorted(r.kind for r in past.rows) == ["queue", "run"]


def test_it_lists_suspended_stopped_and_not_available_jobs(fleet):
    _account, a, _b = fleet
    Job.objects.bulk_create([
        job(a, NOW - timedelta(hours=1), status="Suspended", queue=3),
        job(a, NOW - timedelta(hours=1), status="Stopped", queue=3, duration=3),
        job(a, NOW - timedelta(hours=1), status="Failed", exception="Failed to start, as hybrid worker was not available when scheduled job started"),
        job(a, NOW - timedelta(hours=1), status="Failed", exception="Other error"),
    ])
    span = sel.resolve_window("24h", now=NOW)
    assert sel.suspended_or_stopped(span).total == 2
    assert sel.not_available_failures(span).total == 1


def test_it_counts_timeouts_for_the_overview(fleet):
    _account, a, _b = fleet
    Job.objects.bulk_create([
        job(a, NOW - timedelta(hours=1), status="Suspended", queue=3),
        job(a, NOW - timedelta(hours=3), status="New"),
        job(a, NOW - timedelta(hours=5), queue=5, duration=4000),
        job(a, NOW - timedelta(hours=1), status="Failed", exception="hybrid worker was not available"),
    ])
    _rollup()
    assert sel.timeout_counts("24h", now=NOW) == {
        "window": "24h", "over_threshold_now": 1, "over_threshold_in_window": 1, "suspended": 1, "stopped": 0,
        "not_available": 1,
    }


def _fleet_of(n_groups: int) -> None:
    account = make_account(f"acct-{n_groups}")
    jobs = []
    for g in range(n_groups):
        group = make_group(account, f"g-{g}")
        jobs += [job(group, NOW - timedelta(hours=h), queue=h + 1, duration=10, runbook=f"rb-{h % 3}") for h in range(1, 30, 4)]
        jobs.append(job(group, NOW - timedelta(minutes=5), status="New"))
        jobs.append(job(group, NOW - timedelta(hours=2), status="Suspended", queue=4000))
        jobs.append(job(group, NOW - timedelta(hours=2), status="Failed", exception="hybrid worker was not available"))
    Job.objects.bulk_create(jobs)
    _rollup()


@pytest.mark.parametrize("window", ["1h", "24h", "30d"])
@pytest.mark.parametrize("n_groups", [2, 12])
def test_it_reads_the_latency_report_in_ten_queries_whatever_the_fleet_size(window, n_groups, django_assert_max_num_queries):
    # 1h: raw rows + queued (2). Longer: coverage plan (2), then rollups + raw for the fleet series and
    # for the breakdown (at most 3 each), + queued (2).
    _fleet_of(n_groups)
    with django_assert_max_num_queries(10 if window != "1h" else 3):
        report = sel.latency_report(window, now=NOW)
    assert report.queued.count == n_groups


@pytest.mark.parametrize("n_groups", [2, 12])
def test_it_reads_the_timeout_report_in_eleven_queries_whatever_the_fleet_size(n_groups, django_assert_max_num_queries):
    _fleet_of(n_groups)
    with django_assert_max_num_queries(11):
        sel.timeout_report("7d", now=NOW)


def test_it_counts_the_1h_symptoms_from_raw_rows(fleet):
    _account, a, _b = fleet
    Job.objects.bulk_create([
        job(a, NOW - timedelta(minutes=10), status="Stopped", queue=3, duration=3),
        job(a, NOW - timedelta(minutes=20), status="Failed", exception="Hybrid worker wasn't available when scheduled"),
        job(a, NOW - timedelta(minutes=90), status="Suspended", queue=3),
    ])
    counts = sel.timeout_counts("1h", now=NOW)
    assert (counts["stopped"], counts["suspended"], counts["not_available"]) == (1, 0, 1)
