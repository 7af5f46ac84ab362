"""The one way a duration is written for people: "0.4 s", "42 s", "7 min", "3.5 min", "2 h", "1.5 d".

Pages (template filters), alert emails, status reasons and latency labels all call
``format_duration``; static/js/format.js is its twin for the browser (same units, same cut-offs), so
a figure reads the same whether the server or the wall's script wrote it.
"""
from __future__ import annotations

# (upper bound in seconds, divisor, unit): a unit is used up to twice the next one ("119 s", "119 min",
# "47.9 h"), so a value never shows as a fraction of a bigger unit ("0.5 h").
_UNITS: tuple[tuple[float, float, str], ...] = ((120, 1, "s"), (2 * 3600, 60, "min"), (48 * 3600, 3600, "h"))
_DAY = 86400


def format_duration(seconds: float | None, *, empty: str = "–") -> str:
    """A duration with its unit, one decimal at most and none when it is ".0"; ``empty`` for None.

    Below 10 s one decimal ("0.4 s", "4.2 s"), then whole seconds up to 119 s; minutes below 2 h,
    hours below 48 h, days beyond. Negative values (clock skew) count as 0 s.
    """
    if seconds is None:
        return empty
    value = max(0.0, float(seconds))
    if value < 10:
        return f"{_trim(value, 1)} s"
    for limit, divisor, unit in _UNITS:
        if value < limit:
            return f"{_trim(value / divisor, 0 if unit == 's' else 1)} {unit}"
    return f"{_trim(value / _DAY, 1)} d"


def _trim(number: float, decimals: int) -> str:
    """``number`` rounded to ``decimals``, without a trailing ".0": 3.04 -> "3", 3.46 -> "3.5"."""
    text = f"{number:.{decimals}f}"
    return text.removesuffix(".0")
