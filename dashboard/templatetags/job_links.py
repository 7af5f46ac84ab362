"""``{% job_url job_id account_id %}``: the job page's URL, or "" for an id the page cannot show.

Job ids come from Azure (GUIDs); one that does not fit the page's route (``JOB_ID``: letters,
digits, ".", "_", "-", at most 64) gets no link rather than a NoReverseMatch.
"""
from __future__ import annotations

from typing import Any

from django import template
from django.urls import reverse
from django.utils.http import urlencode

from dashboard.fleet.job_views import JOB_ID

register = template.Library()


@register.simple_tag
def job_url(job_id: Any, account_id: Any = None) -> str:
    text = str(job_id or "")
    if not JOB_ID.match(text):
        return ""
    url = reverse("job-detail", args=[text])
    if account_id is not None and account_id != "":
        url += "?" + urlencode({"account": account_id})
    return url
