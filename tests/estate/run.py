"""The estate run: start everything, poll for N minutes under ARM's token bucket, drain, measure."""
from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.db import connection

from tests.estate import figures
from tests.estate.remote import RemoteEmulator
from tests.soak import figures as soak_figures
from tests.soak.services import Processes, SmtpSink, celery_cmd, redis_cmd, redis_up, wait_until

MAX_WORKERS_PER_ACCOUNT = 4000  # Azure: user hybrid workers per Automation account


def split(total: int, parts: int) -> list[int]:
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


class StaleSampler(threading.Thread):
    """Every ``every`` s, what the product would show: groups whose newest successful worker poll is
    older than 2 x interval (the brief's "stale") and than STALE_AFTER_INTERVALS x interval (flagged)."""

    SQL = """
        SELECT count(*) FILTER (WHERE age > %(stale)s), count(*) FILTER (WHERE age > %(flag)s), coalesce(max(age), 0)
        FROM (SELECT extract(epoch FROM now() - (SELECT max(r.finished_at) FROM workers_pollrun r
                                                 WHERE r.account_id = g.account_id AND r.kind = 'workers' AND r.ok
                                                   AND r.scope = g.name AND r.finished_at IS NOT NULL)) AS age
              FROM workers_workergroup g WHERE g.removed_at IS NULL) ages"""

    def __init__(self, every: float, interval: float, flag_after: float) -> None:
        super().__init__(daemon=True)
        self.every, self.params = every, {"stale": 2 * interval, "flag": flag_after}
        self.samples: list[tuple[float, int, int, float, float]] = []  # (epoch, stale, flagged, max age, load1)
        self.stopping = threading.Event()

    def run(self) -> None:
        try:
            while not self.stopping.wait(self.every):
                with connection.cursor() as cur:
                    cur.execute(self.SQL, self.params)
                    stale, flagged, age = cur.fetchone()
                self.samples.append((time.time(), int(stale), int(flagged), float(age), os.getloadavg()[0]))
        finally:
            connection.close()


