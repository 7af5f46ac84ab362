"""workers.rules.analytics: every formula against scipy, a closed form or a textbook value."""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from workers.rules import analytics


def _rng(seed: int = 3) -> np.random.Generator:
    return np.random.default_rng(seed)


def test_it_matches_scipy_pearson_and_spearman_with_p_values():
    rng = _rng()
    x = rng.normal(size=80)
    y = 0.5 * x + rng.normal(size=80)
    got = analytics.correlate(list(x), list(y))
    assert got is not None
    assert got.n == 80
    assert got.pearson == pytest.approx(stats.pearsonr(x, y).statistic)
    assert got.pearson_p == pytest.approx(stats.pearsonr(x, y).pvalue)
    assert got.spearman == pytest.approx(stats.spearmanr(x, y).statistic)
    assert got.p_value == pytest.approx(stats.spearmanr(x, y).pvalue)


def test_it_drops_pairs_with_a_missing_side_before_correlating():
    x = [1.0, 2.0, None, 4.0, 5.0, float("nan")]
    y = [2.0, 4.1, 9.0, 7.9, None, 3.0]
    got = analytics.correlate(x, y)
    assert got is not None
    assert got.n == 3
    assert got.pearson == pytest.approx(stats.pearsonr([1, 2, 4], [2.0, 4.1, 7.9]).statistic)


def test_it_returns_none_when_a_side_is_constant():
    assert analytics.correlate([5.0] * 10, list(range(10))) is None


def test_it_refuses_sequences_of_different_length():
    with pytest.raises(ValueError):
        analytics.correlate([1.0, 2.0], [1.0])


def test_it_fits_a_line_like_linregress():
    rng = _rng(5)
    x = rng.uniform(0, 100, 50)
    y = 3.0 + 0.7 * x + rng.normal(0, 2, 50)
    fit = analytics.linear_fit(list(x), list(y))
    ref = stats.linregress(x, y)
    assert fit is not None
    assert (fit.slope, fit.intercept, fit.r2) == pytest.approx((ref.slope, ref.intercept, ref.rvalue**2))
    assert fit.predict(10.0) == pytest.approx(ref.intercept + 10 * ref.slope)


def test_it_computes_erlang_c_for_the_textbook_call_centre():
    # 360 calls per half hour, 240 s average handling time (48 Erlangs), 55 agents: the classic
    # worked example gives a 23.87 % probability of waiting and an average speed of answer of 8.2 s.
    assert analytics.erlang_c(55, 48.0) == pytest.approx(0.2387, abs=1e-4)
    asa = analytics.mmc_mean_wait(arrival_rate=360 / 1800, service_time=240, servers=55)
    assert asa == pytest.approx(8.18, abs=0.01)


def test_it_agrees_with_the_factorial_form_of_erlang_c():
    for c, a in [(1, 0.7), (2, 1.0), (3, 2.0), (10, 7.5), (40, 35.0)]:
        top = a**c / math.factorial(c) * c / (c - a)
        ref = top / (sum(a**k / math.factorial(k) for k in range(c)) + top)
        assert analytics.erlang_c(c, a) == pytest.approx(ref, rel=1e-12)


def test_it_uses_a_closed_form_for_many_servers_that_matches_the_recursion():
    c, a = 900, 870.0  # beyond the recursion cut-over
    b = 1.0
    for k in range(1, c + 1):
        b = a * b / (k + a * b)
    assert analytics.erlang_b(c, a) == pytest.approx(b, rel=1e-9)


def test_it_treats_an_overloaded_queue_as_always_waiting_and_unbounded():
    assert analytics.erlang_c(4, 4.0) == 1.0
    assert analytics.mmc_wait_quantile(arrival_rate=1.0, service_time=5.0, servers=4) == math.inf


def test_it_gives_the_mm1_wait_percentile_in_closed_form():
    # M/M/1: P(W > t) = rho * exp(-(mu - lambda) t)
    lam, mu = 0.8, 1.0
    expected = math.log(0.8 / 0.05) / (mu - lam)
    assert analytics.mmc_wait_quantile(arrival_rate=lam, service_time=1 / mu, servers=1, q=0.95) == pytest.approx(expected)


def test_it_reports_zero_wait_percentile_when_few_jobs_wait():
    assert analytics.mmc_wait_quantile(arrival_rate=0.1, service_time=1.0, servers=5, q=0.95) == 0.0


def test_it_finds_the_smallest_server_count_meeting_a_target():
    lam, s, target = 2.0, 10.0, 5.0
    c = analytics.smallest_servers(arrival_rate=lam, service_time=s, target_seconds=target)
    assert analytics.mmc_wait_quantile(arrival_rate=lam, service_time=s, servers=c) <= target
    assert analytics.mmc_wait_quantile(arrival_rate=lam, service_time=s, servers=c - 1) > target


