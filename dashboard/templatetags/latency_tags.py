"""Template filters for the latency pages (units always shown)."""
from __future__ import annotations

from django import template

from workers.rules import latency

register = template.Library()


@register.filter
def secs(value: float | None) -> str:
    """Seconds with a readable unit: 0.4 s, 42 s, 3.5 min, 2.1 h, 1.5 d; "–" when unknown."""
    return latency.format_seconds(value)


@register.filter
def get(mapping: dict, key: str):
    return mapping.get(key)
