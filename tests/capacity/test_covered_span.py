"""Capacity figures divide by the time the data covers, not by the window's nominal length.

The scene of issue 12: 26 h of steady data. The 30-day run divided 26 h of jobs by 720 h ("0.7
jobs/h, busiest hour 0", every group "recommend 2"); now the 7-day and 30-day runs agree with each
other, hours without data are blank cells (None), and the page says how much of the window is covered.
"""
from __future__ import annotations

from datetime import timedelta

import pytest

from tests.capacity.data import build_fleet
from tests.fixtures.web import NOW
from workers.capacity.correlation import compute_findings
from workers.models import GroupCapacity

pytestmark = pytest.mark.django_db


@pytest.fixture
def steady(now):
    """26 h of steady data (30 jobs/h per group, hourly utilization rollups), analysed for 7 d and 30 d."""
    build_fleet(now=NOW, hours=26, seed=3, hourly_rollup=True, jobs_per_hour=30)
    return compute_findings("7d", NOW), compute_findings("30d", NOW)


def _by_group(run) -> dict[str, GroupCapacity]:
    return {c.group.name: c for c in GroupCapacity.objects.filter(run=run).select_related("group")}


def test_jobs_per_hour_agree_between_the_7d_and_30d_windows(steady):
    week, month = (_by_group(run) for run in steady)
    assert week.keys() == month.keys() and week
    for name, cap in week.items():
        other = month[name]
        assert cap.jobs == other.jobs > 0
        assert cap.arrival_rate_mean == pytest.approx(other.arrival_rate_mean, rel=0.10)
        # ~30 jobs/h per group, not 26 h of jobs spread over 720 h.
        assert 20 < other.arrival_rate_mean < 40
        assert other.arrival_rate_peak >= other.arrival_rate_mean
        assert cap.arrival_rate_peak == pytest.approx(other.arrival_rate_peak, rel=0.10)


def test_hours_and_days_without_data_are_missing_not_zero(steady):
    _week, month = steady
    heat = month.fleet["heat_load"]
    assert len(heat) == 168
    # 26 h of data touch at most 27 hours of the week; the other cells are blank, not 0.
    assert 24 <= sum(v is not None for v in heat) <= 27
    cap = next(iter(_by_group(month).values()))
    days_before = [d for d in cap.daily if d["day"] < (NOW - timedelta(hours=26)).date().isoformat()]
    assert days_before and all(d["jobs"] is None and d["arrivals_peak"] is None for d in days_before)


def test_a_partly_covered_window_says_so_on_the_capacity_pages(client_in, steady):
    for url in ("/capacity/", "/correlation/", "/capacity/report/"):
        body = client_in.get(url, {"window": "30d"}).content.decode()
        assert "26 h of data in this 30-day window" in body, url
