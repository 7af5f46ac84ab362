"""Judgments of ``manage.py doctor``: what each probe of a real account means, and what to do.

``workers.fleet.doctor`` runs the probes (Azure calls) and hands their plain results here; this
module turns each into one ``Check`` (OK / WARN / BLOCKER / SKIP, what it means, what to do, and the
settings it recommends). Pure: no ORM, no clock, no I/O; every time is passed in.
"""
from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

OK = "OK"
WARN = "WARN"
BLOCKER = "BLOCKER"
SKIP = "SKIP"
LEVELS = (OK, WARN, BLOCKER, SKIP)

# The jobs $filter forms the polls may use (workers.azure.jobs), in the order they are probed.
FILTER_CREATED = "creationTime ge"
FILTER_STATUS = "status eq"
FILTER_MODIFIED = "lastModifiedTime ge"
FILTER_RUN_ON = "runOn eq"
FILTER_FORMS = (FILTER_CREATED, FILTER_STATUS, FILTER_MODIFIED, FILTER_RUN_ON)
ACCEPTED, REFUSED, IGNORED, FAILED = "accepted", "refused", "ignored", "failed"

AMA_CATEGORY = "Azure Monitor Agent"
MMA_CATEGORIES = ("Direct Agent", "SCOM Agent")
# A Log Analytics query answers at most 500,000 rows; the Perf poll reads slices of ~400,000.
PERF_ROWS_PER_HOUR_WARN = 400_000
# What the remaining-reads header may fall to before we say someone else spends the budget.
LOW_REMAINING_READS = 50
# ARM refills 25 reads/s; stay at 80% of what the product is configured to spend.
BUDGET_SHARE = 0.8


@dataclass(frozen=True)
class Check:
    """One line of the report."""

    name: str
    level: str
    finding: str  # what was seen and what it means
    action: str = ""  # what to do ("" when nothing)
    settings: Mapping[str, str] = field(default_factory=dict)  # recommended settings (name -> value)

    def as_dict(self) -> dict[str, object]:
        return {"name": self.name, "level": self.level, "finding": self.finding, "action": self.action,
                "settings": dict(self.settings)}


def exit_code(checks: Iterable[Check]) -> int:
    """1 when any check is a blocker, else 0."""
    return 1 if any(c.level == BLOCKER for c in checks) else 0


def recommended_settings(checks: Iterable[Check]) -> dict[str, str]:
    """Every setting the checks recommend (a later check wins on the same name)."""
    out: dict[str, str] = {}
    for check in checks:
        out.update(check.settings)
    return out


def report_lines(checks: Sequence[Check]) -> list[str]:
    """The text report: one line per check (``LEVEL  name: finding``, then ``-> action``), then the
    recommended settings and the verdict."""
    lines: list[str] = []
    for check in checks:
        lines.append(f"{check.level:<8}{check.name}: {check.finding}")
        if check.action:
            lines.append(f"{'':<8}-> {check.action}")
    settings = recommended_settings(checks)
    if settings:
        lines.append("Recommended settings:")
        lines.extend(f"  {name}={value}" for name, value in sorted(settings.items()))
    blockers = sum(1 for c in checks if c.level == BLOCKER)
    warnings = sum(1 for c in checks if c.level == WARN)
    lines.append(f"{blockers} blocker(s), {warnings} warning(s).")
    return lines


# --- permissions ---------------------------------------------------------------------------------


def judge_permission(*, role: str, scope: str, status: int | None, error: str | None, seen: str) -> Check:
    """Did a read that needs ``role`` on ``scope`` work? ``status``/``error`` describe a failure."""
    name = f"role {role}"
    if error is None:
        return Check(name, OK, f"{seen}: {role} on {scope} works")
    if status == 403:
        return Check(name, BLOCKER, f"missing role {role} on {scope} ({error})",
                     f"assign the built-in role '{role}' on {scope} to the principal the product uses")
    if status == 401:
        return Check(name, BLOCKER, f"authentication failed against {scope} ({error})",
                     "check the tenant, client id and secret (or the managed identity) the product uses")
    if status == 404:
        return Check(name, BLOCKER, f"{scope} was not found ({error})",
                     "check the subscription, resource group, account name or workspace id")
    return Check(name, BLOCKER, f"{scope} could not be read ({error})",
                 "check the endpoint, network and CA bundle, then run doctor again")


