"""Pure functions: latency rows -> plotly figure dicts (rendered by static/js/charts.js).

No database access here; every label is data that ``json_script`` escapes on the way to the page.
"""
from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from workers.latency.selectors import TrendPoint
from workers.rules import latency

# Okabe-Ito: distinguishable with the common colour-vision deficiencies.
BLUE, ORANGE, GREEN, VERMILION, GREY = "#0072B2", "#E69F00", "#009E73", "#D55E00", "#999999"


def _layout(title: str, **extra: Any) -> dict[str, Any]:
    layout: dict[str, Any] = {
        "title": {"text": title, "font": {"size": 14}},
        "margin": {"l": 60, "r": 60, "t": 40, "b": 50},
        "height": 300,
        "legend": {"orientation": "h", "y": -0.25},
        "hovermode": "x unified",
    }
    layout.update(extra)
    return layout


def trend_figure(
    points: Sequence[TrendPoint], *, step: str, window_label: str, x_range: tuple[datetime, datetime] | None = None
) -> dict[str, Any]:
    """Queue delay and duration p50/p95 per step (log seconds) with jobs per step as bars.

    The date axis is pinned to ``x_range`` (the window): with no data plotly would otherwise fall
    back to its default date range, January 2000. Steps without data are None: gaps, not zeros.
    """
    x = [p.start.isoformat() for p in points]
    lines = [
        ("queue delay p50", [p.queue.p50 for p in points], BLUE, "dot"),
        ("queue delay p95", [p.queue.p95 for p in points], BLUE, "solid"),
        ("duration p50", [p.duration.p50 for p in points], ORANGE, "dot"),
        ("duration p95", [p.duration.p95 for p in points], ORANGE, "solid"),
    ]
    data: list[dict[str, Any]] = [
        {"type": "bar", "name": f"jobs per {step}", "x": x, "y": [p.jobs for p in points], "yaxis": "y2",
         "marker": {"color": GREY}, "opacity": 0.35}
    ]
    data += [
        {"type": "scatter", "mode": "lines+markers", "name": f"{name} (s)", "x": x, "y": y,
         "line": {"color": color, "dash": dash}, "connectgaps": False}
        for name, y, color, dash in lines
    ]
    return {
        "data": data,
        "layout": _layout(
            f"Latency per {step}, {window_label} (UTC)",
            yaxis={"title": {"text": "seconds (log)"}, "type": "log"},
            yaxis2={"title": {"text": f"jobs per {step}"}, "overlaying": "y", "side": "right", "rangemode": "tozero",
                    "showgrid": False},
            xaxis={"type": "date", **({"range": [x_range[0].isoformat(), x_range[1].isoformat()]} if x_range else {})},
        ),
    }


def histogram_figure(hist: Sequence[int], *, title: str, color: str = BLUE) -> dict[str, Any]:
    """A histogram over the shared log-spaced buckets, trimmed to the occupied range."""
    occupied = [i for i, count in enumerate(hist) if count]
    if occupied:
        lo, hi = occupied[0], occupied[-1]
    else:
        lo, hi = 0, 0
    labels = [latency.bucket_label(i) for i in range(lo, hi + 1)]
    return {
        "data": [{"type": "bar", "name": "jobs", "x": labels, "y": list(hist[lo: hi + 1]), "marker": {"color": color}}],
        "layout": _layout(title, xaxis={"title": {"text": "bucket (log-spaced)"}, "type": "category"},
                          yaxis={"title": {"text": "jobs"}}, hovermode="closest", showlegend=False),
    }
