"""Input validation for pages and the API. Bad input becomes a form error (pages) or a 400 (API)."""
from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import cast

from django import forms
from django.utils import timezone
from django.utils.dateparse import parse_datetime

RELATIVE = re.compile(r"^(\d{1,4})\s*([mhdw])$")
UNIT_SECONDS = {"m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
MAX_LOOKBACK = timedelta(days=400)
MAX_PAGE_SIZE = 500


def parse_since(raw: str, *, now: datetime) -> datetime:
    """``24h`` / ``7d`` / ``30m`` / ``2w`` relative to ``now``, or an ISO 8601 time WITH a timezone.

    Raises ValueError with a message a user can act on.
    """
    value = raw.strip()
    match = RELATIVE.match(value.lower())
    if match:
        delta = timedelta(seconds=int(match.group(1)) * UNIT_SECONDS[match.group(2)])
        if delta > MAX_LOOKBACK:
            raise ValueError(f"since={value!r} reaches back more than {MAX_LOOKBACK.days} days")
        return now - delta
    try:
        parsed = parse_datetime(value.replace(" ", "+", 1) if value.count(" ") == 1 and "T" in value else value)
    except ValueError:
        parsed = None
    if parsed is None:
        raise ValueError(
            f"since={value!r} is neither a relative window like 24h, 7d, 30m, 2w nor an ISO 8601 time like 2026-11-20T12:00:00Z"
        )
    if timezone.is_naive(parsed):
        raise ValueError(f"since={value!r} has no timezone: add Z or an offset such as +00:00")
    return parsed


class SinceField(forms.CharField):
    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("required", False)
        kwargs.setdefault("max_length", 64)
        kwargs.setdefault("help_text", "24h, 7d, or an ISO 8601 time with a timezone")
        super().__init__(*args, **kwargs)

    def clean(self, value):  # type: ignore[no-untyped-def]
        text = super().clean(value)
        if not text:
            return None
        try:
            return parse_since(text, now=timezone.now())
        except ValueError as exc:
            raise forms.ValidationError(str(exc)) from None


class JobFilterForm(forms.Form):
    """The /jobs/ page: group by id (a drop-down), status, since, page."""

    group = forms.TypedChoiceField(required=False, coerce=int, empty_value=None)
    status = forms.CharField(required=False, max_length=64)
    since = SinceField()
    page = forms.IntegerField(required=False, min_value=1, max_value=1_000_000)

    def __init__(self, *args, group_choices: list[tuple[int, str, str]] = (), **kwargs) -> None:  # type: ignore[assignment]
        super().__init__(*args, **kwargs)
        group_field = cast(forms.TypedChoiceField, self.fields["group"])
        group_field.choices = [("", "All groups")] + [(gid, f"{name} ({account})") for gid, name, account in group_choices]


class ApiJobsForm(forms.Form):
    """GET /api/v1/jobs: group by NAME (and optional account), status, since, page, page_size."""

    group = forms.CharField(required=False, max_length=260)
    account = forms.CharField(required=False, max_length=100)
    status = forms.CharField(required=False, max_length=64)
    since = SinceField()
    page = forms.IntegerField(required=False, min_value=1, max_value=1_000_000)
    page_size = forms.IntegerField(required=False, min_value=1, max_value=MAX_PAGE_SIZE)


class ApiWorkersForm(forms.Form):
    group = forms.CharField(required=True, max_length=260, error_messages={"required": "group is required (?group=NAME)"})
    account = forms.CharField(required=False, max_length=100)


def first_error(form: forms.Form) -> str:
    """One readable line for a JSON 400: 'page_size: Ensure this value is less than or equal to 500.'"""
    for name, errors in form.errors.items():
        label = name if name != "__all__" else "request"
        return f"{label}: {errors[0]}"
    return "invalid request"
