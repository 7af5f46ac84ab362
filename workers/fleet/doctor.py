"""``manage.py doctor``: probe one account the way the product will read it, and judge the answers.

Read-only and small: one listing of groups, the workers of at most ``MAX_GROUPS`` groups, one small
jobs listing per ``$filter`` form, a handful of Log Analytics count queries over the last hour, one
metrics call, and (``sample_minutes`` > 0) one worker listing of one group every ``SAMPLE_EVERY``
seconds. Every judgment is ``workers.rules.doctor``'s; this module only asks Azure and writes
nothing. Called by the command; tests call ``diagnose`` with a sleep that moves the emulator's clock.
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings

from workers.azure.client import AzureClient
from workers.azure.connection import ConnectionSettings, connection_from_account
from workers.azure.errors import AzureError, JobFilterRefused
from workers.azure.metrics import PingReader
from workers.azure.parse import ignored_filter
from workers.azure.queries import as_utc, jobs_created_filter, jobs_filters, jobs_modified_filter, jobs_status_filter
from workers.azure.records import HeartbeatRecord, JobRecord, WorkerRecord
from workers.azure.throttle import REMAINING_READS_HEADER, throttle_for
from workers.models import AutomationAccount
from workers.rules import doctor as rules
from workers.rules.doctor import Check

MAX_GROUPS = 200  # groups whose workers are listed (the machines the Log Analytics checks look for)
PROBE_ITEMS = 20  # job list items read per $filter probe (the first page only)
ITEM_SAMPLE = 50  # job list items looked at for runOn / exception
WORKERS_PER_QUERY = 250  # machines per Log Analytics query (names plus resource ids stay under 500)
SAMPLE_EVERY = 15.0  # seconds between two listings of the sampled group
LOGS_WINDOW = timedelta(hours=1)
PING_WINDOW = timedelta(minutes=15)
FAILED_STATUSES = ("Failed", "Suspended", "Stopped")
EXCEPTION_GETS = 3  # GETs of failed jobs to see whether a single job carries its exception


class BudgetWatch:
    """Wraps the shared ARM throttle of the client: counts requests and remembers the last
    ``x-ms-ratelimit-remaining-subscription-reads`` ARM sent (and any 429)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.requests = 0
        self.throttled = 0
        self.remaining: int | None = None

    def acquire(self, **kwargs: Any) -> None:
        if self.inner is not None:
            self.inner.acquire(**kwargs)
        self.requests += 1

    def observe(self, status: int | None, headers: Mapping[str, str] | None) -> None:
        if self.inner is not None:
            self.inner.observe(status, headers)
        if status == 429:
            self.throttled += 1
        value = (headers or {}).get(REMAINING_READS_HEADER)
        if value is not None:
            try:
                self.remaining = int(float(value))
            except ValueError:
                pass


@dataclass(frozen=True)
class Report:
    checks: tuple[Check, ...]

    @property
    def exit_code(self) -> int:
        return rules.exit_code(self.checks)

    def lines(self) -> list[str]:
        return rules.report_lines(self.checks)

    def as_dict(self) -> dict[str, object]:
        return {"checks": [c.as_dict() for c in self.checks], "settings": rules.recommended_settings(self.checks),
                "exit_code": self.exit_code}


def diagnose(
    account: AutomationAccount, *, now: Callable[[], datetime], sample_minutes: float = 3.0,
    sleep: Callable[[float], None] = time.sleep, credential: Any = None,
) -> Report:
    """Every check against ``account``. ``now`` is the clock (the command: ``timezone.now``)."""
    conn = connection_from_account(account)
    budget = BudgetWatch(throttle_for(conn.arm_endpoint, conn.subscription_id, conn.client_id or "default"))
    checks: list[Check] = []
    with AzureClient(conn, credential=credential, throttle=budget) as azure:
        scope = f"the Automation account {conn.automation_account} (resource group {conn.resource_group})"
        groups, workers, error = _inventory(azure)
        checks.append(rules.judge_permission(
            role="Reader", scope=scope, status=error.status if error else None,
            error=str(error) if error else None, seen=f"{len(groups)} groups, {len(workers)} workers listed",
        ))
        reader_ok = error is None
        if reader_ok:
            checks.extend(_job_checks(azure, groups, now()))
        else:
            checks.append(Check("jobs $filter", rules.SKIP, "needs Reader on the Automation account"))
        checks.extend(_logs_checks(azure, conn, workers, now()))
        checks.append(_ping_check(conn, workers, now(), credential, reader_ok))
        if not reader_ok or sample_minutes <= 0 or not workers:
            why = "--sample-minutes 0" if sample_minutes <= 0 else "no worker could be listed"
            checks.append(Check("lastSeenDateTime cadence", rules.SKIP, f"not sampled ({why})"))
        else:
            checks.append(_cadence_check(azure, groups, workers, now, sleep, sample_minutes))
        checks.append(rules.judge_arm_budget(
            remaining=budget.remaining, groups=len(groups), poll_workers_seconds=settings.POLL_WORKERS_SECONDS,
            refill_per_second=float(settings.ARM_READS_REFILL_PER_SECOND), throttled=budget.throttled,
        ) if reader_ok else Check("ARM read budget", rules.SKIP, "needs Reader on the Automation account"))
    return Report(tuple(checks))


