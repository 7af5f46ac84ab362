"""Forms for the latency and timeouts pages: every query parameter is validated here."""
from __future__ import annotations

import re

from django import forms

from workers.rules import latency

MAX_MINUTES = 30 * 24 * 60
# Azure runbook names: start with a letter; letters, digits, underscores and hyphens; up to 63
# characters. Dots are accepted too (some imported runbooks carry them).
RUNBOOK_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,62}$")


class LatencyQueryForm(forms.Form):
    """``window``/``from``/``to`` (the time range) are parsed by ``dashboard.ranges``."""

    format = forms.ChoiceField(choices=[("html", "html"), ("csv", "csv")], required=False)
    table = forms.ChoiceField(
        choices=[(t, t) for t in ("groups", "runbooks", "workers", "queued", "summary")], required=False
    )


class TimeoutQueryForm(LatencyQueryForm):
    table = forms.ChoiceField(
        choices=[(t, t) for t in ("now", "past", "suspended", "not_available", "thresholds")], required=False
    )


class ThresholdForm(forms.Form):
    runbook = forms.CharField(max_length=63, strip=True, help_text='A runbook name, or "*" for the default.')
    max_queue_minutes = forms.IntegerField(min_value=1, max_value=MAX_MINUTES, label="Max queue time (minutes)")
    max_run_minutes = forms.IntegerField(min_value=1, max_value=MAX_MINUTES, label="Max run time (minutes)")

    def clean_runbook(self) -> str:
        name = self.cleaned_data["runbook"]
        if name != latency.DEFAULT_RUNBOOK and not RUNBOOK_NAME.match(name):
            raise forms.ValidationError(
                'Use "*" or a runbook name: a letter first, then letters, digits, "_", "-" or "." (at most 63).'
            )
        return name


class DeleteThresholdForm(forms.Form):
    runbook = forms.CharField(max_length=63, strip=True)
