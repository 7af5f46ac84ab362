"""The soak's figures, read from our database and the emulator's own simulation (the ground truth)."""
from __future__ import annotations

import statistics
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

from workers.emulator.simulation import FleetSimulation
from workers.models import Alert, AutomationAccount, Job, Notification, PollRun, StatusChange, UtilizationSample


def _dt(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, tz=UTC)


def last_ok_start(account: AutomationAccount, kind: str) -> datetime | None:
    run = PollRun.objects.filter(account=account, kind=kind, ok=True, finished_at__isnull=False).order_by("-started_at").first()
    return run.started_at if run else None


def rows_lost(account: AutomationAccount, sim: FleetSimulation, run_start: float) -> dict[str, Any]:
    """Jobs and per-minute utilization samples the emulator had served by our last good poll, missing here.

    The covered window runs from the simulation's first minute to the start of our last successful
    poll of that kind (everything created, or ingested into Log Analytics, before it was visible to it).
    ``*_lost`` counts rows from the start of the measured run (the faults' window); ``*_lost_before_run``
    the history the first polls backfilled, reported apart.
    """
    jobs_until = last_ok_start(account, "jobs")
    perf_until = last_ok_start(account, "perf")
    out: dict[str, Any] = {"window_start": sim.history_start.isoformat()}
    if jobs_until is not None:
        cutoff = jobs_until.timestamp() - 2
        truth = {j.job_id.lower() for j in list(sim.jobs) if j.created <= cutoff}
        ours = {j.lower() for j in Job.objects.filter(account=account).values_list("job_id", flat=True)}
        early = {j.job_id.lower() for j in list(sim.jobs) if j.created < run_start}
        out.update(jobs_expected=len(truth - early), jobs_lost=len(truth - early - ours),
                   jobs_lost_before_run=len((truth & early) - ours), jobs_until=jobs_until.isoformat())
    else:
        out.update(jobs_expected=None, jobs_lost=None)
    if perf_until is not None:
        cutoff_dt = perf_until - timedelta(seconds=2)
        names = {w.index: w.name.lower() for w in sim.workers}
        # A minute's rows exist in the emulator's workspace from the end of that minute on (it generates
        # whole minutes), whatever their ingestion time says: a row stamped as ingested before the poll
        # but in a minute still running then was not there to be read, and the next poll reads it.
        rows = sim.rows(
            "SELECT DISTINCT widx, date_trunc('minute', t) FROM perf_raw "
            "WHERE ingest <= ? AND date_trunc('minute', t) + INTERVAL 1 MINUTE <= ? AND t >= ?",
            [cutoff_dt.replace(tzinfo=None), cutoff_dt.replace(tzinfo=None), sim.history_start.replace(tzinfo=None)],
        )
        truth_samples = {(names[w], m.replace(tzinfo=UTC)) for w, m in rows}
        ours_samples = {
            (name.lower(), ts.replace(second=0, microsecond=0))
            for name, ts in UtilizationSample.objects.filter(worker__group__account=account).values_list("worker__name", "ts")
        }
        lost = truth_samples - ours_samples
        first = _dt(run_start).replace(second=0, microsecond=0)
        in_run = {x for x in lost if x[1] >= first}
        early = lost - in_run
        out.update(samples_expected=sum(1 for x in truth_samples if x[1] >= first), samples_lost=len(in_run),
                   samples_lost_before_run=len(early), perf_until=perf_until.isoformat(),
                   samples_lost_examples=[f"{n} {m:%H:%M}" for n, m in sorted(in_run or early)[:5]],
                   samples_lost_before_run_by_worker=dict(Counter(n for n, _ in early)))
    else:
        out.update(samples_expected=None, samples_lost=None)
    return out


def duplicate_emails(emails: list[tuple[float, str, str]]) -> dict[str, Any]:
    counts = Counter((subject, to) for _, subject, to in emails)
    dups = {s: c for (s, _), c in counts.items() if c > 1}
    sent = Notification.objects.filter(status="sent").count()
    return {"emails": len(emails), "duplicates": sum(c - 1 for c in dups.values()), "duplicate_subjects": list(dups)[:5],
            "notifications_sent": sent, "blind_pages": sum(1 for _, s, _ in emails if s.startswith("BLIND")),
            "blind_alerts": Alert.objects.filter(kind="blind").count()}


def false_status_changes(account: AutomationAccount, targeted: set[str]) -> dict[str, Any]:
    changes = StatusChange.objects.filter(worker__group__account=account, new_status__in=("late", "offline"))
    false = [c for c in changes.select_related("worker") if c.worker.name.lower() not in targeted]
    return {"false_status_changes": len(false),
            "by_kind": dict(Counter(f"{c.old_status}->{c.new_status}" for c in false)),
            "targeted_changes": changes.count() - len(false)}


