"""workers.rules.forecast: the saturation forecast against scipy's t distribution."""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from workers.rules import forecast


def _rng(seed: int = 3) -> np.random.Generator:
    return np.random.default_rng(seed)


def test_it_forecasts_when_a_rising_trend_crosses_the_threshold():
    rng = _rng(7)
    days = np.arange(20, dtype=float)
    values = 50 + 1.0 * days + rng.normal(0, 1.5, 20)
    fc = forecast.forecast_saturation(list(days), list(values), threshold=85)
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
    fc = forecast.forecast_saturation(list(days), list(values), threshold=1000, horizon_days=5)
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
    fc = forecast.forecast_saturation([0, 1, 2, 3, 4, 5], [50, 49, 51, 50, 48, 49], threshold=85)
    assert fc is not None
    assert fc.day_crossing is None
    assert "no saturation" in fc.note


def test_it_declines_to_forecast_from_too_few_days():
    assert forecast.forecast_saturation([0, 1, 2], [1, 2, 3], threshold=5) is None


def test_it_says_a_trend_already_above_the_threshold_is_saturated_now():
    fc = forecast.forecast_saturation([0, 1, 2, 3, 4, 5], [88, 87, 89, 90, 88, 89], threshold=85)
    assert fc is not None
    assert fc.saturated_now
    assert "already" in fc.note
