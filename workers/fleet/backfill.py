"""Backfill an account's history in the foreground: the demo's first start, or a restart after a gap.

A routine poll reads at most ``POLL_BACKFILL_HOURS`` back, and the beat's rollups cover the last two
hours, so a fresh database would show 24 h of jobs beside 2 h of rollups and an empty capacity
analysis: pages that contradict each other. ``backfill_account`` reads everything since ``since``
through the same services the Celery tasks call (the real adapter, so the same SDK, watermarks,
slicing under the Log Analytics row limit and idempotent upserts), then builds the hourly rollups of
what it read and the capacity/correlation snapshot of every window.

Each read starts at its stored watermark minus the overlap, never before ``since``: on a database
that is already up to date only the gap since the last poll is read again and rolled up, so a
restart does not redo the whole backfill. Safe to run twice (every step is idempotent).

Utilization older than ``MINUTE_HISTORY`` is read as hourly rows summarised in the workspace (one
row per machine-hour instead of sixty): the pages and the capacity analysis read weeks from the
hourly rollup anyway, and only the last day needs minutes (the 24 h correlation, the worker page).

Heartbeats are an exception by nature: the Heartbeat query answers the latest heartbeat per
computer, so the history of that signal is not reconstructed (its span starts at the latest one).
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.utils import timezone

from workers.azure.errors import AzureError
from workers.capacity.correlation import WINDOWS, compute_findings
from workers.fleet import polling
from workers.fleet.log_reading import fleet_machines, read_logs
from workers.fleet.rollups import hour_floor, rollup_utilization
from workers.fleet.status import refresh_statuses
from workers.fleet.telemetry import ingest_utilization_hourly
from workers.latency.rollups import rollup_jobs
from workers.models import AutomationAccount, HybridWorker, PollKind, WorkerGroup

# Each poll_logs call reads at most PERF_SLICES_PER_POLL Perf slices; a long history of a big fleet
# takes several calls. This bounds the loop if a backlog never clears (the next poll continues).
MAX_LOG_POLLS = 50
# Minutes are read for the last day (and the hour it started in); older utilization as hourly rows.
MINUTE_HISTORY = timedelta(hours=25)
# Rows per hourly-history query: machine-hours, well under Log Analytics' 500,000-row limit.
HOURLY_ROWS_PER_QUERY = 100_000


@dataclass(frozen=True)
class BackfillStep:
    """One step's result, for the progress line: what was done, how many rows, how long."""

    name: str
    rows: int
    seconds: float
    detail: str = ""
    ok: bool = True

    def line(self) -> str:
        return f"{self.name}: {self.rows:,} {self.detail} in {self.seconds:.1f} s".replace("  ", " ")


Progress = Callable[[BackfillStep], None]


def _noop(_step: BackfillStep) -> None:
    return None


def read_start(account: AutomationAccount, *, since: datetime, now: datetime) -> datetime:
    """The earliest moment the backfill reads again: ``since`` on a fresh account, else the oldest
    watermark (minus the overlap), never before ``since``. Rollups are rebuilt from here."""
    marks = [account.jobs_watermark, account.perf_watermark]
    return min(polling.poll_window_start(mark, now=now, floor=since) for mark in marks)