def takeover(account: AutomationAccount, killed_at: float, acquired: list[float]) -> dict[str, Any]:
    """Kill of the active beat -> the standby's first poll cycle (a groups PollRun started after it took the lock)."""
    after = [a for a in acquired if a > killed_at]
    lock_at = min(after) if after else None
    first = None
    if lock_at is not None:
        first = PollRun.objects.filter(account=account, kind="groups", started_at__gte=_dt(lock_at)).order_by("started_at").first()
    before = PollRun.objects.filter(account=account, kind="groups", started_at__lte=_dt(killed_at)).order_by("-started_at").first()
    nxt = PollRun.objects.filter(account=account, kind="groups", started_at__gt=_dt(killed_at)).order_by("started_at").first()
    return {
        "killed_at": _dt(killed_at).isoformat(),
        "lock_taken_after_seconds": None if lock_at is None else round(lock_at - killed_at, 1),
        "takeover_seconds": None if first is None else round(first.started_at.timestamp() - killed_at, 1),
        "poll_gap_seconds": None if (before is None or nxt is None) else round((nxt.started_at - before.started_at).total_seconds(), 1),
    }


def polls_per_interval(account: AutomationAccount, start: float, end: float, interval: float) -> dict[str, Any]:
    """Poll cycles (groups PollRuns) per POLL_WORKERS_SECONDS bucket: 1 each when exactly one beat dispatches."""
    starts = [r.timestamp() for r in PollRun.objects.filter(
        account=account, kind="groups", started_at__gte=_dt(start), started_at__lt=_dt(end)).values_list("started_at", flat=True)]
    buckets = int((end - start) // interval)
    if buckets < 1:
        return {"intervals": 0}
    counts = [0] * buckets
    for t in starts:
        i = int((t - start) // interval)
        if i < buckets:
            counts[i] += 1
    gaps = [b - a for a, b in zip(sorted(starts), sorted(starts)[1:], strict=False)]
    return {"intervals": buckets, "cycles": len(starts), "cycles_per_interval": round(len(starts) * interval / (end - start), 2),
            "min": min(counts), "median": statistics.median(counts), "max": max(counts),
            "empty_intervals": counts.count(0), "double_intervals": sum(1 for c in counts if c > 1),
            "longest_gap_seconds": round(max(gaps), 1) if gaps else None}


def health_during(samples: list[tuple[float, int, int, str, list[str]]], gaps: dict[str, tuple[float, float]]) -> dict[str, Any]:
    """What /healthz answered in each gap: counts of "<HTTP code> <status> [down parts]"."""
    out: dict[str, Any] = {}
    for name, (a, b) in gaps.items():
        seen = Counter(f"{code} {status}" + (f" down={'+'.join(down)}" if down else "")
                       for t, _, code, status, down in samples if a <= t <= b)
        out[name] = dict(seen)
    out["all_run"] = dict(Counter(f"{code} {status}" for _, _, code, status, _ in samples))
    return out


def scenario_pages(emails: list[tuple[float, str, str]], worker: str | None, started: float | None,
                   cause: str = "Hybrid Worker service stopped") -> dict[str, Any]:
    """The run's own failure, as the on-call inbox saw it: DOWN emails naming the worker (exactly one
    wanted, whichever of the processes sent it), whether its subject names the cause, and how long after
    the scenario began it arrived."""
    if worker is None or started is None:
        return {"worker": None, "down_emails": None}
    name = worker.lower()
    downs = [(t, s) for t, s, _ in emails if s.startswith("DOWN ") and name in s.lower()]
    return {"worker": worker, "down_emails": len(downs), "cause_named": bool(downs) and all(cause in s for _, s in downs),
            "first_down_after_seconds": round(downs[0][0] - started, 1) if downs else None,
            "recovered_emails": sum(1 for _, s, _ in emails if s.startswith("RECOVERED ") and name in s.lower())}


def blind_pages(emails: list[tuple[float, str, str]], gaps: dict[str, tuple[float, float]], slack: float) -> dict[str, Any]:
    """BLIND pages split by cause: during one of our own deliberate gaps (Celery workers stopped: a real
    blind spell, paging is right) or outside every gap (a false page: e.g. one failed poll at
    ``--fault-rate``, or a 10 s Redis restart shorter than the grace)."""
    spells = [(a, b + slack) for name, (a, b) in gaps.items() if name == "workers_down"]
    blind = [(t, s) for t, s, _ in emails if s.startswith("BLIND")]
    outside = [s for t, s in blind if not any(a <= t <= b for a, b in spells)]
    return {"blind_pages": len(blind), "during_worker_gap": len(blind) - len(outside),
            "outside_gaps": len(outside), "outside_subjects": outside[:5]}
