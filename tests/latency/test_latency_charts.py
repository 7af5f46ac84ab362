"""Pure pieces of the latency pages: figure builders and CSV cell neutralisation."""
from __future__ import annotations

from datetime import UTC, datetime

import pytest

from dashboard.csv_export import neutralise
from dashboard.latency import charts as charts_latency
from workers.latency.selectors import Percentiles, TrendPoint
from workers.rules import latency


@pytest.mark.parametrize("cell,expected", [
    ("=1+1", "'=1+1"), ("+cmd", "'+cmd"), ("-2+3", "'-2+3"), ("@SUM(A1)", "'@SUM(A1)"), ("\tx", "'\tx"),
    ("Patch-Servers", "Patch-Servers"), (-5, -5), (1.5, 1.5), (None, ""), (True, "true"),
])
def test_it_neutralises_formula_cells_only(cell, expected):
    assert neutralise(cell) == expected


def test_it_trims_the_histogram_figure_to_occupied_buckets():
    hist = latency.histogram([5.0, 5.5, 300.0])
    fig = charts_latency.histogram_figure(hist, title="Queue delay")
    bars = fig["data"][0]
    assert sum(bars["y"]) == 3 and bars["y"][0] > 0 and bars["y"][-1] > 0
    assert bars["x"][0] == latency.bucket_label(latency.bucket_index(5.0))


def test_it_plots_each_trend_point_with_its_percentiles():
    points = [TrendPoint(datetime(2026, 11, 25, h, tzinfo=UTC), 10 + h, Percentiles(1, 2, 3), Percentiles(4, 5, 6))
              for h in range(3)]
    fig = charts_latency.trend_figure(points, step="hour", window_label="last 24 hours")
    by_name = {trace["name"]: trace for trace in fig["data"]}
    assert by_name["jobs per hour"]["y"] == [10, 11, 12]
    assert by_name["queue delay p95 (s)"]["y"] == [2, 2, 2]
    assert fig["layout"]["yaxis"]["type"] == "log"
