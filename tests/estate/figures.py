"""The estate's figures, read from our database, the emulators' simulations (ground truth, asked of
each emulator's process), their ARM read buckets, our shared throttle's counts in Redis, and /proc."""
from __future__ import annotations

import os
from collections import Counter
from datetime import UTC, datetime
from typing import Any

from workers.emulator.simulation import FleetSimulation
from workers.models import AutomationAccount, HybridWorker, PollKind, PollRun, WorkerGroup


def _dt(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, tz=UTC)


def inventory_lost(account: AutomationAccount, sim: FleetSimulation) -> dict[str, Any]:
    """Groups and workers the emulator serves that we do not hold (and any we hold that it does not)."""
    truth_groups = {g.name.lower() for g in sim.groups}
    ours_groups = {n.lower() for n in WorkerGroup.objects.filter(account=account, removed_at__isnull=True)
                   .values_list("name", flat=True)}
    truth_workers = {(w.group.lower(), w.name.lower()) for w in sim.workers}
    ours_workers = {(g.lower(), n.lower()) for g, n in HybridWorker.objects.filter(group__account=account)
                    .values_list("group__name", "name")}
    return {"groups_expected": len(truth_groups), "groups_lost": len(truth_groups - ours_groups),
            "groups_extra": len(ours_groups - truth_groups),
            "workers_expected": len(truth_workers), "workers_lost": len(truth_workers - ours_workers),
            "workers_extra": len(ours_workers - truth_workers),
            "workers_lost_examples": sorted(f"{g}/{n}" for g, n in truth_workers - ours_workers)[:5]}


def ok_finishes(accounts: list[AutomationAccount], before: float) -> dict[tuple[int, str], list[float]]:
    """(account id, group name lower) -> sorted finish times (epoch) of its successful worker polls."""
    out: dict[tuple[int, str], list[float]] = {}
    rows = PollRun.objects.filter(account__in=accounts, kind=PollKind.WORKERS, ok=True, finished_at__isnull=False,
                                  finished_at__lte=_dt(before)).values_list("account_id", "scope", "finished_at")
    for account_id, scope, finished in rows:
        out.setdefault((account_id, scope.lower()), []).append(finished.timestamp())
    for times in out.values():
        times.sort()
    return out


def staleness(accounts: list[AutomationAccount], start: float, end: float, interval: float,
              product_stale_after: float) -> dict[str, Any]:
    """Per group, exactly from its successful worker polls: the age of its newest finished one at every
    moment of [start, end]. "stale" (the brief's rule) = older than one interval beyond its schedule
    (age > 2 x interval); "flagged" = the product's rule (age > STALE_AFTER_INTERVALS x interval).
    Reports the longest spell of each over all groups, and the oldest age seen."""
    finishes = ok_finishes(accounts, end)
    groups = [(a.pk, n.lower()) for a in accounts
              for n in WorkerGroup.objects.filter(account=a, removed_at__isnull=True).values_list("name", flat=True)]
    stale_after = 2 * interval
    longest_stale = longest_flagged = max_age = 0.0
    worst = ""
    never: list[str] = []
    spells: Counter[str] = Counter()
    for key in groups:
        times = finishes.get(key, [])
        before = [t for t in times if t <= start]
        points = [before[-1] if before else None] + [t for t in times if start < t <= end]
        if points[0] is None and len(points) == 1:
            never.append(f"{key[0]}/{key[1]}")
            continue
        # Consecutive "last good poll" moments; the age grows from each until the next (or the end).
        edges = [p for p in points if p is not None]
        first_gap_from = points[0] if points[0] is not None else None
        segments = list(zip(edges, edges[1:] + [end], strict=False))
        if first_gap_from is None:  # never polled before the run started: stale from the start
            segments.insert(0, (start - stale_after, edges[0]))
        for last, nxt in segments:
            age = nxt - last
            seen_from = max(last, start)
            max_age = max(max_age, nxt - last if nxt > start else 0.0)
            s = max(0.0, nxt - max(last + stale_after, seen_from))
            f = max(0.0, nxt - max(last + product_stale_after, seen_from))
            if s > 0:
                spells["stale"] += 1
            if f > 0:
                spells["flagged"] += 1
            if s > longest_stale:
                longest_stale, worst = s, f"{key[1]} (account {key[0]}), last good poll {_dt(last):%H:%M:%S}, next {age:.0f} s later"
            longest_flagged = max(longest_flagged, f)
    return {"groups": len(groups), "interval_seconds": interval, "stale_after_seconds": stale_after,
            "product_flags_after_seconds": product_stale_after, "max_age_seconds": round(max_age, 1),
            "longest_stale_seconds": round(longest_stale, 1), "longest_flagged_seconds": round(longest_flagged, 1),
            "stale_spells": spells["stale"], "flagged_spells": spells["flagged"], "worst": worst,
            "never_polled": never[:10], "never_polled_count": len(never)}


