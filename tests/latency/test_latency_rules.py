"""Pure latency rules: buckets, percentiles from histograms vs numpy, thresholds."""
from __future__ import annotations

import math

import numpy as np
import pytest

from workers.rules import latency


def _same_bucket_or_within_one(estimate: float, exact: float) -> bool:
    """Accurate to one bucket: the ratio stays within one bucket width (or 1 s below 1 s)."""
    if exact < 1.0 or estimate < 1.0:
        return abs(estimate - exact) <= 1.0
    return abs(math.log(estimate) - math.log(exact)) <= math.log(latency.BUCKET_RATIO) + 1e-9


def test_it_puts_each_value_in_the_bucket_whose_edges_hold_it():
    rng = np.random.default_rng(3)
    for value in np.concatenate([rng.lognormal(3, 3, 2000), [0.0, 0.999, 1.0, 2.0, 86400.0, 1e7]]):
        i = latency.bucket_index(float(value))
        upper = latency.BUCKET_EDGES[i + 1] if i + 1 < latency.BUCKET_COUNT else math.inf
        assert latency.BUCKET_EDGES[i] <= value < upper


def test_it_covers_a_full_day_before_the_overflow_bucket():
    assert latency.BUCKET_EDGES[-1] > 86400


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("q", latency.PERCENTILES)
def test_it_estimates_percentiles_within_one_bucket_of_numpy(seed, q):
    rng = np.random.default_rng(seed)
    values = np.concatenate([rng.lognormal(2.5, 1.2, 5000), rng.exponential(600, 500)])
    hist = latency.histogram(values.tolist())
    estimate = latency.percentile_from_histogram(hist, q, max_value=float(values.max()))
    assert _same_bucket_or_within_one(estimate, float(np.percentile(values, q)))


def test_it_returns_none_for_an_empty_histogram():
    assert latency.percentile_from_histogram(latency.empty_histogram(), 95) is None


def test_it_caps_the_overflow_bucket_at_the_largest_value():
    hist = latency.histogram([200000.0, 300000.0])
    assert latency.percentile_from_histogram(hist, 99, max_value=300000.0) <= 300000.0


def test_it_merges_histograms_element_wise():
    a, b = latency.histogram([1.5, 30]), latency.histogram([30, 4000])
    merged = latency.merge_histograms([a, b])
    assert merged[latency.bucket_index(30)] == 2 and sum(merged) == 4


def test_it_uses_the_builtin_default_threshold_without_rows():
    tset = latency.ThresholdSet.build([])
    assert (tset.for_runbook("Any").max_queue_seconds, tset.for_runbook("Any").max_run_seconds) == (900, 3600)


def test_it_prefers_a_runbook_threshold_over_the_default():
    tset = latency.ThresholdSet.build([("*", 600, 1200), ("Backup-SQL", 60, 7200)])
    assert tset.for_runbook("Backup-SQL").max_run_seconds == 7200
    assert tset.for_runbook("Sync-AD").max_run_seconds == 1200
