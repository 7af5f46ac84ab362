"""Celery tasks: thin wrappers that take ids, call one service, and are safe to run twice.

Beat (``CELERY_BEAT_SCHEDULE`` in settings) schedules the ``*_all_*`` fan-out tasks, the status
refresh and the rollups; each fan-out sends one task per account (and per group for workers), so any
number of Celery workers share the load. Every task is idempotent (the services upsert by natural
keys and change statuses through conditional UPDATEs), which is what makes ``acks_late`` safe: a
task redelivered after a worker crash simply does the same writes again.

Only ``AzureTransientError`` is retried, with exponential backoff that honours the service's
``Retry-After``; anything else is recorded (PollRun) and not retried. The database unreachable
(``OperationalError``/``InterfaceError``: PostgreSQL down or restarting) is retried by every task here
with backoff too (``DB_RETRY``); the writes are transactions or idempotent upserts, so a retry after
a failure half-way finds nothing half-written, and a PollRun left open is closed by
``close_abandoned_polls``.
"""
from __future__ import annotations

import logging
import random
from datetime import timedelta
from typing import Any

from celery import Task, shared_task
from django.conf import settings
from django.utils import timezone

from workers.azure.errors import AzureTransientError
from workers.fleet import machines, ping, poll_sweep, polling, rollups, selectors, status
from workers.fleet.accounts import ensure_account_from_env
from workers.latency import selectors as latency_selectors
from workers.latency.rollups import rollup_jobs
from workers.models import AutomationAccount, PollKind, PollRun, WorkerGroup
from workers.task_options import BACKOFF_BASE_SECONDS, BACKOFF_MAX_SECONDS, DB_RETRY
from workers.wall import selectors as wall_selectors

log = logging.getLogger(__name__)


POLL_OPTIONS: dict[str, Any] = {
    **DB_RETRY,
    "acks_late": True,
    "soft_time_limit": settings.CELERY_TASK_SOFT_TIME_LIMIT,
    "time_limit": settings.CELERY_TASK_TIME_LIMIT,
}


def retry_countdown(retries: int, retry_after: float | None) -> float:
    """Exponential backoff with jitter (5 s, 10 s, 20 s ... capped), never shorter than Retry-After."""
    backoff = min(BACKOFF_MAX_SECONDS, BACKOFF_BASE_SECONDS * (2**retries))
    backoff = backoff / 2 + random.uniform(0, backoff / 2)
    return max(backoff, retry_after or 0.0)


def _retry(task: Task, exc: AzureTransientError) -> None:
    """Re-queue ``task`` later, or let the error surface once ``max_retries`` is spent."""
    countdown = retry_countdown(task.request.retries, exc.retry_after)
    log.warning("%s: transient Azure error, retry %d in %.1f s: %s", task.name, task.request.retries + 1, countdown, exc)
    raise task.retry(exc=exc, countdown=countdown)


_env_account_checked = False


def _enabled_accounts() -> list[int]:
    """Enabled accounts; the first call in a process also creates the HRW_* environment account.

    So a deployment configured only through the environment polls without any manual step.
    """
    global _env_account_checked
    if not _env_account_checked:
        ensure_account_from_env()
        _env_account_checked = True
    return list(AutomationAccount.objects.filter(enabled=True).values_list("pk", flat=True))


# --- fan-out (beat) ------------------------------------------------------------------------------


def _not_in_flight(accounts: list[int], *kinds: str) -> list[int]:
    """The accounts with no poll of these kinds still running.

    Beat does not wait for a poll: one slower than its interval (a big workspace, a slow Azure) would
    overlap the next, and at estate scale the overlapping polls fill every Celery slot while the
    inventory fan-out expires in the queue behind them. A run left open by a killed process counts
    only until the hard time limit (``close_abandoned_polls`` then closes it).
    """
    since = timezone.now() - timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT)
    busy = set(PollRun.objects.filter(account_id__in=accounts, kind__in=kinds, scope="", finished_at__isnull=True,
                                      started_at__gte=since).values_list("account_id", flat=True))
    if busy:
        log.info("%s poll still running for account(s) %s: not sent again this interval", "/".join(kinds), sorted(busy))
    return [pk for pk in accounts if pk not in busy]



@shared_task(acks_late=True, ignore_result=True, **DB_RETRY)
def poll_all_workers() -> int:
    """Beat entry: one ``poll_groups`` per enabled account (each then fans out per group)."""
    accounts = _enabled_accounts()
    for account_id in accounts:
        poll_groups.apply_async((account_id,), expires=settings.POLL_WORKERS_SECONDS)
    return len(accounts)


