"""Reading an account's jobs for one poll, whatever ``$filter`` the service accepts.

1. **New jobs**: ``properties/creationTime ge <since>``. If the service refuses (400) or ignores it,
   the unfiltered list (newest first) is read down to ``since`` instead.
2. **Status changes** of jobs we already have:
   * *changed*: ``properties/lastModifiedTime ge <since> and properties/creationTime lt <since>``, one
     listing, while the service accepts it. The jobs created since are step 1's already, so they are
     not listed twice (a backfill of weeks reads each job once); when step 1 read the unfiltered list,
     ``lastModifiedTime ge <since>`` alone;
   * *unfinished* (once that filter was refused or ignored): the jobs we hold as unfinished are
     checked against ``properties/status eq '<status>'`` listings of their (fixed, known) statuses;
     one that is no longer listed under its status changed and is read with one GET (at most
     ``STATUS_GETS_PER_POLL`` per poll; the rest stay unfinished in the database and are read by the
     next poll, so none is lost). A status listing refused in turn falls back to GETs.
3. **Exceptions**: job *list* items carry no ``exception``; a GET of the job does. After ingesting,
   each job newly Failed / Suspended / Stopped whose exception we have not read is read with one
   GET (at most ``EXCEPTION_GETS_PER_POLL`` per poll; the rest next poll). A job read once is marked
   in the cache, so an empty exception is not read again. Failing to read exceptions never fails
   the poll: it is noted, and the next poll tries again.

A refusal is remembered in this process for ``REFUSAL_TTL_SECONDS`` (then the filter is tried
again) and every poll that works around one says so in its PollRun note. Never stops polling.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from django.conf import settings
from django.core.cache import cache

from workers.azure import jobs as azure_jobs
from workers.azure.errors import AzureError, JobFilterRefused
from workers.azure.queries import UNFINISHED_JOB_STATUSES
from workers.azure.records import JobRecord
from workers.models import AutomationAccount, Job
from workers.rules.outcomes import is_terminal, outcome

if TYPE_CHECKING:  # the adapter imports the Azure SDK; load it only when a poll runs
    from workers.azure.client import AzureClient

log = logging.getLogger(__name__)

STATUS_GETS_PER_POLL = 100
EXCEPTION_GETS_PER_POLL = 100
REFUSAL_TTL_SECONDS = 6 * 3600
JOB_RETENTION = timedelta(days=30)  # Azure keeps job records 30 days
_EXCEPTION_OUTCOMES = ("failed", "suspended", "stopped")
_CANONICAL_STATUS = {s.lower(): s for s in UNFINISHED_JOB_STATUSES}

# (account pk, what) -> (monotonic time, reason): the filters this process saw refused.
_refusals: dict[tuple[int, str], tuple[float, str]] = {}
_refusals_lock = threading.Lock()


def _refused(account_id: int, what: str) -> str | None:
    with _refusals_lock:
        entry = _refusals.get((account_id, what))
        if entry is None:
            return None
        if time.monotonic() - entry[0] > REFUSAL_TTL_SECONDS:
            del _refusals[(account_id, what)]
            return None
        return entry[1]


def _remember(account_id: int, what: str, reason: str) -> None:
    with _refusals_lock:
        _refusals[(account_id, what)] = (time.monotonic(), reason)
    log.warning("jobs of account %s: %s; switching strategy", account_id, reason)


def reset_refusals() -> None:
    """Forget the refusals seen (tests; a changed service)."""
    with _refusals_lock:
        _refusals.clear()


@dataclass
class JobsRead:
    records: list[JobRecord] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def read_jobs(client: AzureClient, account: AutomationAccount, *, since: datetime, now: datetime) -> JobsRead:
    """Every job created or changed since ``since`` as far as the service lets us see (steps 1-2)."""
    out = JobsRead()
    refused = _refused(account.pk, "creationTime")
    if refused is None:
        try:
            out.records.extend(azure_jobs.list_new_jobs(client, since=since))
        except JobFilterRefused as exc:
            refused = str(exc)
            _remember(account.pk, "creationTime", refused)
    if refused is not None:
        out.notes.append(f"creationTime filter not usable ({refused}); new jobs read from the unfiltered list")
        out.records.extend(azure_jobs.list_recent_jobs(client, since=since))

    by_creation = refused is None
    refused = _refused(account.pk, "lastModifiedTime")
    if refused is None:
        try:
            # The jobs created since ``since`` are in already: list only the older ones that changed.
            # Without a creationTime filter (refused above), the changed listing asks for none either.
            created_before = since if by_creation else None
            out.records.extend(azure_jobs.list_changed_jobs(client, since=since, created_before=created_before))
            return out
        except JobFilterRefused as exc:
            refused = str(exc)
            _remember(account.pk, "lastModifiedTime", refused)
    out.notes.append(f"lastModifiedTime filter not usable ({refused}); unfinished jobs re-read by status")
    _read_unfinished(client, account, out, now=now)
    return out


def _read_unfinished(client: AzureClient, account: AutomationAccount, out: JobsRead, *, now: datetime) -> None:
    seen = {r.job_id for r in out.records}
    unfinished = [
        (job_id, status)
        for job_id, status in Job.objects.filter(
            account=account, ended_at__isnull=True, created_at__gte=now - JOB_RETENTION
        ).order_by("created_at", "job_id").values_list("job_id", "status")
        if not is_terminal(status) and job_id not in seen
    ]
    by_status: dict[str, list[str]] = {}
    to_get: list[str] = []
    for job_id, status in unfinished:
        canonical = _CANONICAL_STATUS.get(status.lower())
        if canonical is None:  # a status we do not list by (never put into a filter): read it
            to_get.append(job_id)
        else:
            by_status.setdefault(canonical, []).append(job_id)
    for status, job_ids in by_status.items():
        try:
            listed = azure_jobs.list_jobs_in_status(client, status)
        except JobFilterRefused as exc:
            out.notes.append(f"status filter {status!r} not usable ({exc}); those jobs read one by one")
            to_get.extend(job_ids)
            continue
        out.records.extend(listed)
        still = {r.job_id for r in listed}
        to_get.extend(j for j in job_ids if j not in still)
    to_get = [j for j in to_get if not cache.get(_gone_key(account.pk, j))]
    if len(to_get) > STATUS_GETS_PER_POLL:
        out.notes.append(f"{len(to_get) - STATUS_GETS_PER_POLL} changed jobs left for the next poll")
    for job_id in to_get[:STATUS_GETS_PER_POLL]:
        record = client.get_job(job_id)
        if record is None:  # purged or deleted: do not ask again for a day
            cache.set(_gone_key(account.pk, job_id), 1, 86400)
            continue
        out.records.append(record)


def _gone_key(account_id: int, job_id: str) -> str:
    return f"hrw:job-gone:{account_id}:{job_id}"


def _exception_key(account_id: int, job_id: str) -> str:
    return f"hrw:job-exception-read:{account_id}:{job_id}"


def exception_candidates(account: AutomationAccount, *, now: datetime) -> list[str]:
    """Jobs ended Failed / Suspended / Stopped in the backfill window whose exception is not read yet."""
    since = now - timedelta(hours=settings.POLL_BACKFILL_HOURS)
    rows = (
        Job.objects.filter(account=account, exception="", last_modified_at__gte=since)
        .exclude(status__in=["Completed", "Running", "New", "Queued"])
        .order_by("-last_modified_at", "job_id")
        .values_list("job_id", "status")
    )
    ids = [job_id for job_id, status in rows if outcome(status) in _EXCEPTION_OUTCOMES]
    marks = cache.get_many([_exception_key(account.pk, j) for j in ids]) if ids else {}
    return [j for j in ids if _exception_key(account.pk, j) not in marks]


def read_exceptions(client: AzureClient, account: AutomationAccount, *, now: datetime) -> JobsRead:
    """One GET per newly failed / suspended / stopped job (bounded), for its ``exception``. Never raises
    an Azure error: what could not be read is noted and read by the next poll."""
    out = JobsRead()
    pending = exception_candidates(account, now=now)
    if len(pending) > EXCEPTION_GETS_PER_POLL:
        out.notes.append(f"{len(pending) - EXCEPTION_GETS_PER_POLL} job exceptions left for the next poll")
    ttl = int(settings.POLL_BACKFILL_HOURS * 3600 + 3600)
    for job_id in pending[:EXCEPTION_GETS_PER_POLL]:
        try:
            record = client.get_job(job_id)
        except AzureError as exc:  # transient or not: the poll's listings are in; try again next poll
            out.notes.append(f"job exceptions not all read ({exc}); the next poll continues")
            break
        cache.set(_exception_key(account.pk, job_id), 1, ttl)
        if record is not None:
            out.records.append(record)
    return out
