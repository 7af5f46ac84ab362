"""The database's fold of raw jobs (``raw_fold.fold_raw``, PostgreSQL) gives the rollup writer's rows
(``job_rollups.accumulate_jobs``): same keys, counts, maxima and histograms, sums to rounding."""
from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection

from tests.latency.factory import job, make_account, make_group, make_worker
from workers.latency.selectors.jobs import hybrid_jobs
from workers.latency.selectors.raw_fold import fold_raw
from workers.models import Job
from workers.rules import job_rollups, latency

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def postgresql_only():
    if connection.vendor != "postgresql":
        pytest.skip("raw_fold runs on PostgreSQL only (SQLite folds in Python, the reference here); set DATABASE_URL")
T0 = datetime(2026, 11, 20, 0, 0, tzinfo=UTC)
EXACT = ("scope", "key", "group_id", "worker_id", "runbook", *job_rollups.COUNT_FIELDS, *job_rollups.MAX_FIELDS,
         *job_rollups.HIST_FIELDS)


@pytest.fixture
def jobs():
    rng = random.Random(7)
    account = make_account()
    groups = [make_group(account, f"g{i}") for i in range(3)]
    solo = make_worker(groups[2], "solo")
    # Every bucket edge exactly, just below and above it, below 1 s, 0, negative (clock skew), missing.
    values = [None, -3.0, 0.0, 0.5, 0.999999]
    for edge in latency.BUCKET_EDGES[1:]:
        values += [edge, edge * (1 - 1e-12), edge * (1 + 1e-12)]
    values += [rng.lognormvariate(3, 2) for _ in range(300)] + [10 ** 7]
    statuses = ["Completed", "failed", " Stopped ", "SUSPENDED", "Running", "Queued", "Failed", "Weird"]
    exceptions = ["", "Hybrid worker was not available when scheduled job started",
                  "The hybrid worker wasn't available", "hybrid worker wasn’t available", "something else"]
    rows = []
    for i, q in enumerate(values):
        g = groups[i % 3]
        rows.append(job(g, T0 + timedelta(minutes=7 * i), queue=q, duration=values[(i * 7) % len(values)],
                        status=statuses[i % len(statuses)], runbook=f"rb-{i % 4}", exception=exceptions[i % len(exceptions)],
                        worker=solo if g == groups[2] and i % 2 else None))
    Job.objects.bulk_create(rows)
    return len(rows)


@pytest.mark.parametrize("by_day", [False, True])
def test_the_database_fold_equals_the_python_fold(jobs, by_day):
    period = latency.floor_day if by_day else latency.floor_hour
    expected = job_rollups.accumulate_jobs(hybrid_jobs().values_list(*job_rollups.JOB_FIELDS), period)
    got = fold_raw(hybrid_jobs(), by_day=by_day, scopes=job_rollups.ROLLUP_SCOPES, labels=False)
    assert {(r["period_"], r["key"]) for r in got} == set(expected)
    assert len(got) == len(expected)
    assert any(r["scope"] == "worker" for r in got) and any(r["not_available"] for r in got)
    for row in got:
        want = expected[(row["period_"], row["key"])].as_fields()
        assert {f: row[f] for f in EXACT} == {f: want[f] for f in EXACT}
        assert row["queue_sum"] == pytest.approx(want["queue_sum"], rel=1e-12)
        assert row["duration_sum"] == pytest.approx(want["duration_sum"], rel=1e-12)


def test_labels_come_with_the_group_and_worker_rows(jobs):
    rows = fold_raw(hybrid_jobs(), by_day=True, scopes=("group", "worker"), labels=True)
    group_rows = [r for r in rows if r["scope"] == "group"]
    assert {r["group__name"] for r in group_rows} == {"g0", "g1", "g2"}
    assert {r["group__account__name"] for r in group_rows} == {"acct"}
    assert {r["worker__name"] for r in rows if r["scope"] == "worker"} == {"solo"}


def test_no_jobs_no_rows(db):
    assert fold_raw(hybrid_jobs(), by_day=False, scopes=job_rollups.ROLLUP_SCOPES, labels=True) == []