@shared_task(acks_late=True, ignore_result=True, **DB_RETRY)
def poll_all_jobs() -> int:
    """Beat entry: one ``poll_jobs`` per enabled account (none where the last one still runs)."""
    accounts = _not_in_flight(_enabled_accounts(), PollKind.JOBS)
    for account_id in accounts:
        poll_jobs.apply_async((account_id,), expires=settings.POLL_JOBS_SECONDS)
    return len(accounts)


@shared_task(acks_late=True, ignore_result=True, **DB_RETRY)
def poll_all_logs() -> int:
    """Beat entry: one ``poll_logs`` per Log Analytics table (Heartbeat, Perf, Event) per enabled account
    with a workspace, so a slow table on a big workspace neither starves the others of the task's time
    limit nor makes them retry with it (none where that table's last poll still runs)."""
    with_workspace = set(AutomationAccount.objects.exclude(workspace_id="").values_list("pk", flat=True))
    accounts = [pk for pk in _enabled_accounts() if pk in with_workspace]
    sent = 0
    for kind in polling.LOG_POLL_KINDS:
        for account_id in _not_in_flight(accounts, kind):
            poll_logs.apply_async((account_id, kind), expires=settings.POLL_LOGS_SECONDS)
            sent += 1
    return sent


# --- one account / one group ----------------------------------------------------------------------


@shared_task(bind=True, ignore_result=True, **POLL_OPTIONS)
def poll_groups(self: Task, account_id: int) -> int:
    """List the account's groups, then send one ``poll_group_workers`` per current group.

    Safe twice: groups are upserted by ARM id, and a duplicate fan-out only polls a group twice.
    """
    try:
        outcome = polling.poll_groups(account_id)
    except AutomationAccount.DoesNotExist:
        return 0
    except AzureTransientError as exc:
        _retry(self, exc)
    if not outcome.ok:
        return 0
    group_ids = polling.groups_to_poll(account_id)  # least recently polled first: no group starves
    # Spread across the interval (not one burst against ARM's read budget); each expires one interval
    # after its own start.
    for group_id, countdown in zip(group_ids, polling.fanout_countdowns(len(group_ids), settings.POLL_WORKERS_SECONDS)):
        poll_group_workers.apply_async(
            (account_id, group_id), countdown=countdown or None, expires=countdown + settings.POLL_WORKERS_SECONDS
        )
    return len(group_ids)


@shared_task(bind=True, ignore_result=True, **POLL_OPTIONS)
def poll_group_workers(self: Task, account_id: int, group_id: int) -> int:
    """Poll one group's workers, then refresh that group's statuses (so a stop shows at once).

    A group deleted (or moved to another account) since the fan-out is skipped, not retried.
    """
    try:
        outcome = polling.poll_workers(account_id, group_id)
    except (AutomationAccount.DoesNotExist, WorkerGroup.DoesNotExist):
        log.info("group %s of account %s no longer exists; skipped", group_id, account_id)
        return 0
    except AzureTransientError as exc:
        _retry(self, exc)
    if outcome.ok:
        status.refresh_statuses(account_id, group_id=group_id)
    return outcome.rows


@shared_task(bind=True, ignore_result=True, **POLL_OPTIONS)
def poll_jobs(self: Task, account_id: int) -> int:
    """Jobs since the account's watermark (minus the overlap). Safe twice: upserts by job id.

    After a gap longer than the rollup lookback (our polling was down for hours), the jobs that
    arrive belong to hours the routine rollup no longer looks at: those hours are rolled up here,
    so the latency pages do not keep the gap's stale rollups."""
    now = timezone.now()
    watermark = AutomationAccount.objects.filter(pk=account_id).values_list("jobs_watermark", flat=True).first()
    try:
        outcome = polling.poll_jobs(account_id, now=now)
    except AutomationAccount.DoesNotExist:
        return 0
    except AzureTransientError as exc:
        _retry(self, exc)
        return 0  # pragma: no cover - _retry always raises
    if outcome.ok:
        since = polling.poll_window_start(watermark, now=now)
        if since < now - timedelta(hours=settings.JOB_ROLLUP_LOOKBACK_HOURS):
            rollup_jobs(since, now, now=now)
        warm_job_caches()
    return outcome.rows


def _shared_cache() -> bool:
    """True when the cache is shared between processes (Redis): warming from a Celery worker then
    serves the web processes. A local-memory cache lives in this process only."""
    return "locmem" not in str(settings.CACHES["default"]["BACKEND"]).lower()


def warm_job_caches(*, force: bool = False) -> None:
    """After a jobs poll: compute the aggregates the pages share once per jobs poll (the overview's
    24 h job stats and timeout counts, the wall's queued jobs and queue p95, the latency and timeouts
    pages' default 24 h window), so no page view pays for them. Best effort: a failure here is logged
    and never fails the poll."""
    if not (force or _shared_cache()):
        return
    now = timezone.now()
    try:
        version = selectors.jobs_data_version()
        selectors.fleet_job_stats(since=now - timedelta(hours=24), now=now, version=version)
        latency_selectors.timeout_counts("24h", now=now, version=version)
        wall_selectors.wall_snapshot(now=now)
        latency_selectors.latency_report("24h", now=now, shared=True)
        latency_selectors.timeout_report("24h", now=now, shared=True)
    except Exception:  # noqa: BLE001 - warming is an optimisation; the pages compute on a miss
        log.exception("warming the job caches after a jobs poll failed")