# --- jobs $filter forms and list items -----------------------------------------------------------


def judge_job_filters(outcomes: Mapping[str, str]) -> Check:
    """Which jobs ``$filter`` forms the service accepts, and how the jobs polls will read."""
    shown = ", ".join(f"{form}: {outcomes.get(form, 'not tried')}" for form in FILTER_FORMS)
    if any(outcomes.get(form) == FAILED for form in FILTER_FORMS):
        return Check("jobs $filter", WARN, f"{shown}; some probes failed for another reason than the filter",
                     "run doctor again; if it persists, read the reason in `poll --once`")
    created = outcomes.get(FILTER_CREATED) == ACCEPTED
    changed = outcomes.get(FILTER_MODIFIED) == ACCEPTED or outcomes.get(FILTER_STATUS) == ACCEPTED
    if created and changed:
        how = ("status changes by lastModifiedTime" if outcomes.get(FILTER_MODIFIED) == ACCEPTED
               else "status changes by listing each unfinished status")
        return Check("jobs $filter", OK, f"{shown}; new jobs by creationTime, {how}")
    what = []
    if not created:
        what.append("new jobs are read from the unfiltered list down to the watermark (more reads per poll)")
    if not changed:
        what.append("status changes are read with one GET per unfinished job (STATUS_GETS_PER_POLL per poll)")
    return Check("jobs $filter", WARN, f"{shown}; " + "; ".join(what),
                 "nothing to set: the jobs polls switch strategy by themselves; watch the reads per second")


def judge_job_items(*, listed: int, with_run_on: int, failed_listed: int, failed_with_exception: int,
                    get_has_exception: bool | None) -> Check:
    """Do job list items carry ``runOn`` (the group) and ``exception``?"""
    if listed == 0:
        return Check("job list items", SKIP, "no job in the account's list to look at",
                     "start a runbook on a hybrid worker group and run doctor again")
    parts = [f"{with_run_on} of {listed} listed jobs name their group (runOn)"]
    level = OK
    action = ""
    if with_run_on == 0:
        level = WARN
        parts.append("none ran on a hybrid worker group, or the list omits runOn")
        action = "jobs without runOn count as sandbox jobs; check one hybrid job in the portal"
    if failed_listed:
        parts.append(f"{failed_with_exception} of {failed_listed} failed/suspended/stopped list items carry exception")
    if get_has_exception is True:
        parts.append("a GET of one job carries it (the polls read it that way)")
    elif get_has_exception is False and failed_listed:
        parts.append("a GET of a failed job carried no exception either")
    return Check("job list items", level, "; ".join(parts), action)


# --- lastSeenDateTime cadence -------------------------------------------------------------------


@dataclass(frozen=True)
class Cadence:
    """How ``lastSeenDateTime`` advanced over a sample of one group's workers."""

    workers: int  # workers seen in every sample
    advanced: int  # workers whose lastSeen changed at least once
    typical_step: float | None  # median seconds between successive distinct values
    max_step: float | None
    max_age: float | None  # oldest lastSeen age (seconds) seen at a sample, over advancing workers


def lastseen_cadence(samples: Sequence[tuple[datetime, Mapping[str, datetime | None]]]) -> Cadence:
    """From (sample time, {worker id: lastSeen}) samples in time order."""
    if not samples:
        return Cadence(0, 0, None, None, None)
    common = set(samples[0][1])
    for _, seen in samples[1:]:
        common &= set(seen)
    steps: list[float] = []
    ages: list[float] = []
    advanced = 0
    for worker in common:
        values = [seen[worker] for _, seen in samples]
        distinct = sorted({v for v in values if v is not None})
        if len(distinct) < 2:
            continue
        advanced += 1
        steps.extend((b - a).total_seconds() for a, b in zip(distinct, distinct[1:]))
        for at, seen in samples:
            last = seen[worker]
            if last is not None:
                ages.append((at - last).total_seconds())
    return Cadence(
        workers=len(common), advanced=advanced,
        typical_step=statistics.median(steps) if steps else None,
        max_step=max(steps) if steps else None,
        max_age=max(ages) if ages else None,
    )


