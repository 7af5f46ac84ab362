"""Plotly figures for the correlation and capacity pages, as plain dicts (pure: rows in, dict out).

Views hand them to ``json_script``; static/js/charts.js draws them with the vendored plotly.js.
Every axis names its unit and every title its window. Colours are Okabe-Ito (colour-blind safe).
"""
from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from typing import Any

from workers.rules.forecast import Forecast

Figure = dict[str, Any]
POINT_COLOUR = "#0072B2"
FIT_COLOUR = "#D55E00"
THRESHOLD_COLOUR = "#6B6B6B"
BAND_COLOUR = "rgba(230,159,0,0.25)"
LINE_COLOUR = "#009E73"
DAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
# Light = low, dark = high (plotly's named "Blues" runs the other way).
LOAD_SCALE = [[0.0, "#f7fbff"], [0.5, "#6baed6"], [1.0, "#08306b"]]
DELAY_SCALE = [[0.0, "#fff5eb"], [0.5, "#fd8d3c"], [1.0, "#7f2704"]]


def _layout(*, title: str, x_title: str, y_title: str, height: int = 320) -> dict[str, Any]:
    return {
        "title": {"text": title, "font": {"size": 14}},
        "height": height,
        "margin": {"l": 60, "r": 16, "t": 40, "b": 48},
        "xaxis": {"title": {"text": x_title}},
        "yaxis": {"title": {"text": y_title}},
        "legend": {"orientation": "h", "y": -0.3},
        "paper_bgcolor": "rgba(0,0,0,0)",
        "plot_bgcolor": "#ffffff",
    }


def scatter_with_fit(
    points: Sequence[Sequence[float]],
    *,
    slope: float | None,
    intercept: float | None,
    threshold: float,
    metric_label: str,
    target_label: str,
    subject: str,
    window_label: str,
    bucket_label: str,
) -> Figure:
    """Each job as a point (metric %, target s), the least-squares line, and the pressure threshold."""
    xs = [p[0] for p in points]
    ys = [p[1] for p in points]
    data: list[dict[str, Any]] = [
        {
            "type": "scatter",
            "mode": "markers",
            "name": f"jobs (utilization in {bucket_label} buckets)",
            "x": xs,
            "y": ys,
            "marker": {"color": POINT_COLOUR, "size": 6, "opacity": 0.7},
            "hovertemplate": f"{metric_label} %{{x:.0f}} %<br>{target_label} %{{y:.1f}} s<extra></extra>",
        }
    ]
    if slope is not None and intercept is not None and xs:
        lo, hi = min(xs), max(xs)
        data.append(
            {
                "type": "scatter",
                "mode": "lines",
                "name": f"least-squares fit ({slope:+.2f} s per %)",
                "x": [lo, hi],
                "y": [intercept + slope * lo, intercept + slope * hi],
                "line": {"color": FIT_COLOUR, "width": 2},
            }
        )
    layout = _layout(
        title=f"{subject}: {metric_label} vs {target_label} ({window_label})",
        x_title=f"{metric_label}, mean in the bucket (%)",
        y_title=f"{target_label} of each of the group's jobs (s)",
    )
    layout["shapes"] = [
        {"type": "line", "xref": "x", "yref": "paper", "x0": threshold, "x1": threshold, "y0": 0, "y1": 1,
         "line": {"color": THRESHOLD_COLOUR, "dash": "dash", "width": 1}}
    ]
    layout["annotations"] = [
        {"x": threshold, "xref": "x", "y": 1, "yref": "paper", "text": f"pressure {threshold:g} %", "showarrow": False, "xanchor": "left", "font": {"size": 11}}
    ]
    return {"data": data, "layout": layout}


def hour_of_week_heatmap(values: Sequence[float | None], *, title: str, unit: str, colour_scale: list | None = None) -> Figure:
    """168 values (Monday 00:00 UTC first) as a 7 x 24 heat map; missing cells stay blank."""
    padded = list(values) + [None] * (168 - len(values))
    z = [padded[d * 24 : (d + 1) * 24] for d in range(7)]
    layout = _layout(title=title, x_title="hour of day (UTC)", y_title="", height=300)
    layout["yaxis"] = {"autorange": "reversed", "title": {"text": ""}}
    layout["xaxis"]["dtick"] = 2
    return {
        "data": [
            {
                "type": "heatmap",
                "z": z,
                "x": list(range(24)),
                "y": DAYS,
                "colorscale": colour_scale or LOAD_SCALE,
                "colorbar": {"title": {"text": unit}},
                "hoverongaps": False,
                "hovertemplate": f"%{{y}} %{{x}}:00 UTC<br>%{{z:.2f}} {unit}<extra></extra>",
            }
        ],
        "layout": layout,
    }


def trend_with_forecast(
    daily: Sequence[dict],
    *,
    key: str,
    forecast: Forecast | None,
    threshold: float | None,
    first_day: date,
    title: str,
    y_title: str,
) -> Figure:
    """Observed daily values, the fitted trend with its 95 % prediction band, and the threshold."""
    xs = [row["day"] for row in daily]
    ys = [row.get(key) for row in daily]
    data: list[dict[str, Any]] = [
        {"type": "scatter", "mode": "lines+markers", "name": "observed (daily)", "x": xs, "y": ys, "line": {"color": LINE_COLOUR}, "connectgaps": False}
    ]
    if forecast is not None:
        days = [(first_day + timedelta(days=b[0])).isoformat() for b in forecast.band]
        data += [
            {"type": "scatter", "mode": "lines", "name": "95 % prediction interval (upper)", "x": days,
             "y": [b[3] for b in forecast.band], "line": {"width": 0}, "showlegend": False, "hoverinfo": "skip"},
            {
                "type": "scatter",
                "mode": "lines",
                "name": "95 % prediction interval",
                "x": days,
                "y": [b[2] for b in forecast.band],
                "fill": "tonexty",
                "fillcolor": BAND_COLOUR,
                "line": {"width": 0},
            },
            {"type": "scatter", "mode": "lines", "name": f"linear trend ({forecast.slope_per_day:+.2f} per day)", "x": days,
             "y": [b[1] for b in forecast.band], "line": {"color": FIT_COLOUR, "dash": "dot"}},
        ]
    layout = _layout(title=title, x_title="day (UTC)", y_title=y_title)
    layout["xaxis"]["type"] = "date"
    if threshold is not None:
        layout["shapes"] = [
            {"type": "line", "xref": "paper", "yref": "y", "x0": 0, "x1": 1, "y0": threshold, "y1": threshold,
             "line": {"color": THRESHOLD_COLOUR, "dash": "dash", "width": 1}}
        ]
        layout["annotations"] = [{"x": 0, "xref": "paper", "y": threshold, "yref": "y", "text": f"saturation {threshold:g}",
                                  "showarrow": False, "yanchor": "bottom", "xanchor": "left", "font": {"size": 11}}]
    return {"data": data, "layout": layout}
