"""Template helpers shared by every page: token-carrying URLs, UTC <time> elements, ages, units.

Durations are written by the one formatter, ``workers.rules.format.format_duration``.

Everything here returns escaped HTML (format_html) so Azure-supplied strings can never inject markup.
"""
from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from django import template
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

from workers.rules.format import format_duration

register = template.Library()


@register.simple_tag(takes_context=True)
def turl(context: template.Context, name: str, *args: Any, **query: Any) -> str:
    """``{% turl 'group-detail' group.id window='7d' %}``: reverse() with an optional query (empty values dropped)."""
    url = reverse(name, args=args)
    clean = {k: v for k, v in query.items() if v not in (None, "")}
    if clean:
        url = f"{url}?{urlencode(clean)}"
    return url


def _as_utc(value: datetime) -> datetime:
    if timezone.is_naive(value):
        value = timezone.make_aware(value, UTC)
    return value.astimezone(UTC)


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


def exact_seconds(seconds: float) -> str:
    """The exact figure behind a human duration, for its hover: 1346.8 -> "1346.8 s", 42.0 -> "42 s"."""
    return f"{float(seconds):.1f}".removesuffix(".0") + " s"


def duration_html(seconds: float | None, *, empty: str) -> SafeString:
    """A human duration ("22.4 min") with the exact seconds on hover (``title="1346.8 s"``)."""
    if seconds is None:
        return format_html("{}", empty)
    return format_html('<span class="dur" title="{}">{}</span>', exact_seconds(seconds), format_duration(seconds))


@register.filter
def duration(seconds: float | None) -> SafeString:
    """``{{ row.duration_seconds|duration }}`` -> "42 s", "3.5 min", "2 h" (exact seconds on hover); "n/a" when unknown."""
    return duration_html(seconds, empty="n/a")


@register.filter
def duration_text(seconds: float | None) -> str:
    """``{{ seconds|duration_text }}``: the same words as ``duration`` as plain text, for places a
    script rewrites as text (the wall's KPIs), so the first paint has the same nodes as every update."""
    return format_duration(seconds, empty="n/a")


@register.filter
def age(value: datetime | None, now: datetime | None = None) -> str:
    """``{{ worker.last_seen_at|age:now }}`` -> "40 s ago" / "never"."""
    if value is None:
        return "never"
    reference = now or timezone.now()
    return f"{format_duration((reference - value).total_seconds())} ago"


@register.filter
def pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0f} %"


_FLAG_HTML = {
    "single_member": ("flag flag-warn", "A group with one member has no high availability", "single member: no HA"),
    "system_group": ("flag", "A System group is left over from Update Management; it runs no user runbooks", "System group"),
}


def _flags_html(g: Any) -> SafeString:
    parts = [format_html('<span class="{}" title="{}">{}</span>', *_FLAG_HTML[code]) for code in g.flags if code in _FLAG_HTML]
    if g.members.v1:
        parts.append(format_html(
            '<span class="flag flag-bad" title="Agent-based (V1) workers: retired 31 Aug 2024">{} V1 worker{} (retired)</span>',
            g.members.v1, "" if g.members.v1 == 1 else "s",
        ))
    if g.members.never:
        parts.append(format_html('<span class="flag flag-warn" title="Registered but never reported">{} never reported</span>', g.members.never))
    if g.poll_problem:
        parts.append(format_html(
            '<span class="flag flag-bad stale-tag" title="{}">STALE: worker poll failing</span> <span class="muted">({})</span>',
            g.poll_problem, g.poll_problem,
        ))
    return SafeString(" ".join(parts))


@register.simple_tag
def group_rows(groups: list[Any]) -> SafeString:
    """The overview's table rows, built with format_html (every value escaped).

    The overview lists every group (hundreds at fleet scale); the template engine costs ~10 µs per
    variable, so this one loop is rendered in Python. The markup matches templates/dashboard/_*.html.
    """
    def row(g: Any) -> tuple[Any, ...]:
        o = g.jobs_24h
        late = format_html(' <span class="muted">({} late)</span>', g.members.late) if g.members.late else ""
        p95 = (mark_safe('<span class="muted">no jobs started</span>') if g.queue_p95_seconds_24h is None
               else duration_html(g.queue_p95_seconds_24h, empty="n/a"))
        return (
            mark_safe(' class="is-stale"') if g.poll_problem else "",
            reverse("group-detail", args=[g.id]), g.name, g.group_type, g.account, g.id, g.health, g.health, g.health.capitalize(),
            g.members.online, g.members.total, late, _flags_html(g),
            o["completed"], o["failed"], o["stopped"], o["suspended"], o["other"], p95,
        )

    return format_html_join(
        "\n",
        '<tr{}><th scope="row"><a href="{}">{}</a> <span class="muted">({})</span></th>'
        '<td class="hide-narrow" data-label="Account">{}</td>'
        '<td data-label="Health" data-group-id="{}" data-health="{}"><span class="badge health-{}">{}</span></td>'
        '<td class="num" data-label="Online / total">{} / {}{}</td>'
        '<td data-label="Flags">{}</td>'
        '<td data-label="Jobs, 24 h"><span class="outcomes">'
        '<span class="o-completed" title="Completed"><span aria-hidden="true">✓</span> {}<span class="sr-only"> completed</span></span> '
        '<span class="o-failed" title="Failed"><span aria-hidden="true">✕</span> {}<span class="sr-only"> failed</span></span> '
        '<span class="o-stopped" title="Stopped"><span aria-hidden="true">■</span> {}<span class="sr-only"> stopped</span></span> '
        '<span class="o-suspended" title="Suspended"><span aria-hidden="true">‖</span> {}<span class="sr-only"> suspended</span></span> '
        '<span class="o-other" title="Other statuses (queued, running, unknown…)">'
        '<span aria-hidden="true">…</span> {}<span class="sr-only"> other</span></span></span></td>'
        '<td class="num" data-label="Queue p95, 24 h">{}</td></tr>',
        (row(g) for g in groups),
    )