# --- Automation ----------------------------------------------------------------------------------


def _inventory(azure: AzureClient) -> tuple[list[str], list[WorkerRecord], AzureError | None]:
    try:
        groups = [g.name for g in azure.list_groups()]
    except AzureError as exc:
        return [], [], exc
    workers: list[WorkerRecord] = []
    for name in groups[:MAX_GROUPS]:
        try:
            workers.extend(azure.list_workers(name))
        except AzureError as exc:
            return groups, workers, exc
    return groups, workers, None


def _stop_after(limit: int) -> Callable[[Any], bool]:
    seen = [0]

    def stop(item: Any) -> bool:
        seen[0] += 1
        return seen[0] > limit

    return stop


def _probe(azure: AzureClient, what: str, flt: str, reject: Callable[[Any], str | None] | None) -> tuple[str, str]:
    try:
        azure.list_jobs_filtered(f"doctor: {what}", flt, reject=reject, stop=_stop_after(PROBE_ITEMS))
    except JobFilterRefused as exc:
        return (rules.REFUSED if exc.status == 400 else rules.IGNORED), str(exc)
    except AzureError as exc:
        return rules.FAILED, str(exc)
    return rules.ACCEPTED, ""


def _not_status(status: str) -> Callable[[Any], str | None]:
    def reject(item: Any) -> str | None:
        props = item.get("properties") if isinstance(item, Mapping) else None
        found = props.get("status") if isinstance(props, Mapping) else None
        return f"the service ignored the status filter (a {found} job came back)" if found and found != status else None

    return reject


def _job_checks(azure: AzureClient, groups: Sequence[str], now: datetime) -> list[Check]:
    since = as_utc(now) - timedelta(hours=1)
    run_on_filter = jobs_filters(since=since, run_on=groups[0] if groups else "doctor-probe")[0]
    created = jobs_created_filter(since=since)
    outcomes = {rules.FILTER_CREATED: _probe(azure, rules.FILTER_CREATED, created,
                                             lambda item: ignored_filter("creationTime", item, since))[0]}
    # The changed-jobs probe asks what the jobs poll sends: with "and creationTime lt" when the service
    # takes creationTime filters (the poll lists the jobs created since apart), else the clause alone.
    created_before = as_utc(now) if outcomes[rules.FILTER_CREATED] == rules.ACCEPTED else None
    probes = {
        rules.FILTER_STATUS: (jobs_status_filter("Running"), _not_status("Running")),
        rules.FILTER_MODIFIED: (jobs_modified_filter(since=since, created_before=created_before),
                                lambda item: ignored_filter("lastModifiedTime", item, since)),
        rules.FILTER_RUN_ON: (run_on_filter, None),
    }
    outcomes.update({form: _probe(azure, form, flt, reject)[0] for form, (flt, reject) in probes.items()})
    checks = [rules.judge_job_filters(outcomes)]
    try:
        jobs = azure.list_jobs_filtered("doctor: job list items", None, stop=_stop_after(ITEM_SAMPLE))
    except AzureError as exc:
        return [*checks, Check("job list items", rules.WARN, f"the jobs list could not be read ({exc})")]
    checks.append(_items_check(azure, jobs))
    return checks


def _items_check(azure: AzureClient, jobs: Sequence[JobRecord]) -> Check:
    failed = [j for j in jobs if j.status in FAILED_STATUSES]
    get_has: bool | None = None
    # A stopped job has no exception to show; read up to EXCEPTION_GETS failed or suspended ones.
    for job in [j for j in failed if j.status != "Stopped"][:EXCEPTION_GETS]:
        try:
            one = azure.get_job(job.job_id)
        except AzureError:
            break
        get_has = bool(one and one.exception)
        if get_has:
            break
    return rules.judge_job_items(
        listed=len(jobs), with_run_on=sum(1 for j in jobs if j.run_on), failed_listed=len(failed),
        failed_with_exception=sum(1 for j in failed if j.exception), get_has_exception=get_has,
    )


