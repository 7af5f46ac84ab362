"""workers.rules.job_rollups: folding jobs and merging stored rows, without a database."""
from __future__ import annotations

from datetime import UTC, datetime

from workers.models import RollupScope
from workers.rules import job_rollups, latency

T0 = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


def test_its_scopes_are_the_ones_the_rollup_rows_store():
    assert tuple(RollupScope.values) == job_rollups.ROLLUP_SCOPES


def test_a_job_counts_in_the_fleet_its_group_its_runbook_and_its_worker():
    keys = [k[1] for k in job_rollups.scope_keys(7, "Nightly", 3)]
    assert keys == ["fleet", "g:7", "r:Nightly", "w:3"]
    assert [k[1] for k in job_rollups.scope_keys(7, "Nightly", None)] == ["fleet", "g:7", "r:Nightly"]


def test_merging_stored_rows_gives_what_folding_the_jobs_at_once_gives():
    jobs = [
        (1, None, "A", T0, "Completed", 5.0, 60.0, ""),
        (1, None, "A", T0, "Failed", 12.0, None, "Hybrid worker was not available when scheduled"),
        (2, None, "B", T0, "Running", 0.5, None, ""),
    ]
    at_once = job_rollups.accumulate_jobs(jobs, lambda _t: T0)[(T0, "fleet")]
    stored = [acc.as_fields() for (_t, key), acc in job_rollups.accumulate_jobs(jobs[:1], lambda _t: T0).items() if key == "fleet"]
    stored += [acc.as_fields() for (_t, key), acc in job_rollups.accumulate_jobs(jobs[1:], lambda _t: T0).items() if key == "fleet"]
    merged, _first = job_rollups.merge_rows(stored, lambda r: r["key"])["fleet"]
    added = job_rollups.Accumulator(scope="fleet", key="fleet")
    for row in stored:
        added.add_row(row)
    for acc in (merged, added):
        assert acc.as_fields() == at_once.as_fields()
    assert at_once.counts() == {"completed": 1, "failed": 1, "stopped": 0, "suspended": 0, "other": 1}
    assert at_once.not_available == 1
    assert job_rollups.parse_hist(job_rollups.dump_hist(at_once.queue_hist)) == at_once.queue_hist
    assert len(job_rollups.parse_hist("[1,2]")) == latency.BUCKET_COUNT