def _round_up(seconds: float, unit: int = 30) -> int:
    return int(math.ceil(seconds / unit) * unit)


def recommend_lastseen(cadence: Cadence, *, minutes: float, poll_workers_seconds: int,
                       late: int, offline: int) -> Check:
    """LASTSEEN_LATE/OFFLINE_SECONDS from the observed cadence.

    A healthy worker's lastSeen is at worst one step old when Azure is read, and the product reads it
    every ``poll_workers_seconds``: late = 1.5 x the longest step + that interval (in 30 s units, at
    least 60 s), offline = twice late.
    """
    name = "lastSeenDateTime cadence"
    if cadence.workers == 0:
        return Check(name, WARN, "no worker was listed in every sample", "run doctor again with a group that has members")
    if cadence.max_step is None or cadence.typical_step is None:
        return Check(name, WARN, f"lastSeen of none of {cadence.workers} workers advanced in {minutes:g} min",
                     "sample longer (--sample-minutes 10); if it still does not move, the workers are offline")
    rec_late = max(60, _round_up(1.5 * cadence.max_step + poll_workers_seconds))
    rec_offline = _round_up(2 * rec_late)
    seen = (f"{cadence.advanced} of {cadence.workers} workers advanced; typical step {cadence.typical_step:.0f} s, "
            f"longest {cadence.max_step:.0f} s, oldest age seen {cadence.max_age or 0:.0f} s")
    recommended = {"LASTSEEN_LATE_SECONDS": str(rec_late), "LASTSEEN_OFFLINE_SECONDS": str(rec_offline)}
    if rec_late > late or rec_offline > offline:
        return Check(name, WARN, f"{seen}: the current {late}/{offline} s would call healthy workers late",
                     f"set LASTSEEN_LATE_SECONDS={rec_late} and LASTSEEN_OFFLINE_SECONDS={rec_offline}", recommended)
    return Check(name, OK, f"{seen}: the current {late}/{offline} s fit (recommended {rec_late}/{rec_offline})",
                 settings=recommended)


# --- Log Analytics ---------------------------------------------------------------------------------


def judge_heartbeats(categories: Mapping[str, str], *, machines: int) -> Check:
    """AMA vs MMA heartbeats of our machines: {computer: Category of its latest heartbeat}."""
    name = "agent heartbeats"
    if machines == 0:
        return Check(name, SKIP, "no worker machine to look for")
    ama = sum(1 for c in categories.values() if c == AMA_CATEGORY)
    mma = sum(1 for c in categories.values() if c in MMA_CATEGORIES)
    other = len(categories) - ama - mma
    silent = max(0, machines - len(categories))
    seen = f"of {machines} worker machines: {ama} Azure Monitor Agent, {mma} Log Analytics agent (MMA), "
    seen += (f"{other} other, " if other else "") + f"{silent} without a heartbeat in the last hour"
    if mma:
        return Check(name, WARN, seen + "; the Log Analytics agent (MMA) was retired on 31 Aug 2024",
                     "move those machines to the Azure Monitor Agent with a data collection rule sending Heartbeat")
    if ama == 0:
        return Check(name, WARN, seen + "; workers are judged on Automation's lastSeen (and the ping) alone",
                     "send Heartbeat to this workspace with the Azure Monitor Agent and a data collection rule")
    if silent:
        return Check(name, WARN, seen, "check the data collection rule covers every worker machine")
    return Check(name, OK, seen)


