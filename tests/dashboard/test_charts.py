"""charts.py: pure functions from rows to plotly figure dicts."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

from dashboard import charts
from workers.selectors import UtilPoint

T0 = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)


def test_it_draws_a_sparkline_of_one_metric():
    points = [UtilPoint(T0, 10.0, 50.0), UtilPoint(T0 + timedelta(hours=1), None, 55.0)]
    figure = charts.sparkline(points, metric="mem")
    assert figure["data"][0]["y"] == [50.0, 55.0]
    assert figure["data"][0]["x"] == ["2026-11-20T12:00:00Z", "2026-11-20T13:00:00Z"]
    assert figure["layout"]["yaxis"]["range"] == [0, 100]


def test_it_labels_utilization_charts_with_units_and_window():
    figure = charts.utilization_chart([UtilPoint(T0, 10.0, 50.0)], window_label="last 24 h", resolution="1-minute samples")
    assert figure["layout"]["title"]["text"] == "CPU and memory, % (last 24 h, 1-minute samples)"
    assert [t["name"] for t in figure["data"]] == ["CPU %", "Memory %"]


def test_it_produces_json_serialisable_figures():
    figure = charts.signal_timeline(
        sample_times=[T0], changes=[(T0, "online", "offline", "why")], since=T0 - timedelta(minutes=5), now=T0,
        step=timedelta(minutes=1), last_seen_at=T0, last_heartbeat_at=None, window_label="last 24 h",
    )
    json.dumps(figure)


def test_it_measures_signal_age_per_step():
    samples = [T0 + timedelta(minutes=1), T0 + timedelta(minutes=2)]
    xs, ys = charts.signal_age_series(samples, since=T0, now=T0 + timedelta(minutes=5), step=timedelta(minutes=1))
    assert len(xs) == 6
    assert ys == [None, 0.0, 0.0, 1.0, 2.0, 3.0]


def test_it_marks_status_changes_with_their_colour():
    figure = charts.signal_timeline(
        sample_times=[], changes=[(T0, "online", "offline", "Automation last seen 4 min ago")], since=T0 - timedelta(hours=1),
        now=T0, step=timedelta(minutes=1), last_seen_at=None, last_heartbeat_at=None, window_label="last 24 h",
    )
    marker = figure["data"][1]
    assert marker["marker"]["color"] == ["#D55E00"]
    assert marker["text"] == ["online → offline: Automation last seen 4 min ago"]


def test_it_leaves_out_latest_signal_markers_outside_the_window():
    figure = charts.signal_timeline(
        sample_times=[], changes=[], since=T0 - timedelta(hours=1), now=T0, step=timedelta(minutes=1),
        last_seen_at=T0 - timedelta(days=3), last_heartbeat_at=T0 - timedelta(minutes=2), window_label="last 24 h",
    )
    assert [t["name"] for t in figure["data"]] == ["minutes since last Log Analytics sample", "Heartbeat (latest)"]
