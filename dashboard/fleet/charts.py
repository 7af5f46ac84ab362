"""Plotly figures as plain dicts: pure functions from rows to ``{"data": [...], "layout": {...}}``.

No database, no request: views pass rows in and hand the dict to ``json_script``; static/js/charts.js
draws it with the vendored plotly.js. Colours are Okabe-Ito (colour-blind safe).
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from workers.fleet.selectors import UtilPoint

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


# Lanes of the signal timeline, top to bottom.
AUTOMATION_LANE = "Automation lastSeen"
HEARTBEAT_LANE = "Log Analytics Heartbeat"
PERF_LANE = "Perf samples"
STATUS_LANE = "Status changes"
LANE_COLOURS = {AUTOMATION_LANE: CPU_COLOUR, HEARTBEAT_LANE: MEM_COLOUR, PERF_LANE: SIGNAL_COLOUR}
# What each lane's "no data" note calls its signal.
_LANE_NOUNS = {AUTOMATION_LANE: "Automation lastSeen", HEARTBEAT_LANE: "Heartbeat", PERF_LANE: "Perf samples",
               STATUS_LANE: "status change"}
# A span shorter than this share of the window (about 2 px: one observation is a span of zero
# length) also gets a tick at each end, so it stays visible; its bar is widened to one step only.
_TICK_SHARE = 1 / 288


def sample_spans(sample_times: Iterable[datetime], *, step: timedelta) -> list[tuple[datetime, datetime]]:
    """Runs of samples no more than ``step`` apart, as (first, last + step): each one-minute sample
    (or hourly rollup row) covers its step, so a missing minute (hour) is a gap."""
    spans: list[tuple[datetime, datetime]] = []
    for t in sorted(sample_times):
        if spans and t - spans[-1][1] <= timedelta(0):
            spans[-1] = (spans[-1][0], max(spans[-1][1], t + step))
        else:
            spans.append((t, t + step))
    return spans


def _utc_text(ts: datetime) -> str:
    return ts.strftime("%Y-%m-%d %H:%M:%S")


def _lane_trace(
    lane: str, spans: Sequence[tuple[datetime, datetime]], *, since: datetime, now: datetime, step: timedelta,
    tick_below: timedelta,
) -> dict[str, Any]:
    """One lane: each span a thick horizontal segment, segments separated by None (a gap stays
    empty). Spans are clipped to [since, now]. One shorter than ``step`` is drawn one step wide (never
    into the next span or past ``now``); one shorter than ``tick_below`` also gets end ticks."""
    x: list[str | None] = []
    y: list[str | None] = []
    text: list[str | None] = []
    sizes: list[int] = []
    clipped = sorted((max(start, since), min(end, now)) for start, end in spans if end >= since and start <= now)
    for i, (start, end) in enumerate(clipped):
        label = f"{lane}: {_utc_text(start)} → {_utc_text(end)} UTC" if end > start else f"{lane}: {_utc_text(start)} UTC (one observation)"
        size = 12 if end - start < tick_below else 0
        if end - start < step:
            following = clipped[i + 1][0] if i + 1 < len(clipped) else now
            preceding = clipped[i - 1][1] if i else since
            end = max(end, min(start + step, following))
            # Grows backwards when the next span (or ``now``) stopped it, never into the previous one.
            start = max(min(start, end - step), preceding)
        x += [_iso(start), _iso(end), None]
        y += [lane, lane, None]
        text += [label, label, None]
        sizes += [size, size, 0]
    colour = LANE_COLOURS[lane]
    return {
        "type": "scatter", "mode": "lines+markers", "name": lane, "x": x, "y": y, "text": text, "hoverinfo": "text",
        "connectgaps": False, "line": {"color": colour, "width": 14},
        "marker": {"symbol": "line-ns", "size": sizes, "color": colour, "line": {"color": colour, "width": 3}},
    }


def signal_timeline(
    *, spans: Mapping[str, Sequence[tuple[datetime, datetime]]], sample_times: Sequence[datetime],
    changes: Sequence[tuple[datetime, str, str, str]], since: datetime, now: datetime, step: timedelta,
    tolerances: Mapping[str, float], window_label: str,
) -> Figure:
    """The worker's liveness signals over [since, now], one lane each.

    - "Automation lastSeen" and "Log Analytics Heartbeat": ``spans`` ({"automation"|"heartbeat":
      [(start, end)]}, from SignalSpan) as solid bars; a gap means the signal was late (observations
      further apart than ``tolerances[source]`` seconds, its late threshold);
    - "Perf samples": runs of ``sample_times`` (one per ``step``), a gap = a missing step;
    - "Status changes": ``changes`` (at, old_status, new_status, reason) as markers coloured by the
      new status, hover "old → new: reason".

    A lane with nothing in the window keeps its place and says so. Azure text (reasons) only ever
    lands in JSON strings; the template embeds the figure with ``json_script``.
    """
    tick_below = max(step, (now - since) * _TICK_SHARE)
    lanes = [
        (AUTOMATION_LANE, spans.get("automation", [])),
        (HEARTBEAT_LANE, spans.get("heartbeat", [])),
        (PERF_LANE, sample_spans(sample_times, step=step)),
    ]
    data: list[dict[str, Any]] = []
    empty: list[str] = []
    for lane, lane_spans in lanes:
        trace = _lane_trace(lane, lane_spans, since=since, now=now, step=step, tick_below=tick_below)
        if not trace["x"]:
            empty.append(lane)
        data.append(trace)
    in_window = [c for c in changes if since <= c[0] <= now]
    if in_window:
        data.append({
            "type": "scatter", "mode": "markers", "name": STATUS_LANE,
            "x": [_iso(at) for at, _o, _n, _r in in_window], "y": [STATUS_LANE] * len(in_window),
            "marker": {"size": 12, "symbol": "diamond", "color": [STATUS_COLOURS.get(new, "#6B6B6B") for _a, _o, new, _r in in_window],
                       "line": {"color": "#1b1b1b", "width": 1}},
            "text": [f"{old} → {new}: {reason}" for _a, old, new, reason in in_window], "hoverinfo": "text+x",
        })
    else:
        empty.append(STATUS_LANE)
    mid = _iso(since + (now - since) / 2)
    layout = _base_layout(
        title=(
            f"Signal timeline ({window_label}): a bar = signal observed, a gap = signal late"
            f"<br><span style='font-size:12px'>gap tolerance: Automation lastSeen {tolerances.get('automation', 0):g} s, "
            f"Heartbeat {tolerances.get('heartbeat', 0):g} s (the late thresholds); Perf: a missing "
            f"{'minute' if step <= timedelta(minutes=1) else 'hour'}</span>"
        ),
        y_title="", height=300,
    )
    layout["margin"] = {"l": 170, "r": 16, "t": 64, "b": 56}
    layout["showlegend"] = False
    layout["xaxis"]["range"] = [_iso(since), _iso(now)]
    order = [STATUS_LANE, PERF_LANE, HEARTBEAT_LANE, AUTOMATION_LANE]  # bottom to top
    layout["yaxis"] = {"type": "category", "categoryorder": "array", "categoryarray": order, "range": [-0.5, len(order) - 0.5],
                       "fixedrange": True, "showgrid": False}
    # An empty lane still needs a point on the category axis to keep its row; an invisible one.
    for lane in empty:
        data.append({"type": "scatter", "mode": "markers", "name": f"{lane} (none)", "x": [mid], "y": [lane],
                     "marker": {"opacity": 0}, "hoverinfo": "skip", "showlegend": False})
    layout["annotations"] = [
        {"x": mid, "y": lane, "xref": "x", "yref": "y", "text": f"no {_LANE_NOUNS[lane]} in this window", "showarrow": False,
         "font": {"color": "#6B6B6B", "size": 12}}
        for lane in empty
    ]
    return {"data": data, "layout": layout}