@shared_task(bind=True, ignore_result=True, **POLL_OPTIONS)
def poll_logs(self: Task, account_id: int, kind: str | None = None) -> int:
    """Heartbeat, Perf and Event 4502 from Log Analytics (or the one table ``kind``), then, when the
    heartbeats were read, the account's status refresh."""
    try:
        outcomes = polling.poll_logs(account_id, kinds=None if kind is None else (kind,))
    except AutomationAccount.DoesNotExist:
        return 0
    except AzureTransientError as exc:
        _retry(self, exc)
    if kind in (None, PollKind.HEARTBEAT):
        status.refresh_statuses(account_id)
    return sum(o.rows for o in outcomes)


@shared_task(acks_late=True, ignore_result=True, **DB_RETRY, soft_time_limit=settings.CELERY_TASK_SOFT_TIME_LIMIT,
             time_limit=settings.CELERY_TASK_TIME_LIMIT)
def refresh_statuses(account_id: int | None = None) -> int:
    """Re-judge every worker now (beat every STATUS_REFRESH_SECONDS); returns StatusChange rows written.

    Safe twice or concurrently: each change is claimed by a conditional UPDATE.
    """
    return status.refresh_statuses(account_id).changes


@shared_task(acks_late=True, ignore_result=True, **DB_RETRY)
def close_abandoned_polls() -> int:
    """Beat entry: close as failed the polls whose process died (still open past the hard time limit
    plus a margin), so they count as the failures they were instead of staying open forever."""
    return poll_sweep.close_abandoned_polls(now=timezone.now())


@shared_task(acks_late=True, ignore_result=True, **DB_RETRY, soft_time_limit=settings.CELERY_TASK_SOFT_TIME_LIMIT,
             time_limit=settings.CELERY_TASK_TIME_LIMIT)
def rollup_recent(hours: int = 2) -> dict[str, int]:
    """Recompute the last ``hours`` of hourly rollups (utilization here; jobs via the latency module),
    then prune raw rows past their retention.

    Idempotent: each touched hour is recomputed from raw rows and upserted; pruning twice is a no-op.
    """
    until = timezone.now()
    since = until - timedelta(hours=hours)
    done = {"utilization_rows": rollups.rollup_utilization(since, until)}
    pruned = rollups.prune_raw(now=until)
    done.update(pruned_poll_runs=pruned.poll_runs, pruned_samples=pruned.samples, pruned_signal_spans=pruned.signal_spans)
    done["job_hourly_rows"] = rollup_jobs(since, until).hourly_rows
    return done



@shared_task(acks_late=True, ignore_result=True, **DB_RETRY)
def poll_all_machines() -> int:
    """Beat entry (every POLL_MACHINES_SECONDS): one ``poll_machines`` per enabled account."""
    accounts = _enabled_accounts()
    for account_id in accounts:
        poll_machines.apply_async((account_id,), expires=settings.POLL_MACHINES_SECONDS)
    return len(accounts)


@shared_task(bind=True, ignore_result=True, **POLL_OPTIONS)
def poll_machines(self: Task, account_id: int) -> int:
    """Arc status / VM power state and Hybrid Worker extension state of the account's V2 workers."""
    try:
        return machines.poll_machines(account_id).updated
    except AutomationAccount.DoesNotExist:
        return 0
    except AzureTransientError as exc:
        _retry(self, exc)
        return 0  # pragma: no cover - _retry always raises


@shared_task(acks_late=True, ignore_result=True, **DB_RETRY)
def poll_all_pings() -> int:
    """Beat entry (every POLL_PING_SECONDS): one ``poll_pings`` per enabled account (not while one runs)."""
    accounts = _not_in_flight(_enabled_accounts(), PollKind.PING)
    for account_id in accounts:
        poll_pings.apply_async((account_id,), expires=settings.POLL_PING_SECONDS)
    return len(accounts)


@shared_task(bind=True, ignore_result=True, **POLL_OPTIONS)
def poll_pings(self: Task, account_id: int) -> int:
    """The account's HybridWorkerPing metric (one call), then the account's status refresh."""
    try:
        outcome = ping.poll_pings(account_id)
    except AutomationAccount.DoesNotExist:
        return 0
    except AzureTransientError as exc:
        _retry(self, exc)
        return 0  # pragma: no cover - _retry always raises
    if outcome.ok:
        status.refresh_statuses(account_id)
    return outcome.rows