def _cadence_check(
    azure: AzureClient, groups: Sequence[str], workers: Sequence[WorkerRecord], now: Callable[[], datetime],
    sleep: Callable[[float], None], minutes: float,
) -> Check:
    by_group: dict[str, int] = {}
    for w in workers:
        by_group[w.group_name] = by_group.get(w.group_name, 0) + 1
    group = max(by_group, key=lambda g: (by_group[g], g))
    samples: list[tuple[datetime, dict[str, datetime | None]]] = []
    rounds = max(1, int(math.ceil(minutes * 60 / SAMPLE_EVERY)))
    for index in range(rounds + 1):
        if index:
            sleep(SAMPLE_EVERY)
        at = now()
        try:
            listed = azure.list_workers(group)
        except AzureError as exc:
            return Check("lastSeenDateTime cadence", rules.WARN, f"sampling group {group!r} failed ({exc})")
        samples.append((at, {w.worker_id: w.last_seen_at for w in listed}))
    return rules.recommend_lastseen(
        rules.lastseen_cadence(samples), minutes=minutes, poll_workers_seconds=settings.POLL_WORKERS_SECONDS,
        late=settings.LASTSEEN_LATE_SECONDS, offline=settings.LASTSEEN_OFFLINE_SECONDS,
    )


# --- Log Analytics and metrics ----------------------------------------------------------------------


def _batches(workers: Sequence[WorkerRecord]) -> Iterable[tuple[list[str], list[str]]]:
    for i in range(0, len(workers), WORKERS_PER_QUERY):
        batch = workers[i: i + WORKERS_PER_QUERY]
        yield [w.name for w in batch if w.name], [w.vm_resource_id for w in batch if w.vm_resource_id]


def _short(name: str) -> str:
    return name.lower().split(".", 1)[0]


def _categories(workers: Sequence[WorkerRecord], beats: Iterable[HeartbeatRecord]) -> dict[str, str]:
    """{worker name: Category of its latest heartbeat}, matched by resource id first, then by name."""
    by_id = {w.vm_resource_id.lower(): w.name for w in workers if w.vm_resource_id}
    by_name = {_short(w.name): w.name for w in workers}
    latest: dict[str, HeartbeatRecord] = {}
    for beat in beats:
        name = by_id.get(beat.resource_id.lower()) or by_name.get(_short(beat.computer))
        if name and (name not in latest or latest[name].time_generated < beat.time_generated):
            latest[name] = beat
    return {name: beat.category for name, beat in latest.items()}


def _logs_checks(azure: AzureClient, conn: ConnectionSettings, workers: Sequence[WorkerRecord], now: datetime) -> list[Check]:
    if not conn.workspace_id:
        return [Check("role Log Analytics Reader", rules.WARN, "no Log Analytics workspace is configured",
                      "set the account's workspace id to read heartbeats and CPU/memory")]
    end, start = now, now - LOGS_WINDOW
    scope = f"the Log Analytics workspace {conn.workspace_id}"
    try:
        azure.logs("heartbeat_volume", start=end - timedelta(minutes=5), end=end)
    except AzureError as exc:
        return [rules.judge_permission(role="Log Analytics Reader", scope=scope, status=exc.status, error=str(exc), seen="")]
    checks = [rules.judge_permission(role="Log Analytics Reader", scope=scope, status=None, error=None,
                                     seen="a count of Heartbeat rows")]
    try:
        beats = [b for names, ids in _batches(workers)
                 for b in azure.logs("latest_heartbeats", start=start, end=end, computers=names, resource_ids=ids).rows]
        checks.append(rules.judge_heartbeats(_categories(workers, beats), machines=len(workers)))
    except AzureError as exc:
        checks.append(Check("agent heartbeats", rules.WARN, f"the Heartbeat query failed ({exc})", "run doctor again"))
    checks.append(rules.judge_volume(_volume(azure, "perf_volume", workers, start, end),
                                     _volume(azure, "insights_volume", workers, start, end), machines=len(workers)))
    return checks


def _volume(azure: AzureClient, kind: str, workers: Sequence[WorkerRecord], start: datetime, end: datetime) -> rules.Volume:
    rows = computers = 0
    try:
        for names, ids in _batches(workers):
            for record in azure.logs(kind, start=start, end=end, computers=names, resource_ids=ids).rows:
                rows += record.rows
                computers += record.computers
    except AzureError as exc:
        # A workspace without the table answers 400 ("Failed to resolve table expression").
        return rules.Volume(rows=None, error=None if exc.status == 400 else str(exc))
    return rules.Volume(rows=rows, computers=computers)


def _ping_check(conn: ConnectionSettings, workers: Sequence[WorkerRecord], now: datetime, credential: Any,
                reader_ok: bool) -> Check:
    if not reader_ok:
        return Check("HybridWorkerPing", rules.SKIP, "needs Reader on the Automation account")
    try:
        with PingReader(conn, credential=credential) as reader:
            records = reader.read(start=now - PING_WINDOW, end=now)
    except AzureError as exc:
        return rules.judge_ping(pinging=None, machines=len(workers), status=exc.status, error=str(exc))
    return rules.judge_ping(pinging=len(records), machines=len(workers), status=None, error=None)