def test_it_computes_the_poll_wait_percentile_of_the_first_poller():
    assert analytics.poll_wait_quantile(1) == pytest.approx(28.5)
    # two independent uniform(0, 30) pollers: P(min > t) = (1 - t/30)^2
    t = analytics.poll_wait_quantile(2)
    assert (1 - t / 30) ** 2 == pytest.approx(0.05)


def test_it_recommends_two_workers_for_a_light_group_because_of_availability():
    rec = analytics.recommend_workers(arrival_rate=2 / 60, service_time=300, target_p95_seconds=60)
    assert rec.workers == 2
    assert rec.binding == "minimum"


def test_it_recommends_workers_for_the_documented_pickup_rate_under_heavy_arrivals():
    # 30 jobs/s, 60-s jobs: pickup at 80 % of 4 jobs / 30 s per worker needs ceil(30 / (0.8 * 4/30)) workers
    rec = analytics.recommend_workers(arrival_rate=30.0, service_time=60.0, target_p95_seconds=60)
    assert rec.workers == math.ceil(30 / (0.8 * 4 / 30))
    assert rec.binding == "pickup"


def test_it_recommends_more_workers_when_the_slots_are_the_bottleneck():
    rec = analytics.recommend_workers(arrival_rate=0.5, service_time=600.0, target_p95_seconds=40, slots_per_worker=5)
    assert rec.binding == "queue"
    assert rec.p95_at <= 40
    assert analytics.model_queue_p95(workers=rec.workers - 1, arrival_rate=0.5, service_time=600.0, slots_per_worker=5) > 40


def test_it_refuses_a_target_no_number_of_workers_can_meet():
    with pytest.raises(ValueError):
        analytics.recommend_workers(arrival_rate=1.0, service_time=10.0, target_p95_seconds=-1)


def _pressured_series(seed: int, *, pressured: bool, n: int = 96) -> tuple[np.ndarray, np.ndarray]:
    rng = _rng(seed)
    if pressured:
        x = np.clip(rng.normal(80, 12, n), 0, 100)
        y = 20 + np.where(x > 85, (x - 85) * 30, 0) + rng.exponential(5, n)
    else:
        x = np.clip(rng.normal(35, 6, n), 0, 100)
        y = 20 + 0.6 * x + rng.exponential(5, n)  # associated, but never pressured
    return x, y


def test_it_flags_a_pair_with_significance_effect_and_pressure():
    x, y = _pressured_series(1, pressured=True)
    a = analytics.assess_pair(list(x), list(y))
    assert a.flagged, a.reasons
    assert a.ratio is not None and a.ratio > 1.5
    assert a.score > 0


def test_it_does_not_flag_a_correlated_pair_without_pressure():
    x, y = _pressured_series(2, pressured=False)
    a = analytics.assess_pair(list(x), list(y))
    assert a.correlation is not None and a.correlation.spearman_p < 0.001  # significant ...
    assert not a.flagged  # ... but the machine never reaches the threshold
    assert any("no real pressure" in r for r in a.reasons)


def test_it_does_not_flag_pressure_without_an_effect():
    rng = _rng(4)
    x = np.clip(rng.normal(85, 8, 96), 0, 100)
    y = 30 + rng.exponential(5, 96)
    a = analytics.assess_pair(list(x), list(y))
    assert not a.flagged


def test_it_does_not_flag_too_few_pairs():
    x, y = _pressured_series(1, pressured=True, n=12)
    a = analytics.assess_pair(list(x), list(y))
    assert not a.flagged
    assert any("pairs" in r for r in a.reasons)


def test_it_states_the_effect_in_plain_words():
    text = analytics.effect_sentence(metric_label="CPU", target_label="queue delay", threshold=85, ratio=4.12)
    assert text == "when CPU > 85 % queue delay p95 is 4.1x higher"


def test_it_forecasts_when_a_rising_trend_crosses_the_threshold():
    rng = _rng(7)
    days = np.arange(20, dtype=float)
    values = 50 + 1.0 * days + rng.normal(0, 1.5, 20)
    fc = analytics.forecast_saturation(list(days), list(values), threshold=85)
    assert fc is not None
    ref = stats.linregress(days, values)
    assert fc.slope_per_day == pytest.approx(ref.slope)
    expected = (85 - ref.intercept) / ref.slope
    assert fc.day_crossing == pytest.approx(expected, abs=0.6)  # on the 200-point grid
    assert fc.day_earliest is not None and fc.day_latest is not None
    assert fc.day_earliest < fc.day_crossing < fc.day_latest


