"""Template filters for the latency pages (units always shown)."""
from __future__ import annotations

from django import template

from workers.rules.format import format_duration

register = template.Library()


@register.filter
def secs(value: float | None) -> str:
    """A duration with its unit (``format_duration``): 0.4 s, 42 s, 3.5 min, 2 h, 1.5 d; "–" when unknown."""
    return format_duration(value)


@register.filter
def get(mapping: dict, key: str):
    return mapping.get(key)
