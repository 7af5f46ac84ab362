"""Forms for the alerts page: filters, and creating a maintenance window (clear errors, UTC times)."""
from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, cast

from django import forms

from workers.models import HybridWorker, WorkerGroup
from workers.rules.maintenance import WEEKDAY_NAMES

WINDOW_CHOICES = [("24h", "Last 24 h"), ("7d", "Last 7 days"), ("30d", "Last 30 days"), ("all", "All time")]
WEEKDAY_CHOICES = [(str(i), name) for i, name in enumerate(WEEKDAY_NAMES)]


class AlertFilterForm(forms.Form):
    group = forms.TypedChoiceField(required=False, coerce=int, empty_value=None, label="Group")
    window = forms.ChoiceField(choices=WINDOW_CHOICES, required=False, initial="7d", label="Resolved alerts from")

    def __init__(self, *args: Any, group_choices: list[tuple[int, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cast(forms.TypedChoiceField, self.fields["group"]).choices = [("", "All groups"), *[(str(pk), label) for pk, label in group_choices]]

    def clean_window(self) -> str:
        return self.cleaned_data.get("window") or "7d"


class MaintenanceWindowForm(forms.Form):
    """One group or one worker (by exact machine name); one-off (start/end) or weekly."""

    group = forms.TypedChoiceField(required=False, coerce=int, empty_value=None, label="Group")
    worker = forms.CharField(required=False, max_length=260, label="or worker (machine name)")
    kind = forms.ChoiceField(choices=[("once", "One-off"), ("weekly", "Weekly")], initial="once", label="Repeats")
    starts_at = forms.DateTimeField(required=False, label="Start (UTC)", widget=forms.DateTimeInput(attrs={"type": "datetime-local"}))
    ends_at = forms.DateTimeField(required=False, label="End (UTC)", widget=forms.DateTimeInput(attrs={"type": "datetime-local"}))
    weekdays = forms.MultipleChoiceField(required=False, choices=WEEKDAY_CHOICES, widget=forms.CheckboxSelectMultiple, label="Weekdays")
    start_time = forms.TimeField(required=False, label="Start time (UTC)", widget=forms.TimeInput(attrs={"type": "time"}))
    duration_minutes = forms.IntegerField(required=False, min_value=1, max_value=7 * 24 * 60, label="Duration (minutes)")
    reason = forms.CharField(max_length=300, label="Reason")

    def __init__(self, *args: Any, group_choices: list[tuple[int, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cast(forms.TypedChoiceField, self.fields["group"]).choices = [("", "—"), *[(str(pk), label) for pk, label in group_choices]]

    @staticmethod
    def _utc(value: datetime | None) -> datetime | None:
        # datetime-local carries no zone: the form says UTC, so read it as UTC.
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        assert data is not None  # Form.clean() returns self.cleaned_data
        group_id = data.get("group")
        worker_name = (data.get("worker") or "").strip()
        if (group_id is None) == (not worker_name):
            raise forms.ValidationError("Choose exactly one target: a group, or a worker by its machine name.")
        data["group_obj"] = None
        data["worker_obj"] = None
        if group_id is not None:
            data["group_obj"] = WorkerGroup.objects.filter(pk=group_id).first()
            if data["group_obj"] is None:
                self.add_error("group", "This group no longer exists.")
        else:
            matches = list(HybridWorker.objects.filter(name__iexact=worker_name, removed_at__isnull=True).select_related("group")[:2])
            if not matches:
                self.add_error("worker", f"No current worker is named {worker_name!r}.")
            elif len(matches) > 1:
                self.add_error("worker", f"Several workers are named {worker_name!r}; use a group window instead.")
            else:
                data["worker_obj"] = matches[0]
        if data.get("kind") == "weekly":
            if not data.get("weekdays"):
                self.add_error("weekdays", "Pick at least one weekday.")
            if data.get("start_time") is None:
                self.add_error("start_time", "A weekly window needs a start time.")
            if not data.get("duration_minutes"):
                self.add_error("duration_minutes", "A weekly window needs a duration.")
        else:
            starts_at, ends_at = self._utc(data.get("starts_at")), self._utc(data.get("ends_at"))
            data["starts_at"], data["ends_at"] = starts_at, ends_at
            if starts_at is None:
                self.add_error("starts_at", "A one-off window needs a start.")
            if ends_at is None:
                self.add_error("ends_at", "A one-off window needs an end.")
            if starts_at and ends_at and ends_at <= starts_at:
                self.add_error("ends_at", "The end must be after the start.")
        return data