def test_it_builds_the_prediction_interval_from_the_t_distribution():
    days = np.arange(10, dtype=float)
    values = np.array([10, 12, 11, 14, 15, 15, 18, 17, 20, 21], dtype=float)
    fc = analytics.forecast_saturation(list(days), list(values), threshold=1000, horizon_days=5)
    assert fc is not None
    res = stats.linregress(days, values)
    resid = values - (res.intercept + res.slope * days)
    s = math.sqrt((resid**2).sum() / 8)
    day, fit, lower, upper = fc.band[-1]
    half = stats.t.ppf(0.975, 8) * s * math.sqrt(1 + 1 / 10 + (day - days.mean()) ** 2 / ((days - days.mean()) ** 2).sum())
    assert fit == pytest.approx(res.intercept + res.slope * day)
    assert (upper - fit) == pytest.approx(half)
    assert (fit - lower) == pytest.approx(half)


def test_it_says_a_flat_trend_does_not_saturate():
    fc = analytics.forecast_saturation([0, 1, 2, 3, 4, 5], [50, 49, 51, 50, 48, 49], threshold=85)
    assert fc is not None
    assert fc.day_crossing is None
    assert "no saturation" in fc.note


def test_it_declines_to_forecast_from_too_few_days():
    assert analytics.forecast_saturation([0, 1, 2], [1, 2, 3], threshold=5) is None


def test_it_says_a_trend_already_above_the_threshold_is_saturated_now():
    fc = analytics.forecast_saturation([0, 1, 2, 3, 4, 5], [88, 87, 89, 90, 88, 89], threshold=85)
    assert fc is not None
    assert fc.saturated_now
    assert "already" in fc.note


def test_it_finds_a_longer_tail_under_pressure_significant_by_permutation():
    rng = _rng(9)
    y = rng.exponential(20, 400)
    high = np.zeros(400, dtype=bool)
    high[:80] = True
    y[:80:4] += 600  # a quarter of the pressured jobs are badly delayed (a diluted effect)
    assert analytics.tail_ratio_test(y, high) < 0.01


def test_it_finds_no_tail_effect_when_the_labels_are_unrelated():
    rng = _rng(10)
    y = rng.exponential(20, 400)
    high = rng.random(400) < 0.2
    assert analytics.tail_ratio_test(y, high) > 0.05


def test_it_gives_the_same_permutation_p_value_twice():
    rng = _rng(11)
    y = rng.exponential(20, 200)
    high = rng.random(200) < 0.3
    assert analytics.tail_ratio_test(y, high) == analytics.tail_ratio_test(y, high)


def test_it_flags_a_diluted_effect_with_a_weak_correlation():
    # One member in eight is pressured: only its jobs (1 in 8) are delayed, so rho is small.
    rng = _rng(12)
    n = 600
    x = np.clip(rng.normal(80, 8, n), 0, 100)
    picked = rng.random(n) < 1 / 8
    y = rng.uniform(1, 30, n) + np.where(picked & (x > 85), (x - 85) * 40, 0)
    a = analytics.assess_pair(list(x), list(y))
    assert a.correlation is not None and a.correlation.spearman < 0.3
    assert a.flagged, a.reasons
    assert a.effect_p is not None and a.effect_p < 0.01


def test_it_tests_a_large_group_in_chunks_and_still_finds_the_effect():
    rng = _rng(13)
    y = rng.exponential(20, 3000)
    high = rng.random(3000) < 0.1
    y[high] += rng.exponential(15, int(high.sum()))
    small = analytics.tail_ratio_test(y, high, permutations=199)
    # 2_000_000 // 3000 = 666 rows per chunk: 1999 shuffles span several chunks
    large = analytics.tail_ratio_test(y, high, permutations=1999)
    assert 0 < large <= 1 and 0 < small <= 1
    assert large < 0.05


def test_it_matches_scipy_with_tied_values_and_a_perfect_line():
    x = [1, 2, 2, 3, 3, 3, 4, 5, 5, 6]
    y = [2, 1, 4, 4, 3, 6, 5, 7, 7, 9]
    got = analytics.correlate(x, y)
    assert got is not None
    assert got.spearman == pytest.approx(stats.spearmanr(x, y).statistic)
    assert got.spearman_p == pytest.approx(stats.spearmanr(x, y).pvalue)
    line = analytics.correlate([1, 2, 3, 4], [3, 5, 7, 9])
    assert line is not None and line.pearson == pytest.approx(1.0) and line.pearson_p == 0.0
