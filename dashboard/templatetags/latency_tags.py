"""Template filters for the latency pages (units always shown)."""
from __future__ import annotations

from django import template
from django.utils.safestring import SafeString

from dashboard.templatetags.hrw import duration_html
from workers.rules.format import format_duration

register = template.Library()


@register.filter
def secs(value: float | None) -> SafeString:
    """A duration with its unit (``format_duration``): 0.4 s, 42 s, 3.5 min, 2 h, 1.5 d, the exact seconds on
    hover; "–" when unknown."""
    return duration_html(value, empty="–")


@register.filter
def secs_text(value: float | None) -> str:
    """The same as plain text (plain-text emails): no markup, no hover."""
    return format_duration(value)


@register.filter
def get(mapping: dict, key: str):
    return mapping.get(key)
