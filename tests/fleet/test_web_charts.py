"""charts.py: pure functions from rows to plotly figure dicts."""
from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from dashboard.fleet import charts
from workers.fleet.selectors import UtilPoint

T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


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


SINCE = T0 - timedelta(hours=24)
TOLERANCES = {"automation": 90.0, "heartbeat": 240.0}


def timeline(spans=None, sample_times=(), changes=(), *, since=SINCE, now=T0, step=timedelta(minutes=1)):
    return charts.signal_timeline(
        spans=spans or {}, sample_times=list(sample_times), changes=list(changes), since=since, now=now, step=step,
        tolerances=TOLERANCES, window_label="last 24 h",
    )


def lane(figure, name):
    return next(t for t in figure["data"] if t["name"] == name)


def segments(trace) -> list[tuple[str, str]]:
    """(start, end) of each drawn segment: pairs of points separated by None."""
    xs = trace["x"]
    assert all(x is None for x in xs[2::3])
    return list(zip(xs[0::3], xs[1::3]))


def test_it_produces_json_serialisable_figures():
    figure = timeline({"automation": [(T0 - timedelta(hours=1), T0)]}, [T0], [(T0, "online", "offline", "why")])
    json.dumps(figure)


def test_it_draws_three_signal_lanes_and_a_status_lane_over_the_whole_window():
    figure = timeline({"automation": [(SINCE, T0)], "heartbeat": [(SINCE, T0)]}, [T0 - timedelta(minutes=5)])
    layout = figure["layout"]
    assert layout["yaxis"]["categoryarray"] == ["Status changes", "Perf samples", "Log Analytics Heartbeat", "Automation lastSeen"]
    assert layout["xaxis"]["range"] == ["2026-11-19T12:00:00Z", "2026-11-20T12:00:00Z"]
    for name in ("Automation lastSeen", "Log Analytics Heartbeat", "Perf samples"):
        trace = lane(figure, name)
        assert set(trace["y"]) == {name, None}
        assert trace["line"]["width"] >= 10 and trace["connectgaps"] is False


def test_it_leaves_a_gap_between_spans_empty():
    spans = [(T0 - timedelta(hours=3), T0 - timedelta(hours=2)), (T0 - timedelta(hours=1), T0)]
    trace = lane(timeline({"heartbeat": spans}), "Log Analytics Heartbeat")
    assert segments(trace) == [("2026-11-20T09:00:00Z", "2026-11-20T10:00:00Z"), ("2026-11-20T11:00:00Z", "2026-11-20T12:00:00Z")]
    assert trace["x"][2] is None and trace["y"][2] is None  # nothing drawn from 10:00 to 11:00


def test_it_widens_a_single_observation_so_it_stays_visible():
    trace = lane(timeline({"automation": [(T0 - timedelta(hours=2), T0 - timedelta(hours=2))]}), "Automation lastSeen")
    [(start, end)] = segments(trace)
    width = datetime.fromisoformat(end) - datetime.fromisoformat(start)
    assert width >= timedelta(minutes=1)
    assert trace["marker"]["size"][:2] == [12, 12]  # and a tick marks it
    assert "one observation" in trace["text"][0]


def test_it_keeps_a_widened_observation_at_the_end_of_the_window_inside_it():
    trace = lane(timeline({"automation": [(T0, T0)]}), "Automation lastSeen")
    [(start, end)] = segments(trace)
    assert end == "2026-11-20T12:00:00Z" and start < end


def test_it_does_not_mark_long_spans_with_ticks():
    trace = lane(timeline({"automation": [(T0 - timedelta(hours=3), T0)]}), "Automation lastSeen")
    assert trace["marker"]["size"] == [0, 0, 0]


def test_it_clips_spans_to_the_window():
    trace = lane(timeline({"automation": [(SINCE - timedelta(hours=5), SINCE + timedelta(hours=1))]}), "Automation lastSeen")
    assert segments(trace) == [("2026-11-19T12:00:00Z", "2026-11-19T13:00:00Z")]


def test_it_turns_perf_samples_into_runs_with_gaps_at_missing_minutes():
    samples = [T0 - timedelta(minutes=m) for m in (10, 9, 8, 5, 4)]
    trace = lane(timeline(sample_times=samples), "Perf samples")
    assert segments(trace) == [("2026-11-20T11:50:00Z", "2026-11-20T11:53:00Z"), ("2026-11-20T11:55:00Z", "2026-11-20T11:57:00Z")]


def test_it_says_when_a_lane_has_nothing_in_the_window():
    figure = timeline({"automation": [(T0 - timedelta(hours=1), T0)]})
    notes = [a["text"] for a in figure["layout"]["annotations"]]
    assert notes == ["no Heartbeat in this window", "no Perf samples in this window", "no status change in this window"]
    # The empty lane keeps its row (an invisible point on it).
    assert any(t["y"] == ["Log Analytics Heartbeat"] and t["marker"]["opacity"] == 0 for t in figure["data"])


def test_it_states_the_window_and_the_gap_tolerance_in_the_title():
    title = timeline()["layout"]["title"]["text"]
    assert "last 24 h" in title
    assert "Automation lastSeen 90 s" in title and "Heartbeat 240 s" in title


def test_it_marks_status_changes_with_their_colour():
    figure = timeline(changes=[(T0, "online", "offline", "Automation last seen 4 min ago")])
    marker = lane(figure, "Status changes")
    assert marker["marker"]["color"] == ["#D55E00"]
    assert marker["y"] == ["Status changes"]
    assert marker["text"] == ["online → offline: Automation last seen 4 min ago"]


def test_it_draws_hourly_rollups_as_hour_wide_runs_in_the_7_day_view():
    since = T0 - timedelta(days=7)
    hours = [T0 - timedelta(hours=h) for h in (3, 2)]
    figure = timeline(sample_times=hours, since=since, step=timedelta(hours=1))
    assert segments(lane(figure, "Perf samples")) == [("2026-11-20T09:00:00Z", "2026-11-20T11:00:00Z")]
    assert "missing hour" in figure["layout"]["title"]["text"]