@dataclass(frozen=True)
class Volume:
    """Rows and machines of one table for our machines over the last hour (None rows = no table)."""

    rows: int | None
    computers: int = 0
    error: str | None = None


def judge_volume(perf: Volume, insights: Volume, *, machines: int) -> Check:
    """Where CPU/memory of our machines comes from, and whether Perf fits in a query's rows."""
    name = "CPU/memory data"
    if machines == 0:
        return Check(name, SKIP, "no worker machine to look for")
    if perf.error and perf.rows is None:
        return Check(name, WARN, f"Perf could not be counted ({perf.error})", "run doctor again")
    im = ("no InsightsMetrics table (VM insights not enabled)" if insights.rows is None
          else f"InsightsMetrics {insights.rows} rows from {insights.computers} machines")
    seen = f"last hour: Perf {perf.rows or 0} rows from {perf.computers} of {machines} machines; {im}"
    if (perf.rows or 0) > PERF_ROWS_PER_HOUR_WARN:
        return Check(name, WARN, seen + "; over 400,000 rows an hour, the Perf poll reads in slices",
                     "send only the CPU and memory counters the product reads, or poll Perf more often")
    if not perf.computers and not (insights.rows or 0):
        return Check(name, WARN, seen + "; no CPU/memory: the pressure diagnoses cannot work",
                     "collect \\Processor Information(_Total)\\% Processor Time and memory % with a data collection rule")
    if perf.computers < machines and (insights.rows or 0):
        return Check(name, OK, seen + "; machines without Perf are read from InsightsMetrics")
    if perf.computers < machines:
        return Check(name, WARN, seen, "add the machines without Perf to the data collection rule")
    return Check(name, OK, seen)


# --- HybridWorkerPing and the ARM read budget ------------------------------------------------------


def judge_ping(*, pinging: int | None, machines: int, status: int | None, error: str | None) -> Check:
    """Is the HybridWorkerPing platform metric readable, and does it carry our workers?"""
    name = "HybridWorkerPing"
    if error is not None:
        if status == 403:
            return Check(name, WARN, f"missing permission to read the account's metrics (HTTP 403: {error})",
                         "Reader on the Automation account includes metrics; or assign 'Monitoring Reader'")
        return Check(name, WARN, f"the metric could not be read ({error}); liveness uses lastSeen and heartbeats",
                     "run doctor again; a 404 means this cloud has no such metric")
    if not pinging:
        return Check(name, WARN, f"no worker pinged in the last 15 minutes (of {machines})",
                     "V2 workers report it; V1 workers and stopped ones do not")
    return Check(name, OK, f"{pinging} workers pinged in the last 15 minutes (of {machines} listed)")


def judge_arm_budget(*, remaining: int | None, groups: int, poll_workers_seconds: int,
                     refill_per_second: float, throttled: int) -> Check:
    """The ARM read budget left, and whether the worker polls fit in it."""
    name = "ARM read budget"
    need = groups / poll_workers_seconds if poll_workers_seconds else 0.0
    allowed = BUDGET_SHARE * refill_per_second
    fit = max(5, int(math.ceil(groups / allowed))) if allowed > 0 else poll_workers_seconds
    left = "no x-ms-ratelimit-remaining-subscription-reads header" if remaining is None else f"{remaining} reads left"
    seen = f"{left}; {groups} groups every {poll_workers_seconds} s is {need:.1f} reads/s (budget {allowed:.1f}/s)"
    if throttled:
        seen += f"; ARM answered 429 {throttled} time(s) during doctor"
    if need > allowed:
        return Check(name, WARN, seen + ": over budget", f"set POLL_WORKERS_SECONDS={fit}",
                     {"POLL_WORKERS_SECONDS": str(fit)})
    if throttled or (remaining is not None and remaining < LOW_REMAINING_READS):
        return Check(name, WARN, seen + ": another client of this principal spends the budget",
                     "lower ARM_READS_BUCKET / ARM_READS_REFILL_PER_SECOND to this product's share")
    return Check(name, OK, seen)