# The wall's tile: the one place its markup lives. The server renders each tile with it for the
# first paint (``wall_tiles``) and once blank in a <template> (``wall_tile_template``) that
# static/js/wall.js clones for its node pool and fills from the JSON feed (by class name).
TILE_ICONS = {"down": "✕", "degraded": "▲", "healthy": "✓", "empty": "○"}
_TILE_HTML = (
    '<article class="{}" data-group-id="{}" data-health="{}">'
    '<div class="tile-top"><span class="tile-icon" aria-hidden="true">{}</span>'
    '<span class="tile-name" title="{}">{}</span></div><span class="tile-stale">STALE</span>'
    '<div class="tile-count"><span class="tile-online">{}</span><span class="tile-total">/{}</span> '
    '<span class="tile-unit">online</span></div>'
    '<div class="tile-foot"><span class="tile-health">{}</span> <span class="tile-extra">{}</span></div></article>'
)


def _tile_values(t: Any) -> tuple[Any, ...]:
    g = t.group
    return (
        f"tile health-{g.health}" + (" is-unpolled" if g.poll_problem else ""), g.id, g.health, TILE_ICONS.get(g.health, "○"),
        f"{g.account} / {g.name}" + (f": {g.poll_problem}" if g.poll_problem else ""), g.name,
        g.members.online, g.members.total, t.label, t.detail,
    )


@register.simple_tag
def wall_tiles(tiles: list[Any]) -> SafeString:
    """The wall's server-rendered tiles (``workers.wall.selectors.WallTile``), the first paint before
    static/js/wall.js takes over from the JSON feed; built with format_html (every value escaped).
    Up to hundreds of tiles: rendered in Python like ``group_rows``."""
    return format_html_join("\n", _TILE_HTML, (_tile_values(t) for t in tiles))


@register.simple_tag
def wall_tile_template() -> SafeString:
    """``<template id="wall-tile">``: one blank tile (the same markup as ``wall_tiles``) and the
    health icons, which static/js/wall.js clones and fills for every tile it shows."""
    blank = format_html(_TILE_HTML, "tile", "", "", "", "", "", "", "", "", "")
    return format_html('<template id="wall-tile" data-icons="{}">{}</template>', json.dumps(TILE_ICONS), blank)


@register.simple_tag
def select_options(field: Any) -> SafeString:
    """``<option>``s of a ChoiceField bound field, escaped, without Django's per-option widget templates
    (a fleet has hundreds of groups; those templates cost ~100 µs each)."""
    selected = "" if field.value() in (None, "") else str(field.value())
    return format_html_join(
        "",
        '<option value="{}"{}>{}</option>',
        ((value, " selected" if str(value) == selected else "", label) for value, label in field.field.choices),
    )


# --- live pages: ages that tick in the browser (static/js/live.js) and last-known readings ---

def _iso_z(value: datetime) -> str:
    return _as_utc(value).isoformat().replace("+00:00", "Z")


@register.simple_tag
def live_age(value: datetime | None, now: datetime, suffix: str = " ago", empty: str = "never", prefix: str = "") -> SafeString:
    """``{% live_age worker.last_seen_at now %}`` -> "40 s ago" (``prefix`` and ``suffix`` are part of
    the ticking text, so "Automation data 25 s old" reads as one phrase), written by the server and then kept
    ticking by static/js/live.js from ``data-timestamp`` (measured against the server's ``data-now``,
    so a skewed browser clock does not change the age)."""
    if value is None:
        return format_html('<span class="muted">{}{}</span>', prefix, empty)
    return format_html(
        '<span class="live-age" data-timestamp="{}" data-now="{}" data-prefix="{}" data-suffix="{}" title="{} UTC">{}{}{}</span>',
        _iso_z(value), _iso_z(now), prefix, suffix, _as_utc(value).strftime("%Y-%m-%d %H:%M:%S"),
        prefix, format_duration((now - value).total_seconds()), suffix,
    )


@register.simple_tag
def util_current(worker: Any, now: datetime) -> bool:
    """``{% util_current worker now as current %}``: whether its CPU/memory figures describe it now."""
    from workers.fleet.selectors import utilization_is_current

    return utilization_is_current(worker, now=now)


@register.simple_tag
def util_reading(value: float | None, worker: Any, now: datetime) -> SafeString:
    """A member's CPU or memory figure: "now 35 %" while the worker is online and the sample recent;
    otherwise "last known 35 %, 6 min old" (marked, with a ticking age), never passed off as current."""
    if value is None:
        return SafeString("")
    if util_current(worker, now):
        return format_html("now {}", pct(value))
    at = worker.utilization_at
    if at is None:
        return format_html('<span class="last-known">last known {}</span>', pct(value))
    return format_html('<span class="last-known" title="Not current: the worker is {} or the sample is old">last known {}, {}</span>',
                       worker.status, pct(value), live_age(at, now, " old"))