class Estate:
    def __init__(self, opts: dict[str, Any], run_dir: Path, env: dict[str, str], redis_port: int,
                 smtp: SmtpSink, say: Callable[[str], None]) -> None:
        self.opts, self.run_dir, self.say, self.redis_port, self.smtp = opts, run_dir, say, redis_port, smtp
        self.procs = Processes(settings.BASE_DIR, env, run_dir)
        self.emus: list[RemoteEmulator] = []
        self.group_counts: list[int] = []
        self.accounts: list[Any] = []
        interval = float(settings.POLL_WORKERS_SECONDS)
        self.sampler = StaleSampler(opts["sample_every"], interval, float(settings.STALE_AFTER_INTERVALS) * interval)

    def start(self) -> None:
        from workers.fleet.accounts import add_account_from_connection_file

        o = self.opts
        workers, groups = split(o["workers"], o["accounts"]), split(o["groups"], o["accounts"])
        if max(workers) > MAX_WORKERS_PER_ACCOUNT:
            raise SystemExit(f"{max(workers)} workers in one account: Azure allows at most {MAX_WORKERS_PER_ACCOUNT}")
        self.procs.start("redis", redis_cmd(self.redis_port, self.run_dir))
        wait_until(lambda: redis_up(self.redis_port), "redis-server", 20)
        call_command("migrate", verbosity=0, interactive=False)
        call_command("flush", verbosity=0, interactive=False)  # the estate's own database: a clean slate
        for i in range(o["accounts"]):
            t = time.monotonic()
            # Each emulator is one subscription with its own principal (its own ARM read bucket, as Azure's),
            # served by a process of its own.
            emu = RemoteEmulator(bucket=o["arm_bucket"], refill=o["arm_refill"],
                                 directory=self.run_dir / f"emulator{i + 1}", realtime=True, scenarios=o["scenarios"],
                                 seed=o["seed"] + i, groups=groups[i], workers=workers[i], history_days=0,
                                 log_requests=False)
            self.emus.append(emu)
            account, _ = add_account_from_connection_file(emu.connection_file, name=f"estate-{i + 1}")
            self.accounts.append(account)
            self.group_counts.append(len(emu.simulation.groups))
            self.say(f"account estate-{i + 1}: {workers[i]} workers in {groups[i]} groups, subscription "
                     f"{emu.simulation.subscription_id}, {emu.url} (emulator process {emu.pid}, "
                     f"built in {time.monotonic() - t:.0f} s)")
        for n in range(1, o["celery_workers"] + 1):
            self.procs.start(f"w{n}", celery_cmd("worker", "-n", f"w{n}@%h", "--concurrency", str(o["concurrency"]),
                                                 "--loglevel", "WARNING", "--without-gossip", "--without-mingle"))
        self.procs.start("beat", celery_cmd("beat", "--loglevel", "INFO", "--schedule", str(self.run_dir / "beat-schedule")))
        if o["product_nice"]:
            # The emulators stand in for Azure, whose CPU is not ours: on a shared box, give the product's
            # processes (and their pools, forked later) a lower priority than the emulators' processes.
            for name, child in self.procs.children.items():
                if name != "redis" and child.proc is not None:
                    os.setpriority(os.PRIO_PGRP, child.proc.pid, o["product_nice"])
        # Up when every group of every account has had a successful worker poll, and the other kinds one
        # each; past --startup-timeout the run starts anyway and says what was missing (a slow machine).
        total_groups = sum(self.group_counts)
        deadline = time.monotonic() + o["startup_timeout"]
        conditions = [(lambda: len(figures.ok_finishes(self.accounts, time.time() + 60)) >= total_groups,
                       "a first successful worker poll of every group")]
        conditions += [(lambda a=account, k=kind: soak_figures.last_ok_start(a, k), f"a first {kind} poll of {account.name}")
                       for account in self.accounts for kind in ("groups", "jobs", "perf")]
        self.startup_missing: list[str] = []
        for condition, what in conditions:
            try:
                wait_until(condition, what, max(0.0, deadline - time.monotonic()), 2.0)
            except RuntimeError:
                self.startup_missing.append(what)
        self.startup_seconds = round(time.monotonic() - deadline + o["startup_timeout"], 1)
        if self.startup_missing:
            self.say(f"started after {o['startup_timeout']:.0f} s without: {'; '.join(self.startup_missing)}")
        self.say(f"up: {o['celery_workers']} Celery workers x {o['concurrency']}, 1 beat, redis :{self.redis_port}, "
                 f"{len(self.emus)} emulators (ARM bucket {o['arm_bucket']} refilled {o['arm_refill']:g}/s each)")

    def counters(self) -> dict[str, Any]:
        """Now: each emulator's ARM bucket counts, and the CPU seconds of every process group."""
        arm = [emu.counters() for emu in self.emus]
        cpu = {name: figures.process_cpu_seconds(c.proc.pid) for name, c in self.procs.children.items() if c.proc}
        for i, emu in enumerate(self.emus):
            cpu[f"emulator{i + 1}"] = figures.pid_cpu_seconds(emu.pid) if emu.pid else 0.0
        usage = os.times()
        cpu["harness"] = usage.user + usage.system
        return {"t": time.time(), "arm": arm, "cpu": cpu, "load": os.getloadavg()}

    def run(self) -> dict[str, Any]:
        self.start()
        self.sampler.start()
        first = self.counters()
        t0 = first["t"]
        end = t0 + self.opts["minutes"] * 60
        self.say(f"polling for {self.opts['minutes']:g} min (until {time.strftime('%H:%M:%S', time.localtime(end))})")
        next_note = t0 + 60
        while time.time() < end:
            for name, child in self.procs.children.items():
                if not child.alive:
                    raise RuntimeError(f"{name} exited ({child.proc.returncode if child.proc else '?'}): see {child.log}")
            if time.time() >= next_note and self.sampler.samples:
                _, stale, flagged, age, load = self.sampler.samples[-1]
                self.say(f"[{time.time() - t0:5.0f} s] stale groups {stale} (flagged {flagged}), oldest {age:.0f} s, "
                         f"429s {sum(e.counters()['throttled'] for e in self.emus)}, load {load:.2f}")
                next_note += 60
            time.sleep(1.0)  # the harness's own tick (not a synchronisation)
        last = self.counters()
        return self.finish(first, last)

    def finish(self, first: dict[str, Any], last: dict[str, Any]) -> dict[str, Any]:
        t0, t1 = first["t"], last["t"]
        drain = self.opts["drain_factor"] * max(settings.POLL_JOBS_SECONDS, settings.POLL_LOGS_SECONDS, settings.POLL_WORKERS_SECONDS) + 120
        self.say(f"draining: a successful jobs and perf poll of every account started after the run (at most {drain} s)")
        drain_deadline, self.drain_missing = time.monotonic() + drain, []
        for account in self.accounts:
            for kind in ("jobs", "perf"):
                try:  # past the deadline, rows are compared up to the last good poll (and this is reported)
                    wait_until(lambda a=account, k=kind: (s := soak_figures.last_ok_start(a, k)) and s.timestamp() > t1 + 1,
                               f"{kind} of {account.name}", max(0.0, drain_deadline - time.monotonic()), 1.0)
                except RuntimeError:
                    self.drain_missing.append(f"{kind} of {account.name}")
        self.sampler.stopping.set()
        self.sampler.join(timeout=30)
        hours = (t1 - t0) / 3600
        interval = float(settings.POLL_WORKERS_SECONDS)
        result: dict[str, Any] = {
            "minutes": self.opts["minutes"], "accounts": len(self.accounts), "workers": self.opts["workers"],
            "groups": sum(self.group_counts), "scenarios": self.opts["scenarios"],
            "celery": f"{self.opts['celery_workers']} workers x concurrency {self.opts['concurrency']}, 1 beat, "
                      f"nice +{self.opts['product_nice']}",
            "intervals": {"poll_workers": settings.POLL_WORKERS_SECONDS, "poll_jobs": settings.POLL_JOBS_SECONDS,
                          "poll_logs": settings.POLL_LOGS_SECONDS, "poll_machines": settings.POLL_MACHINES_SECONDS,
                          "poll_ping": settings.POLL_PING_SECONDS, "stale_after_intervals": settings.STALE_AFTER_INTERVALS},
            "arm_bucket": {"model": "one emulator process per account, each its own subscription and principal, so "
                                    "its own bucket (Azure: per subscription and principal)",
                           "emulator": f"{self.opts['arm_bucket']} burst, {self.opts['arm_refill']:g}/s refill",
                           "ours": f"{settings.ARM_READS_BUCKET} burst, {settings.ARM_READS_REFILL_PER_SECOND:g}/s refill"},
        }
        per_sub = []
        for i, (emu, a, b) in enumerate(zip(self.emus, first["arm"], last["arm"], strict=True)):
            granted = (b["granted"] or 0) - (a["granted"] or 0)
            throttled = b["throttled"] - a["throttled"]
            per_sub.append({"account": self.accounts[i].name, "subscription": emu.simulation.subscription_id,
                            "reads_per_hour": round((granted + throttled) / hours) if hours else None,
                            "granted_per_hour": round(granted / hours) if hours else None,
                            "throttled_in_run": throttled, "throttled_total": b["throttled"]})
        import redis

        client = redis.Redis(port=self.redis_port)
        for sub, account in zip(per_sub, self.accounts, strict=True):
            ours = figures.redis_arm_stats(client, account)
            sub["ours_throttled"] = int(ours.get("throttled", 0))
            sub["ours_responses"] = int(ours.get("responses", 0))
        result["arm"] = {"per_subscription": per_sub,
                         "emulator_429s": sum(s["throttled_total"] for s in per_sub),
                         "emulator_429s_in_run": sum(s["throttled_in_run"] for s in per_sub),
                         "ours_hrw_arm_throttled_total": sum(s["ours_throttled"] for s in per_sub),
                         "ours_responses": sum(s["ours_responses"] for s in per_sub)}
        rows: dict[str, Any] = {}
        for account, emu in zip(self.accounts, self.emus, strict=True):
            rows[account.name] = {**figures.inventory_lost(account, emu.simulation),
                                  **soak_figures.rows_lost(account, emu.simulation, t0)}
        result["rows"] = rows
        counts = [r.get(k) for r in rows.values() for k in ("groups_lost", "workers_lost", "jobs_lost", "samples_lost")]
        result["rows_lost"] = None if None in counts else sum(counts)  # None: a kind could not be compared
        result["staleness"] = figures.staleness(self.accounts, t0, t1, interval,
                                                float(settings.STALE_AFTER_INTERVALS) * interval)
        samples = self.sampler.samples
        result["staleness"]["sampled"] = {
            "every_seconds": self.opts["sample_every"], "samples": len(samples),
            "max_stale_groups": max((s[1] for s in samples), default=None),
            "max_flagged_groups": max((s[2] for s in samples), default=None),
            "max_oldest_age_seconds": round(max((s[3] for s in samples), default=0.0), 1)}
        result["polls"] = figures.polls_by_kind(self.accounts, t0, t1)
        cpu = {k: round(last["cpu"].get(k, 0.0) - first["cpu"].get(k, 0.0), 1) for k in last["cpu"]}
        result["cpu_seconds"] = {**cpu, "wall_seconds": round(t1 - t0, 1), "cores": os.cpu_count()}
        loads = [s[4] for s in samples]
        result["load_average"] = {"start": first["load"], "end": last["load"],
                                  "load1_mean": round(sum(loads) / len(loads), 2) if loads else None,
                                  "load1_max": round(max(loads), 2) if loads else None}
        result["emails"] = len(self.smtp.emails())
        result["startup"] = {"seconds": self.startup_seconds, "missing": self.startup_missing}
        result["drain"] = {"seconds": round(time.monotonic() - drain_deadline + drain, 1),
                           "no_successful_poll_after_the_run": self.drain_missing}
        return result

    def close(self) -> None:
        self.sampler.stopping.set()
        self.procs.stop_all()
        for emu in self.emus:
            emu.close()


def verdict(result: dict[str, Any]) -> list[str]:
    """The reasons to exit non-zero: rows lost, or a group stale longer than one interval."""
    bad = []
    for name, rows in result["rows"].items():
        if rows.get("jobs_lost") is None or rows.get("samples_lost") is None:
            bad.append(f"{name}: no successful jobs/perf poll to compare with")
        lost = {k: rows.get(k) for k in ("groups_lost", "workers_lost", "jobs_lost", "samples_lost") if rows.get(k)}
        if lost:
            bad.append(f"{name}: " + ", ".join(f"{v} {k.replace('_lost', '')} lost" for k, v in lost.items()))
    st = result["staleness"]
    if st["longest_stale_seconds"] > st["interval_seconds"] or st["never_polled_count"]:
        bad.append(f"a group was stale {st['longest_stale_seconds']:.0f} s (> one interval, {st['interval_seconds']:.0f} s): "
                   f"{st['worst']}" + (f"; never polled: {st['never_polled_count']}" if st["never_polled_count"] else ""))
    return bad
