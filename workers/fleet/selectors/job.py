"""One Automation job for the job page: found by Azure's job id (the natural key with its account).

Azure keeps no status history that we store (a job row holds its latest status and
``last_modified_at``); the job's output and streams stay in Azure, reached through the portal
link built here from the ARM ids (every segment percent-encoded).
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote, urlsplit

from workers.models import AutomationAccount, Job

MAX_MATCHES = 10  # the same id in several accounts (GUIDs: practically never)

# ARM endpoint host -> the portal of that cloud; anything else (the emulator) -> the public portal.
_PORTALS = {
    "management.usgovcloudapi.net": "https://portal.azure.us",
    "management.chinacloudapi.cn": "https://portal.azure.cn",
}
_PUBLIC_PORTAL = "https://portal.azure.com"


@dataclass(frozen=True)
class JobView:
    job: Job
    portal_url: str
    account_jobs_url: str

    @property
    def worker_note(self) -> str:
        """Why no worker is shown: Azure does not say which member of a group ran a job."""
        if self.job.worker_id is not None:
            return ""
        if self.job.group_id is None:
            return "Ran in an Azure sandbox (no hybrid worker group)." if not self.job.run_on else "Its group is no longer listed."
        return "Azure does not say which member of the group ran it (known only for single-member groups)."


def find_jobs(job_id: str, *, account_id: int | None = None) -> list[JobView]:
    """The jobs with Azure id ``job_id`` (any case), optionally in one account; one query through
    the unique ``(account, job_id)`` index. Usually one; several only when accounts share an id."""
    accounts = [account_id] if account_id is not None else list(AutomationAccount.objects.values_list("pk", flat=True))
    if not accounts:
        return []
    rows = (
        Job.objects.select_related("account", "group", "worker")
        .filter(account_id__in=accounts, job_id__in={job_id, job_id.lower(), job_id.upper()})
        .order_by("account__name", "pk")[:MAX_MATCHES]
    )
    return [JobView(job=j, portal_url=portal_job_url(j.account, j.job_id), account_jobs_url=portal_account_jobs_url(j.account))
            for j in rows]


def _portal(account: AutomationAccount) -> str:
    host = (urlsplit(account.arm_endpoint).hostname or "").lower()
    return _PORTALS.get(host, _PUBLIC_PORTAL)


def _account_path(account: AutomationAccount) -> str:
    parts = (account.subscription_id, account.resource_group, account.automation_account)
    sub, rg, name = (quote(p, safe="") for p in parts)
    return f"/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Automation/automationAccounts/{name}"


def portal_job_url(account: AutomationAccount, job_id: str) -> str:
    """The job's blade in the Azure portal (its output, streams and status history live there)."""
    return f"{_portal(account)}/#resource{_account_path(account)}/jobs/{quote(job_id, safe='')}"


def portal_account_jobs_url(account: AutomationAccount) -> str:
    """The account's Jobs list in the portal (a fallback when the job blade does not open)."""
    return f"{_portal(account)}/#resource{_account_path(account)}/jobs"


EXPORT_MAX_ROWS = 100_000
EXPORT_COLUMNS = (
    "job_id", "runbook", "status", "group__name", "run_on", "account__name", "worker__name", "created_at", "started_at",
    "ended_at", "queue_seconds", "duration_seconds", "exception",
)


def jobs_for_export(
    *, group_ids: list[int] | None = None, status: str | None = None, since: datetime | None = None,
    limit: int = EXPORT_MAX_ROWS,
) -> Iterator[tuple[Any, ...]]:
    """The jobs list's rows for its CSV (same filters as ``jobs_page``), newest first, at most
    ``limit``, streamed from one query (``iterator``) as tuples in ``EXPORT_COLUMNS`` order."""
    jobs = Job.objects.all()
    if group_ids is not None:
        jobs = jobs.filter(group_id__in=group_ids)
    if status:
        jobs = jobs.filter(status__iexact=status)
    if since is not None:
        jobs = jobs.filter(created_at__gte=since)
    rows = jobs.order_by("-created_at", "-pk").values_list(*EXPORT_COLUMNS)[:limit]
    return rows.iterator(chunk_size=2000)
