"""Pure forecast of saturation: when a daily series (CPU p95, busiest-hour arrivals) reaches its limit.

Ordinary least squares on daily values with a Student-t prediction interval; the saturation date is
where the fitted line (and each edge of the interval) crosses the threshold.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from workers.rules.stats import clean_pairs

FORECAST_METHOD = (
    "Ordinary least squares line through the daily values; 95 % Student-t prediction interval "
    "(y +/- t * s * sqrt(1 + 1/n + (x - mean x)^2 / Sxx)). The saturation date is where the line "
    "crosses the threshold; the range is where the interval's upper and lower edges cross it. "
    "Assumes a steady linear trend: it ignores step changes, holidays and growth that accelerates."
)


@dataclass(frozen=True)
class Forecast:
    n: int
    slope_per_day: float
    intercept: float
    threshold: float
    day_crossing: float | None  # days from the first point where the fitted line reaches the threshold
    day_earliest: float | None  # where the upper edge of the interval reaches it
    day_latest: float | None  # where the lower edge reaches it (None: not within the horizon)
    horizon_days: float
    band: tuple[tuple[float, float, float, float], ...]  # (day, fit, lower, upper) over history + horizon
    saturated_now: bool = False  # the fitted value on the last day is already at or above the threshold
    method: str = FORECAST_METHOD
    note: str = ""


def _first_crossing(days: np.ndarray, values: np.ndarray, threshold: float) -> float | None:
    above = np.nonzero(values >= threshold)[0]
    if above.size == 0:
        return None
    i = int(above[0])
    if i == 0:
        return float(days[0])
    d0, d1, v0, v1 = days[i - 1], days[i], values[i - 1], values[i]
    return float(d0 + (threshold - v0) * (d1 - d0) / (v1 - v0))


def forecast_saturation(
    days: Sequence[float],
    values: Sequence[float | None],
    *,
    threshold: float,
    horizon_days: float = 90.0,
    confidence: float = 0.95,
    min_points: int = 5,
) -> Forecast | None:
    """Linear trend of daily values with a prediction interval, and when it reaches ``threshold``.

    ``days`` are day offsets (0 = first day). None when there are fewer than ``min_points`` days
    (a line through 3 points says nothing honest about next month).
    """
    xa, ya = clean_pairs(list(days), list(values))
    n = int(xa.size)
    if n < min_points or np.ptp(xa) == 0:
        return None
    res = stats.linregress(xa, ya)
    resid = ya - (res.intercept + res.slope * xa)
    s = float(np.sqrt(np.sum(resid**2) / (n - 2))) if n > 2 else 0.0
    t = float(stats.t.ppf(0.5 + confidence / 2, n - 2))
    xbar = float(xa.mean())
    sxx = float(np.sum((xa - xbar) ** 2))
    last = float(xa.max())
    grid = np.linspace(float(xa.min()), last + horizon_days, 200)
    fit = res.intercept + res.slope * grid
    half = t * s * np.sqrt(1 + 1 / n + (grid - xbar) ** 2 / sxx)
    lower, upper = fit - half, fit + half
    future = grid >= last
    saturated_now = bool(res.intercept + res.slope * last >= threshold)
    note = ""
    if saturated_now:
        note = "already at or above the threshold on the trend line"
    elif res.slope <= 0:
        note = "flat or falling trend: no saturation expected on this trend"
    return Forecast(
        n=n,
        slope_per_day=float(res.slope),
        intercept=float(res.intercept),
        threshold=threshold,
        day_crossing=_first_crossing(grid[future], fit[future], threshold),
        day_earliest=_first_crossing(grid[future], upper[future], threshold),
        day_latest=_first_crossing(grid[future], lower[future], threshold),
        horizon_days=horizon_days,
        band=tuple((float(d), float(f), float(lo), float(hi)) for d, f, lo, hi in zip(grid, fit, lower, upper)),
        saturated_now=saturated_now,
        note=note,
    )
