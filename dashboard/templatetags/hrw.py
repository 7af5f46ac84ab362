"""Template helpers shared by every page: token-carrying URLs, UTC <time> elements, ages, units.

Everything here returns escaped HTML (format_html) so Azure-supplied strings can never inject markup.
"""
from __future__ import annotations

from datetime import datetime, timezone as dt_timezone
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit, parse_qsl

from django import template
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString

register = template.Library()


def add_token(url: str, request: HttpRequest | None) -> str:
    """``url`` with the page's read-only ``?token=`` appended, when the page was opened with one."""
    token = getattr(request, "display_token", None) if request is not None else None
    if not token:
        return url
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "token"]
    query.append(("token", token))
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), parts.fragment))


@register.simple_tag(takes_context=True)
def turl(context: template.Context, name: str, *args: Any, **query: Any) -> str:
    """``{% turl 'group-detail' group.id window='7d' %}``: reverse(), optional query, and the token."""
    url = reverse(name, args=args)
    clean = {k: v for k, v in query.items() if v not in (None, "")}
    if clean:
        url = f"{url}?{urlencode(clean)}"
    return add_token(url, context.get("request"))


@register.filter
def with_token(url: str, request: HttpRequest | None) -> str:
    """``{{ some_url|with_token:request }}`` for URLs built elsewhere."""
    return add_token(str(url), request)


def _as_utc(value: datetime) -> datetime:
    if timezone.is_naive(value):
        value = timezone.make_aware(value, dt_timezone.utc)
    return value.astimezone(dt_timezone.utc)


@register.simple_tag
def utc_time(value: datetime | None, empty: str = "never") -> SafeString:
    """A <time> element in UTC; static/js/app.js rewrites the text in the viewer's zone, UTC on hover."""
    if value is None:
        return format_html('<span class="muted">{}</span>', empty)
    utc = _as_utc(value)
    return format_html(
        '<time datetime="{}" title="{} UTC">{} UTC</time>',
        utc.isoformat().replace("+00:00", "Z"),
        utc.strftime("%Y-%m-%d %H:%M:%S"),
        utc.strftime("%Y-%m-%d %H:%M:%S"),
    )


def humanize_seconds(seconds: float | None) -> str:
    """Whole units a person reads at a glance: 40 s, 3 min, 2.5 h, 4 d."""
    if seconds is None:
        return "n/a"
    seconds = max(0.0, float(seconds))
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    if seconds < 36 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


@register.filter
def duration(seconds: float | None) -> str:
    return humanize_seconds(seconds)


@register.filter
def age(value: datetime | None, now: datetime | None = None) -> str:
    """``{{ worker.last_seen_at|age:now }}`` -> "40 s ago" / "never"."""
    if value is None:
        return "never"
    reference = now or timezone.now()
    return f"{humanize_seconds((reference - value).total_seconds())} ago"


@register.filter
def pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0f} %"


@register.filter
def seconds(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f} s"
