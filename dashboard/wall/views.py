"""The NOC wall: ``/wall/`` (an HTML shell with the first snapshot rendered in) and its JSON feed
``/api/v1/wall`` that static/js/wall.js fetches every ``?refresh=`` seconds to patch the tiles in place.

Views stay thin: validate the query string -> ``workers.wall.selectors.wall_snapshot`` -> render.
The page sends a strict Content-Security-Policy: no inline script or style, configuration travels
through ``json_script``, and everything is served from this origin.
"""
from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from django import forms
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone

from dashboard.auth import api_view, display_view
from workers.wall.selectors import MAX_GROUP_FILTER, WallFilters, WallSnapshot, wall_snapshot

THEMES = ("dark", "contrast", "light")
THEME_ALIASES = {"high-contrast": "contrast", "highcontrast": "contrast", "hc": "contrast"}
DEFAULT_REFRESH_SECONDS = 15
DEFAULT_ROTATE_SECONDS = 15
MIN_SECONDS, MAX_SECONDS = 5, 3600
WALL_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)


class WallForm(forms.Form):
    """The wall's query string. Every field is optional; anything malformed is a 400 naming the field."""

    groups = forms.CharField(required=False, max_length=MAX_GROUP_FILTER * 270)
    account = forms.CharField(required=False, max_length=100)
    theme = forms.CharField(required=False, max_length=20)
    refresh = forms.IntegerField(required=False, min_value=MIN_SECONDS, max_value=MAX_SECONDS)
    rotate = forms.IntegerField(required=False, min_value=MIN_SECONDS, max_value=MAX_SECONDS)

    def clean_groups(self) -> tuple[str, ...]:
        raw = self.cleaned_data.get("groups") or ""
        names: list[str] = []
        for part in raw.split(","):
            name = part.strip()
            if not name:
                continue
            if len(name) > 260:
                raise forms.ValidationError("a group name is at most 260 characters")
            if name.lower() not in {n.lower() for n in names}:
                names.append(name)
        if len(names) > MAX_GROUP_FILTER:
            raise forms.ValidationError(f"at most {MAX_GROUP_FILTER} group names")
        return tuple(names)

    def clean_account(self) -> str:
        return (self.cleaned_data.get("account") or "").strip()

    def clean_theme(self) -> str:
        raw = (self.cleaned_data.get("theme") or "dark").strip().lower()
        theme = THEME_ALIASES.get(raw, raw)
        if theme not in THEMES:
            raise forms.ValidationError(f"choose one of {', '.join(THEMES)}")
        return theme

    def clean_refresh(self) -> int:
        return self.cleaned_data.get("refresh") or DEFAULT_REFRESH_SECONDS

    def clean_rotate(self) -> int:
        return self.cleaned_data.get("rotate") or DEFAULT_ROTATE_SECONDS

    def filters(self) -> WallFilters:
        return WallFilters(groups=self.cleaned_data["groups"], account=self.cleaned_data["account"])

    def error_text(self) -> str:
        return "; ".join(f"{field}: {' '.join(map(str, errors))}" for field, errors in self.errors.items())


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z") if value else None


def empty_message(snapshot: WallSnapshot) -> str | None:
    """Why the wall shows no tile, in words a person in the room can act on (None when it has tiles)."""
    if snapshot.tiles:
        return None
    filters = snapshot.filters
    if filters.account and not snapshot.account_found:
        return f"No enabled Automation account is named “{filters.account}” (?account={filters.account})."
    if filters.groups:
        where = f" in account “{filters.account}”" if filters.account else ""
        return f"No groups match ?groups={','.join(filters.groups)}{where}."
    if filters.account:
        return f"Account “{filters.account}” has no Hybrid Worker groups yet."
    if snapshot.freshness.accounts == 0:
        return "No Automation account is configured yet: add one in the admin or with manage.py add_account."
    if not snapshot.freshness.ever_polled:
        return "Waiting for the first poll of the Automation account…"
    return "The configured Automation accounts have no Hybrid Worker groups."


def wall_payload(snapshot: WallSnapshot) -> dict[str, Any]:
    """The JSON the wall's script renders; the field names are stable (documented in the README)."""
    fresh = snapshot.freshness
    totals = snapshot.totals
    return {
        "generated_at": _iso(snapshot.now),
        "filters": {"groups": list(snapshot.filters.groups), "account": snapshot.filters.account},
        "unmatched_groups": list(snapshot.unmatched_groups),
        "empty_message": empty_message(snapshot),
        "freshness": {
            "stale": fresh.stale,
            "last_ok_at": _iso(fresh.last_ok_at),
            "age_seconds": fresh.age_seconds,
            "fresh_for_seconds": fresh.fresh_for_seconds,
            "ever_polled": fresh.ever_polled,
            "accounts": fresh.accounts,
            "reasons": list(fresh.reasons),
        },
        "totals": asdict(totals),
        "groups": [
            {
                "id": t.group.id,
                "name": t.group.name,
                "account": t.group.account,
                "group_type": t.group.group_type,
                "health": t.group.health,
                "workers_online": t.group.members.online,
                "workers_total": t.group.members.total,
                "workers_late": t.group.members.late,
                "workers_offline": t.group.members.offline,
                "workers_never": t.group.members.never,
                "jobs_queued": t.queued,
                "open_alerts": t.open_alerts,
                "acknowledged_alerts": t.acknowledged_alerts,
                "single_member": t.group.single_member,
                "detail": t.detail,
                "label": t.label,
                "poll_problem": t.group.poll_problem or None,
            }
            for t in snapshot.tiles
        ],
    }


def _bad_page(request: HttpRequest, form: WallForm) -> HttpResponse:
    response = render(request, "wall/bad_request.html", {"form": form, "message": form.error_text()}, status=400)
    response["Content-Security-Policy"] = WALL_CSP
    return response


@display_view
def wall(request: HttpRequest) -> HttpResponse:
    form = WallForm(request.GET)
    if not form.is_valid():
        return _bad_page(request, form)
    snapshot = wall_snapshot(now=timezone.now(), filters=form.filters())
    payload = wall_payload(snapshot)
    query = {k: v for k, v in (("groups", ",".join(snapshot.filters.groups)), ("account", snapshot.filters.account)) if v}
    config = {
        "data_url": reverse("wall-data"),
        "query": query,
        "refresh_seconds": form.cleaned_data["refresh"],
        "rotate_seconds": form.cleaned_data["rotate"],
        "initial": payload,
    }
    context = {
        "theme": form.cleaned_data["theme"],
        "snapshot": snapshot,
        "payload": payload,
        "config": config,
        "refresh_seconds": form.cleaned_data["refresh"],
        "rotate_seconds": form.cleaned_data["rotate"],
    }
    response = render(request, "wall/wall.html", context)
    response["Content-Security-Policy"] = WALL_CSP
    response["Cache-Control"] = "no-store"
    return response


@api_view
def wall_data(request: HttpRequest) -> HttpResponse:
    form = WallForm(request.GET)
    if not form.is_valid():
        return JsonResponse({"error": form.error_text(), "fields": {k: list(v) for k, v in form.errors.items()}}, status=400)
    snapshot = wall_snapshot(now=timezone.now(), filters=form.filters())
    response = JsonResponse(wall_payload(snapshot))
    response["Cache-Control"] = "no-store"
    return response
