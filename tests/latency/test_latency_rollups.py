"""rollup_jobs: JobHourly/JobDaily from raw rows, idempotent, whole hours recomputed."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.fixtures.concurrency import run_in_threads
from tests.latency.factory import job, make_account, make_group, make_worker
from workers.latency.rollups import rollup_jobs
from workers.models import Job, JobDaily, JobHourly
from workers.rules import latency
from workers.rules.job_rollups import parse_hist

pytestmark = pytest.mark.django_db
T0 = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
NOW = T0 + timedelta(hours=5)


@pytest.fixture
def fleet():
    account = make_account()
    return account, make_group(account, "grp-a"), make_group(account, "grp-b")


def _snapshot(model) -> list[tuple]:
    fields = ["key", "jobs", "completed", "failed", "stopped", "suspended", "other", "not_available", "queue_count",
              "queue_sum", "queue_max", "queue_hist", "duration_count", "duration_sum", "duration_max", "duration_hist"]
    period = "hour" if model is JobHourly else "day"
    return sorted(tuple(str(v) for v in row) for row in model.objects.values_list(period, *fields))


def _row(key: str, hour: datetime = T0) -> JobHourly:
    return JobHourly.objects.get(key=key, hour=hour)


def test_it_counts_jobs_by_outcome_per_group_and_hour(fleet):
    _account, a, b = fleet
    Job.objects.bulk_create([
        job(a, T0 + timedelta(minutes=1), queue=5, duration=60),
        job(a, T0 + timedelta(minutes=2), queue=7, duration=30, status="Failed"),
        job(a, T0 + timedelta(minutes=70), queue=9, duration=10, status="Stopped"),
        job(b, T0 + timedelta(minutes=3), queue=1, duration=1, status="Suspended"),
    ])
    rollup_jobs(T0, NOW, now=NOW)
    first = _row(f"g:{a.pk}")
    assert (first.jobs, first.completed, first.failed, first.stopped) == (2, 1, 1, 0)
    assert _row(f"g:{a.pk}", T0 + timedelta(hours=1)).stopped == 1
    assert _row(f"g:{b.pk}").suspended == 1
    assert _row("fleet").jobs == 3


def test_it_counts_unknown_statuses_as_other(fleet):
    _account, a, _b = fleet
    Job.objects.bulk_create([job(a, T0, status="Running, waiting for resources", queue=3), job(a, T0, status="Queued")])
    rollup_jobs(T0, NOW, now=NOW)
    row = _row(f"g:{a.pk}")
    assert (row.other, row.completed, row.queue_count) == (2, 0, 1)


def test_it_puts_queue_delay_and_duration_in_the_shared_buckets(fleet):
    _account, a, _b = fleet
    Job.objects.bulk_create([job(a, T0, queue=42.0, duration=3600.0)])
    rollup_jobs(T0, NOW, now=NOW)
    row = _row(f"g:{a.pk}")
    assert parse_hist(row.queue_hist)[latency.bucket_index(42.0)] == 1
    assert parse_hist(row.duration_hist)[latency.bucket_index(3600.0)] == 1
    assert (sum(parse_hist(row.queue_hist)), len(parse_hist(row.queue_hist)), row.queue_max, row.duration_sum) == (1, latency.BUCKET_COUNT, 42.0, 3600.0)


def test_it_writes_the_same_rows_when_run_twice(fleet):
    _account, a, b = fleet
    Job.objects.bulk_create([job(a, T0 + timedelta(minutes=m), queue=m + 1, duration=10 * m + 1) for m in range(0, 240, 7)]
                            + [job(b, T0, queue=3, duration=4, status="Failed")])
    rollup_jobs(T0, NOW, now=NOW)
    hourly, daily = _snapshot(JobHourly), _snapshot(JobDaily)
    rollup_jobs(T0, NOW, now=NOW)
    assert _snapshot(JobHourly) == hourly
    assert _snapshot(JobDaily) == daily


def test_it_moves_a_job_to_its_new_bucket_when_its_status_changes(fleet):
    _account, a, _b = fleet
    Job.objects.bulk_create([job(a, T0, queue=10, status="Running")])
    rollup_jobs(T0, T0 + timedelta(hours=1), now=T0 + timedelta(minutes=30))
    assert (_row(f"g:{a.pk}").other, _row(f"g:{a.pk}").duration_count) == (1, 0)
    Job.objects.filter(group=a).update(status="Completed", duration_seconds=600.0, ended_at=T0 + timedelta(seconds=610))
    rollup_jobs(T0, T0 + timedelta(hours=1), now=T0 + timedelta(minutes=50))
    row = _row(f"g:{a.pk}")
    assert (row.other, row.completed, row.duration_count) == (0, 1, 1)
    assert parse_hist(row.duration_hist)[latency.bucket_index(600.0)] == 1


def test_it_recomputes_an_old_hour_when_a_long_job_ends_later(fleet):
    _account, a, _b = fleet
    Job.objects.bulk_create([job(a, T0, queue=10, status="Running")])
    rollup_jobs(T0, T0 + timedelta(hours=1), now=T0 + timedelta(hours=1))
    ended = T0 + timedelta(days=2)
    Job.objects.filter(group=a).update(status="Completed", ended_at=ended, last_modified_at=ended, duration_seconds=172790.0)
    # A later run whose window does not include T0's hour still finds it through last_modified_at.
    rollup_jobs(ended - timedelta(hours=3), ended, now=ended)
    assert _row(f"g:{a.pk}").completed == 1
    assert JobDaily.objects.get(key=f"g:{a.pk}", day=latency.floor_day(T0)).duration_count == 1


def test_it_leaves_hours_outside_the_run_untouched(fleet):
    _account, a, _b = fleet
    Job.objects.bulk_create([job(a, T0, queue=1, duration=1)])
    rollup_jobs(T0, T0 + timedelta(hours=1), now=NOW)
    Job.objects.bulk_create([job(a, T0 + timedelta(minutes=5), queue=1, duration=1, modified_at=T0 + timedelta(minutes=6))])
    rollup_jobs(T0 + timedelta(hours=3), NOW, now=NOW)
    assert _row(f"g:{a.pk}").jobs == 1


def test_it_excludes_jobs_without_a_hybrid_group(fleet):
    account, a, _b = fleet
    Job.objects.bulk_create([job(None, T0, queue=1, duration=1, account=account), job(a, T0, queue=1, duration=1)])
    rollup_jobs(T0, NOW, now=NOW)
    assert _row("fleet").jobs == 1


def test_it_counts_hybrid_worker_not_available_failures(fleet):
    _account, a, _b = fleet
    text = ("Failed to start, as hybrid worker was not available when scheduled job started, "
            "the hybrid worker was last active at 11/19/2026")
    Job.objects.bulk_create([job(a, T0, status="Failed", exception=text), job(a, T0, status="Failed", exception="Boom")])
    rollup_jobs(T0, NOW, now=NOW)
    row = _row(f"g:{a.pk}")
    assert (row.failed, row.not_available) == (2, 1)


def test_it_adds_per_runbook_rows_across_groups(fleet):
    _account, a, b = fleet
    Job.objects.bulk_create([job(a, T0, runbook="Sync-AD", queue=1), job(b, T0, runbook="Sync-AD", queue=2),
                             job(b, T0, runbook="Backup-SQL", queue=3)])
    rollup_jobs(T0, NOW, now=NOW)
    assert _row("r:Sync-AD").jobs == 2
    assert _row("r:Backup-SQL").jobs == 1


def test_it_writes_worker_rows_only_for_attributed_jobs(fleet):
    account, a, _b = fleet
    solo = make_group(account, "solo")
    member = make_worker(solo, "hrw-solo")
    Job.objects.bulk_create([job(solo, T0, worker=member, queue=4), job(a, T0, queue=4)])
    rollup_jobs(T0, NOW, now=NOW)
    assert list(JobHourly.objects.filter(scope="worker").values_list("key", "jobs")) == [(f"w:{member.pk}", 1)]


def test_it_sums_the_days_hours_into_the_daily_row(fleet):
    _account, a, _b = fleet
    Job.objects.bulk_create([job(a, T0 + timedelta(hours=h), queue=2.0 ** h, duration=3) for h in range(4)])
    rollup_jobs(T0, NOW, now=NOW)
    daily = JobDaily.objects.get(key=f"g:{a.pk}", day=latency.floor_day(T0))
    hours = JobHourly.objects.filter(key=f"g:{a.pk}")
    assert daily.jobs == 4
    assert parse_hist(daily.queue_hist) == latency.merge_histograms(parse_hist(h.queue_hist) for h in hours)
    assert daily.queue_max == 8.0


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_it_is_safe_to_run_concurrently_on_postgresql():
    account = make_account("concurrent")
    a = make_group(account, "grp-c")
    Job.objects.bulk_create([job(a, T0 + timedelta(minutes=m), queue=m + 1, duration=m + 2) for m in range(0, 300, 3)])
    rollup_jobs(T0, NOW, now=NOW)
    expected = _snapshot(JobHourly), _snapshot(JobDaily)
    run_in_threads(lambda: rollup_jobs(T0, NOW, now=NOW))
    assert (_snapshot(JobHourly), _snapshot(JobDaily)) == expected
