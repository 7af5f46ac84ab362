"""Pure rules for a group's saturation: what its workers can pick up, and when its trend reaches that.

A group saturates on CPU (its daily CPU p95 reaches the pressure limit,
``workers.rules.pressure.PressureLimits``) or on load (its busiest hour's arrivals reach 80 % of
what its online workers can pick up: 4 jobs per 30-s poll each, ``workers.rules.queueing``). The
capacity run stores one forecast summary per series (``forecast_summary``, day offsets from the
window's first day); the pages turn the offsets back into dates (``forecast_dates``).
"""
from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta

from workers.rules import queueing
from workers.rules.forecast import forecast_saturation

HOUR_SECONDS = 3600
PICKUP_PER_WORKER_PER_HOUR = queueing.JOBS_PER_POLL * HOUR_SECONDS / queueing.POLL_INTERVAL_SECONDS  # 480
# Share of the pickup capacity at which the busiest hour counts as saturated.
LOAD_SATURATION_SHARE = 0.8


def pickup_capacity_per_hour(online: int) -> float:
    """Jobs per hour the online workers can pick up: 4 jobs per 30-s poll each (documented)."""
    return online * PICKUP_PER_WORKER_PER_HOUR


def load_threshold(online: int) -> float:
    """Busiest-hour arrivals at which a group counts as saturated: 80 % of what it can pick up."""
    return LOAD_SATURATION_SHARE * pickup_capacity_per_hour(online)


def trend_inputs(daily: Sequence[dict]) -> tuple[list[float], list[float | None], list[float | None]]:
    """(day offsets, CPU p95 per day, busiest-hour arrivals per day) for the forecast.

    The first and last days of a window are partial: they are left out so they do not bend the line.
    A day without data (``None``, before the first data we hold) stays None: missing, not zero.
    """
    full = daily[1:-1] if len(daily) > 2 else []
    offsets = [float(i + 1) for i in range(len(full))]
    return offsets, [row.get("cpu_p95") for row in full], [None if row.get("arrivals_peak") is None else float(row["arrivals_peak"]) for row in full]


def forecast_summary(days: Sequence[float], values: Sequence[float | None], *, threshold: float, first_day: str) -> dict:
    """The stored forecast of one series: status (insufficient, saturated, crossing, flat,
    no_crossing), the fitted line, and the crossing days as offsets from ``first_day``."""
    fc = forecast_saturation(days, values, threshold=threshold)
    if fc is None:
        return {"threshold": threshold, "first_day": first_day, "n": sum(v is not None for v in values), "status": "insufficient",
                "note": "fewer than 5 days of data: no trend"}

    def when(d: float | None) -> float | None:
        return None if d is None else round(d, 2)

    status = "no_crossing"
    if fc.saturated_now:
        status = "saturated"
    elif fc.day_crossing is not None:
        status = "crossing"
    elif fc.slope_per_day <= 0:
        status = "flat"
    return {
        "threshold": threshold,
        "first_day": first_day,
        "n": fc.n,
        "status": status,
        "slope_per_day": fc.slope_per_day,
        "intercept": fc.intercept,
        "day_crossing": when(fc.day_crossing),
        "day_earliest": when(fc.day_earliest),
        "day_latest": when(fc.day_latest),
        "horizon_days": fc.horizon_days,
        "last_day": max(d for d, v in zip(days, values) if v is not None),
        "note": fc.note,
    }


def forecast_dates(forecast: dict) -> dict:
    """Calendar dates for a stored forecast summary (day offsets from its first day)."""
    first = forecast.get("first_day")
    if not first:
        return {}
    base = date.fromisoformat(first)
    out = {}
    for key in ("day_crossing", "day_earliest", "day_latest"):
        value = forecast.get(key)
        out[key] = None if value is None else base + timedelta(days=float(value))
    return out
