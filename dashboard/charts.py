"""Plotly figures as plain dicts: pure functions from rows to ``{"data": [...], "layout": {...}}``.

No database, no request: views pass rows in and hand the dict to ``json_script``; static/js/charts.js
draws it with the vendored plotly.js. Colours are Okabe-Ito (colour-blind safe).
"""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Iterable, Sequence

from workers.selectors import UtilPoint

CPU_COLOUR = "#0072B2"
MEM_COLOUR = "#E69F00"
SIGNAL_COLOUR = "#009E73"
STATUS_COLOURS = {"online": "#009E73", "late": "#E69F00", "offline": "#D55E00", "never": "#6B6B6B", "unknown": "#6B6B6B"}

Figure = dict[str, Any]


def _iso(ts: datetime) -> str:
    return ts.isoformat().replace("+00:00", "Z")


def _base_layout(*, title: str, y_title: str, height: int = 340) -> dict[str, Any]:
    return {
        "title": {"text": title, "font": {"size": 14}},
        "height": height,
        "margin": {"l": 56, "r": 16, "t": 40, "b": 96},
        "xaxis": {"type": "date", "title": {"text": "time (UTC)"}},
        "yaxis": {"title": {"text": y_title}},
        "legend": {"orientation": "h", "x": 0, "y": -0.32, "yanchor": "top"},
        "paper_bgcolor": "rgba(0,0,0,0)",
        "plot_bgcolor": "#ffffff",
    }


def sparkline(points: Sequence[UtilPoint], *, metric: str) -> Figure:
    """A tiny line of one metric ("cpu" or "mem", percent) with no axes, for table cells."""
    colour = CPU_COLOUR if metric == "cpu" else MEM_COLOUR
    values = [p.cpu if metric == "cpu" else p.mem for p in points]
    return {
        "data": [{
            "type": "scatter", "mode": "lines", "x": [_iso(p.ts) for p in points], "y": values,
            "line": {"color": colour, "width": 1.5}, "hoverinfo": "skip", "connectgaps": False,
        }],
        "layout": {
            "height": 36, "width": 160, "margin": {"l": 0, "r": 0, "t": 2, "b": 2}, "showlegend": False,
            "xaxis": {"visible": False}, "yaxis": {"visible": False, "range": [0, 100]},
            "paper_bgcolor": "rgba(0,0,0,0)", "plot_bgcolor": "rgba(0,0,0,0)",
        },
    }


def utilization_chart(points: Sequence[UtilPoint], *, window_label: str, resolution: str) -> Figure:
    """CPU and memory (percent, 0-100) over the window."""
    x = [_iso(p.ts) for p in points]
    layout = _base_layout(title=f"CPU and memory, % ({window_label}, {resolution})", y_title="percent (%)")
    layout["yaxis"]["range"] = [0, 100]
    return {
        "data": [
            {"type": "scatter", "mode": "lines", "name": "CPU %", "x": x, "y": [p.cpu for p in points],
             "line": {"color": CPU_COLOUR, "width": 2}},
            {"type": "scatter", "mode": "lines", "name": "Memory %", "x": x, "y": [p.mem for p in points],
             "line": {"color": MEM_COLOUR, "width": 2, "dash": "dot"}},
        ],
        "layout": layout,
    }


def signal_age_series(sample_times: Iterable[datetime], *, since: datetime, now: datetime, step: timedelta) -> tuple[list[datetime], list[float | None]]:
    """Minutes since the latest Log Analytics sample, at every ``step`` from ``since`` to ``now``.

    None before the first sample in the window (unknown, not zero).
    """
    times = sorted(sample_times)
    xs: list[datetime] = []
    ys: list[float | None] = []
    i = 0
    latest: datetime | None = None
    t = since
    while t <= now:
        while i < len(times) and times[i] <= t:
            latest = times[i]
            i += 1
        xs.append(t)
        ys.append(None if latest is None else round((t - latest).total_seconds() / 60, 1))
        t += step
    return xs, ys


def signal_timeline(
    *, sample_times: Sequence[datetime], changes: Sequence[tuple[datetime, str, str, str]], since: datetime, now: datetime,
    step: timedelta, last_seen_at: datetime | None, last_heartbeat_at: datetime | None, window_label: str,
) -> Figure:
    """Signal age over time (minutes since the last Log Analytics sample, one point per ``step``), with
    status changes as coloured markers and the latest Automation lastSeen / Heartbeat as markers.

    ``changes`` are (at, old_status, new_status, reason).
    """
    xs, ys = signal_age_series(sample_times, since=since, now=now, step=step)
    data: list[dict[str, Any]] = [{
        "type": "scatter", "mode": "lines", "name": "minutes since last Log Analytics sample",
        "x": [_iso(x) for x in xs], "y": ys, "line": {"color": SIGNAL_COLOUR, "width": 2, "shape": "hv"},
    }]
    if changes:
        data.append({
            "type": "scatter", "mode": "markers", "name": "status change",
            "x": [_iso(at) for at, _o, _n, _r in changes], "y": [0] * len(changes),
            "marker": {"size": 12, "symbol": "diamond", "color": [STATUS_COLOURS.get(new, "#6B6B6B") for _a, _o, new, _r in changes],
                       "line": {"color": "#1b1b1b", "width": 1}},
            "text": [f"{old} → {new}: {reason}" for _a, old, new, reason in changes], "hoverinfo": "text+x",
        })
    for label, at, symbol in (("Automation lastSeen (latest)", last_seen_at, "triangle-up"), ("Heartbeat (latest)", last_heartbeat_at, "square")):
        if at is not None and since <= at <= now:
            data.append({"type": "scatter", "mode": "markers", "name": label, "x": [_iso(at)], "y": [0],
                         "marker": {"size": 11, "symbol": symbol, "color": CPU_COLOUR if symbol == "triangle-up" else MEM_COLOUR}})
    layout = _base_layout(title=f"Signal timeline ({window_label}): data age and status changes", y_title="age (minutes)")
    layout["yaxis"]["rangemode"] = "tozero"
    return {"data": data, "layout": layout}
