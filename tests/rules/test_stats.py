"""workers.rules.stats: the one percentile, correlation, fits and the tail test against numpy/scipy."""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

from workers.rules import stats


def _rng(seed: int = 3) -> np.random.Generator:
    return np.random.default_rng(seed)


@pytest.mark.parametrize("values", [[3.0, 1.0, 7.0, 4.0, 10.0], [1.0], [10.0, 11.0, 12.0], list(map(float, range(101)))])
@pytest.mark.parametrize("q", [0, 50, 95, 99, 100])
def test_it_computes_percentiles_like_numpy_and_percentile_cont(values, q):
    assert stats.percentile(values, q) == pytest.approx(float(np.percentile(values, q)))


def test_it_interpolates_between_closest_ranks():
    assert stats.percentile([10.0, 11.0, 12.0], 95) == pytest.approx(11.9)


def test_it_ignores_missing_and_non_finite_values():
    assert stats.percentile([None, 1.0, math.nan, 3.0, math.inf], 50) == 2.0


def test_it_has_no_percentile_of_nothing():
    assert stats.percentile([], 95) is None
    assert stats.percentile([None], 95) is None


def test_it_matches_scipy_pearson_and_spearman_with_p_values():
    rng = _rng()
    x = rng.normal(size=80)
    y = 0.5 * x + rng.normal(size=80)
    got = stats.correlate(list(x), list(y))
    assert got is not None
    assert got.n == 80
    assert got.pearson == pytest.approx(scipy_stats.pearsonr(x, y).statistic)
    assert got.pearson_p == pytest.approx(scipy_stats.pearsonr(x, y).pvalue)
    assert got.spearman == pytest.approx(scipy_stats.spearmanr(x, y).statistic)
    assert got.p_value == pytest.approx(scipy_stats.spearmanr(x, y).pvalue)


def test_it_drops_pairs_with_a_missing_side_before_correlating():
    x = [1.0, 2.0, None, 4.0, 5.0, float("nan")]
    y = [2.0, 4.1, 9.0, 7.9, None, 3.0]
    got = stats.correlate(x, y)
    assert got is not None
    assert got.n == 3
    assert got.pearson == pytest.approx(scipy_stats.pearsonr([1, 2, 4], [2.0, 4.1, 7.9]).statistic)


def test_it_returns_none_when_a_side_is_constant():
    assert stats.correlate([5.0] * 10, list(range(10))) is None


def test_it_refuses_sequences_of_different_length():
    with pytest.raises(ValueError):
        stats.correlate([1.0, 2.0], [1.0])


def test_it_fits_a_line_like_linregress():
    rng = _rng(5)
    x = rng.uniform(0, 100, 50)
    y = 3.0 + 0.7 * x + rng.normal(0, 2, 50)
    fit = stats.linear_fit(list(x), list(y))
    ref = scipy_stats.linregress(x, y)
    assert fit is not None
    assert (fit.slope, fit.intercept, fit.r2) == pytest.approx((ref.slope, ref.intercept, ref.rvalue**2))
    assert fit.predict(10.0) == pytest.approx(ref.intercept + 10 * ref.slope)


def test_it_finds_a_longer_tail_under_pressure_significant_by_permutation():
    rng = _rng(9)
    y = rng.exponential(20, 400)
    high = np.zeros(400, dtype=bool)
    high[:80] = True
    y[:80:4] += 600  # a quarter of the pressured jobs are badly delayed (a diluted effect)
    assert stats.tail_ratio_test(y, high) < 0.01


def test_it_finds_no_tail_effect_when_the_labels_are_unrelated():
    rng = _rng(10)
    y = rng.exponential(20, 400)
    high = rng.random(400) < 0.2
    assert stats.tail_ratio_test(y, high) > 0.05


def test_it_gives_the_same_permutation_p_value_twice():
    rng = _rng(11)
    y = rng.exponential(20, 200)
    high = rng.random(200) < 0.3
    assert stats.tail_ratio_test(y, high) == stats.tail_ratio_test(y, high)


def test_it_tests_a_large_group_in_chunks_and_still_finds_the_effect():
    rng = _rng(13)
    y = rng.exponential(20, 3000)
    high = rng.random(3000) < 0.1
    y[high] += rng.exponential(15, int(high.sum()))
    small = stats.tail_ratio_test(y, high, permutations=199)
    # 2_000_000 // 3000 = 666 rows per chunk: 1999 shuffles span several chunks
    large = stats.tail_ratio_test(y, high, permutations=1999)
    assert 0 < large <= 1 and 0 < small <= 1
    assert large < 0.05


def test_it_matches_scipy_with_tied_values_and_a_perfect_line():
    x = [1, 2, 2, 3, 3, 3, 4, 5, 5, 6]
    y = [2, 1, 4, 4, 3, 6, 5, 7, 7, 9]
    got = stats.correlate(x, y)
    assert got is not None
    assert got.spearman == pytest.approx(scipy_stats.spearmanr(x, y).statistic)
    assert got.spearman_p == pytest.approx(scipy_stats.spearmanr(x, y).pvalue)
    line = stats.correlate([1, 2, 3, 4], [3, 5, 7, 9])
    assert line is not None and line.pearson == pytest.approx(1.0) and line.pearson_p == 0.0
