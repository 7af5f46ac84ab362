"""workers.rules.saturation: pickup capacity, the load limit, trend inputs and forecast dates."""
from __future__ import annotations

from datetime import date

from workers.rules import saturation


def test_each_online_worker_picks_up_four_jobs_per_thirty_second_poll():
    assert saturation.pickup_capacity_per_hour(2) == 960
    assert saturation.load_threshold(2) == 0.8 * 960


def test_the_partial_first_and_last_days_stay_out_of_the_trend():
    daily = [{"cpu_p95": float(i), "arrivals_peak": i} for i in range(5)]
    assert saturation.trend_inputs(daily) == ([1.0, 2.0, 3.0], [1.0, 2.0, 3.0], [1.0, 2.0, 3.0])
    assert saturation.trend_inputs(daily[:2]) == ([], [], [])


def test_too_few_days_give_no_trend():
    summary = saturation.forecast_summary([1.0, 2.0], [50.0, 60.0], threshold=85.0, first_day="2026-11-01")
    assert (summary["status"], summary["n"]) == ("insufficient", 2)


def test_stored_day_offsets_become_dates():
    dates = saturation.forecast_dates({"first_day": "2026-11-01", "day_crossing": 10.0, "day_earliest": None})
    assert dates == {"day_crossing": date(2026, 11, 11), "day_earliest": None, "day_latest": None}
    assert saturation.forecast_dates({}) == {}