def polls_by_kind(accounts: list[AutomationAccount], start: float, end: float) -> dict[str, Any]:
    """Poll runs started in [start, end] per kind: ok / failed / still open, and the first errors."""
    runs = PollRun.objects.filter(account__in=accounts, started_at__gte=_dt(start), started_at__lt=_dt(end))
    out: dict[str, Any] = {}
    for kind, ok, finished, error, ms in runs.values_list("kind", "ok", "finished_at", "error", "duration_ms"):
        row = out.setdefault(kind, {"ok": 0, "failed": 0, "open": 0, "errors": Counter(), "ms": []})
        if ms is not None:
            row["ms"].append(ms)
        if finished is None:
            row["open"] += 1
        elif ok:
            row["ok"] += 1
        else:
            row["failed"] += 1
            row["errors"][(error or "?")[:100]] += 1
    # The most polls of one kind of one account in flight at once (a poll outliving its interval overlaps
    # the next one: beat does not wait for it).
    spans: dict[tuple[str, int], list[tuple[float, int]]] = {}
    for kind, account_id, started, finished in runs.values_list("kind", "account_id", "started_at", "finished_at"):
        edges = spans.setdefault((kind, account_id), [])
        edges += [(started.timestamp(), 1), ((finished.timestamp() if finished else end), -1)]
    for (kind, _), edges in spans.items():
        level = peak = 0
        for _, step in sorted(edges, key=lambda e: (e[0], e[1])):
            level += step
            peak = max(peak, level)
        out[kind]["max_in_flight_per_account"] = max(out[kind].get("max_in_flight_per_account", 0), peak)
    for row in out.values():
        row["errors"] = dict(row["errors"].most_common(3))
        ms = sorted(row.pop("ms"))
        row["seconds_median"] = round(ms[len(ms) // 2] / 1000, 2) if ms else None
        row["seconds_max"] = round(ms[-1] / 1000, 2) if ms else None
    return out


def redis_arm_stats(client: Any, account: AutomationAccount) -> dict[str, str]:
    """Our shared ARM throttle's counts for this account's subscription and principal (the Redis hash
    ``/metrics`` reads for ``hrw_arm_throttled_total``): responses, throttled (429s), remaining."""
    from workers.azure.connection import connection_from_account
    from workers.rules.arm_budget import bucket_key, stats_key

    conn = connection_from_account(account)
    key = stats_key(bucket_key(conn.arm_endpoint, conn.subscription_id, conn.client_id or "default"))
    return {(k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else v)
            for k, v in client.hgetall(key).items()}


def _stat(pid: str | int) -> list[str] | None:
    """The fields of /proc/<pid>/stat after the name: state ppid pgrp ... utime(11) stime(12)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None


def process_cpu_seconds(pgid: int) -> float:
    """User + system CPU seconds of every live process in process group ``pgid`` (Linux /proc)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in os.listdir("/proc"):
        fields = _stat(pid) if pid.isdigit() else None
        if fields and int(fields[2]) == pgid:
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


def pid_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of one process, all its threads (0 once it has exited)."""
    fields = _stat(pid)
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK") if fields else 0.0