def backfill_account(account_id: int, *, since: datetime, now: datetime | None = None, progress: Progress = _noop) -> list[BackfillStep]:
    """Inventory, jobs and Log Analytics since ``since`` (or the watermarks), then statuses and rollups.

    Failures are reported as steps with ``ok=False`` (the pages then say what is missing), never
    raised, except programming errors. Returns every step in order.
    """
    now = now or timezone.now()
    account = AutomationAccount.objects.get(pk=account_id)
    start = read_start(account, since=since, now=now)
    steps: list[BackfillStep] = []

    def step(name: str, run: Callable[[], tuple[int, str, bool]]) -> None:
        began = time.monotonic()
        try:
            rows, detail, ok = run()
        except AzureError as exc:  # transient errors included: reported, the beat's polls retry
            rows, detail, ok = 0, f"failed: {exc}", False
        done = BackfillStep(name, rows, time.monotonic() - began, detail, ok)
        steps.append(done)
        progress(done)

    def inventory() -> tuple[int, str, bool]:
        groups = polling.poll_groups(account_id, now=now)
        if not groups.ok:
            return 0, f"groups failed: {groups.error}", False
        ids = list(WorkerGroup.objects.filter(account_id=account_id, removed_at__isnull=True).values_list("pk", flat=True))
        outcomes = [polling.poll_workers(account_id, gid, now=now) for gid in ids]
        failed = sum(not o.ok for o in outcomes)
        detail = f"workers in {len(ids)} groups" + (f", {failed} group polls failed" if failed else "")
        return sum(o.rows for o in outcomes), detail, not failed

    def jobs() -> tuple[int, str, bool]:
        outcome = polling.poll_jobs(account_id, now=now, floor=since)
        return outcome.rows, f"jobs since {start:%Y-%m-%d %H:%M}" + (f", {outcome.error}" if outcome.error else ""), outcome.ok

    minutes_from = max(since, hour_floor(now - MINUTE_HISTORY))

    def hourly_history() -> tuple[int, str, bool]:
        machines = HybridWorker.objects.filter(group__account_id=account_id, removed_at__isnull=True).count()
        length = timedelta(hours=max(1, min(24 * 7, HOURLY_ROWS_PER_QUERY // max(1, machines))))
        client = polling.azure_client(account)
        rows, partial, begin = 0, [], hour_floor(start)
        batches = fleet_machines(account)
        while begin < minutes_from:
            end = min(minutes_from, begin + length)
            answer = read_logs(client, "utilization_hourly", batches, start=begin, end=end)  # ours, Perf or VM insights
            rows += ingest_utilization_hourly(account, answer.rows).rows
            if answer.partial_error is not None:
                partial.append(f"{begin:%Y-%m-%d %H:%M}: {answer.partial_error}")
            begin = end
        detail = f"machine-hours before {minutes_from:%Y-%m-%d %H:%M}" + (f"; partial: {partial[0]}" if partial else "")
        return rows, detail, not partial

    def logs() -> tuple[int, str, bool]:
        totals: dict[str, int] = {}
        errors: list[str] = []
        for _ in range(MAX_LOG_POLLS):
            outcomes = polling.poll_logs(account_id, now=now, floor=minutes_from)
            for o in outcomes:
                totals[o.kind] = totals.get(o.kind, 0) + o.rows
            backlog = [o for o in outcomes if o.error.startswith("backlog")]
            errors = [o.error for o in outcomes if not o.ok and not o.error.startswith("backlog")]
            if not backlog or errors:
                break
        detail = (
            f"utilization minutes; {totals.get(PollKind.HEARTBEAT, 0):,} heartbeats, "
            f"{totals.get(PollKind.EVENTS, 0):,} agent-event rows"
        ) + (f"; {errors[0]}" if errors else "")
        return totals.get(PollKind.PERF, 0), detail, not errors

    def statuses() -> tuple[int, str, bool]:
        return refresh_statuses(account_id, now=now).changes, "status changes", True

    def rollups() -> tuple[int, str, bool]:
        hours = rollup_utilization(start, now)
        job_rows = rollup_jobs(start, now, now=now).hourly_rows
        return hours + job_rows, f"hourly rows: {hours:,} utilization, {job_rows:,} jobs", True

    def capacity() -> tuple[int, str, bool]:
        runs = [compute_findings(window, now) for window in WINDOWS]
        flagged = sum(run.findings.filter(flagged=True).count() for run in runs)
        return sum(run.pairs_examined for run in runs), f"pairs examined in {', '.join(WINDOWS)}; {flagged} findings", True

    step("inventory", inventory)
    step("jobs", jobs)
    if account.workspace_id:
        if start < minutes_from:
            step("utilization history", hourly_history)
        step("log analytics", logs)
    step("statuses", statuses)
    step("rollups", rollups)
    step("capacity", capacity)
    return steps
