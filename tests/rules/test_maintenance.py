"""The pure maintenance-window timing rule (one-off and weekly), judged at an explicit ``now``."""
from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest

from workers.rules.maintenance import WindowSpec, current_occurrence, next_occurrence, parse_weekdays, spec_of, window_active

T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)  # a Friday


def test_it_covers_a_one_off_window_with_an_exclusive_end():
    spec = WindowSpec(starts_at=T0, ends_at=T0 + timedelta(hours=1))
    assert window_active(spec, T0)
    assert not window_active(spec, T0 + timedelta(hours=1))
    assert not window_active(spec, T0 - timedelta(seconds=1))


def test_it_covers_a_weekly_window_on_its_weekdays_only():
    # 2026-11-20 is a Friday (weekday 4).
    spec = WindowSpec(weekdays=(4,), start_time=time(11, 30), duration_minutes=60)
    assert window_active(spec, T0)
    assert not window_active(spec, T0 + timedelta(days=1))
    assert window_active(spec, T0 + timedelta(days=7))


def test_it_covers_a_weekly_window_that_runs_past_midnight():
    spec = WindowSpec(weekdays=(3,), start_time=time(23, 0), duration_minutes=14 * 60)  # Thu 23:00 -> Fri 13:00
    assert current_occurrence(spec, T0) == (datetime(2026, 11, 19, 23, 0, tzinfo=UTC), datetime(2026, 11, 20, 13, 0, tzinfo=UTC))


def test_it_names_the_next_weekly_occurrence():
    spec = WindowSpec(weekdays=(0,), start_time=time(2, 0), duration_minutes=90)
    assert next_occurrence(spec, T0) == (datetime(2026, 11, 23, 2, 0, tzinfo=UTC), datetime(2026, 11, 23, 3, 30, tzinfo=UTC))


def test_it_rejects_weekdays_out_of_range():
    with pytest.raises(ValueError):
        parse_weekdays("1,7")


def test_it_reads_the_timing_of_a_stored_window():
    class Stored:
        starts_at = None
        ends_at = None
        weekdays = "4, 0,4"
        start_time = time(11, 30)
        duration_minutes = 60

    spec = spec_of(Stored())
    assert spec == WindowSpec(weekdays=(0, 4), start_time=time(11, 30), duration_minutes=60)
    assert spec.recurring and window_active(spec, T0)
