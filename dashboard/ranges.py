"""The time range of a page, parsed from ``request.GET``, and the context of templates/_range_picker.html.

``?window=1h|6h|24h|7d|30d`` picks a preset (the old ``?window=24h`` URLs keep working);
``?from=2026-12-01T00:00Z&to=2026-12-02T06:00Z`` a custom range (ISO 8601 UTC). The rules (bounds,
resolution) live in ``workers.rules.ranges``; a bad range is a ``RangeError`` the view turns into a 400.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlencode

from django.conf import settings
from django.http import HttpRequest

from workers.rules import ranges
from workers.rules.ranges import RangeError, TimeRange

__all__ = ["RangeError", "TimeRange", "data_retention", "picker_context", "range_from_request"]

# Parameters the picker sets itself, or that must not travel in a shared link.
_OWN = {"window", "from", "to", "partial", "token", "page"}


def data_retention() -> timedelta:
    """How far back the minute samples and their hourly rollups are kept."""
    return timedelta(days=settings.UTILIZATION_RETENTION_DAYS)


def range_from_request(
    request: HttpRequest, *, now: datetime, default: str = "24h", allowed: tuple[str, ...] = tuple(ranges.PRESETS),
    custom: bool = True, retention: timedelta | None = None,
) -> TimeRange:
    """The page's range; raises ``RangeError`` (with a message for the 400 page) on bad input."""
    return ranges.parse_range(
        window=request.GET.get("window"), start=request.GET.get("from"), end=request.GET.get("to"), now=now,
        retention=retention if retention is not None else data_retention(), default=default, allowed=allowed, custom=custom,
    )


@dataclass(frozen=True)
class PresetLink:
    key: str
    label: str
    url: str
    current: bool


@dataclass(frozen=True)
class Picker:
    presets: list[PresetLink]
    hidden: list[tuple[str, str]]  # the page's other query parameters, kept by the custom form
    custom: bool
    from_value: str  # for <input type="datetime-local"> (UTC)
    to_value: str
    label: str
    resolution: str
    note: str


def picker_context(request: HttpRequest, rng: TimeRange, *, allowed: tuple[str, ...] = tuple(ranges.PRESETS),
                   custom: bool = True, resolution: str = "", note: str = "", drop: tuple[str, ...] = ()) -> Picker:
    """What the picker include needs: preset links and a from/to form keeping the other query parameters
    (except ``drop``: those that only mean something in the current range)."""
    kept = [(k, v) for k, values in request.GET.lists() if k not in _OWN and k not in drop for v in values]
    links = [
        PresetLink(key, ranges.PRESET_LABELS[key], f"{request.path}?{urlencode([*kept, ('window', key)])}", key == rng.preset)
        for key in allowed
    ]
    local = "%Y-%m-%dT%H:%M"
    return Picker(
        presets=links, hidden=kept, custom=custom, from_value=rng.start.strftime(local), to_value=rng.end.strftime(local),
        label=rng.label, resolution=resolution, note=note,
    )
