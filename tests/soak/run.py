"""The soak itself: start everything, run the timeline of kills and restarts, drain, measure."""
from __future__ import annotations

import json
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management import call_command

from tests.soak import figures
from tests.soak.services import (
    HealthSampler,
    Processes,
    SmtpSink,
    celery_cmd,
    gunicorn_cmd,
    log_times,
    redis_cmd,
    redis_up,
    wait_until,
)

BEATS, WORKERS = ("beat1", "beat2"), ("w1", "w2", "w3")
RESTART_AFTER_SECONDS = 5  # a supervisor's restart delay (systemd RestartSec=5)


@dataclass
class Event:
    at: float  # seconds after the start of the measured run
    name: str
    action: Callable[[], None]


class Soak:
    def __init__(self, opts: dict[str, Any], run_dir: Path, env: dict[str, str], redis_port: int,
                 web_ports: list[int], smtp: SmtpSink, say: Callable[[str], None]) -> None:
        self.opts, self.run_dir, self.say = opts, run_dir, say
        self.redis_port, self.web_ports, self.smtp = redis_port, web_ports, smtp
        self.procs = Processes(settings.BASE_DIR, env, run_dir)
        self.health = HealthSampler(web_ports)
        self.gaps: dict[str, tuple[float, float]] = {}
        self.marks: dict[str, float] = {}
        self.targeted: set[str] = set()
        self.deliberate: set[str] = set()  # children we stopped on purpose (not restarted by the supervisor)
        self.unexpected_exits: list[str] = []

    # ------------------------------------------------------------------ start

    def start(self) -> None:
        from workers.emulator.testing import build_emulator
        from workers.fleet.accounts import add_account_from_connection_file

        self.procs.start("redis", redis_cmd(self.redis_port, self.run_dir))
        wait_until(lambda: redis_up(self.redis_port), "redis-server", 20)
        call_command("migrate", verbosity=0, interactive=False)
        call_command("flush", verbosity=0, interactive=False)  # the soak's own database: a clean slate
        self.emu = build_emulator(directory=self.run_dir / "emulator", realtime=True, scenarios=False,
                                  seed=self.opts["seed"], groups=self.opts["groups"], workers=self.opts["workers"],
                                  history_days=1 / 24, fault_rate=self.opts["fault_rate"], log_requests=False)
        self.account, _ = add_account_from_connection_file(self.emu.connection_file, name="soak")
        for i, port in enumerate(self.web_ports, 1):
            self.procs.start(f"web{i}", gunicorn_cmd(port))
        for name in WORKERS:
            self.procs.start(name, celery_cmd("worker", "-n", f"{name}@%h", "--concurrency", "1", "--loglevel", "INFO",
                                              "--without-gossip", "--without-mingle"))
        for name in BEATS:
            self.procs.start(name, celery_cmd("beat", "--loglevel", "INFO", "--schedule", str(self.run_dir / f"{name}-schedule")))
        self.health.start()
        wait_until(self.active_beat, "a beat holding the lock", 60)
        for kind in ("groups", "jobs", "perf"):
            wait_until(lambda k=kind: figures.last_ok_start(self.account, k), f"a first successful {kind} poll", 240, 1.0)
        self.say(f"up: 2 web {self.web_ports}, 3 workers, 2 beats (active: {self.active_beat()}), redis :{self.redis_port}, "
                 f"SMTP :{self.smtp.port}, emulator {self.emu.url}")

    def active_beat(self) -> str | None:
        """The live beat that took the lock last (a beat keeps it until it dies)."""
        held = [(max(t), name) for name in BEATS if self.procs.children[name].alive
                and (t := log_times(self.procs.children[name].log, "beat: Acquired lock"))]
        return max(held)[1] if held else None

    # ------------------------------------------------------------------ events

    def timeline(self) -> list[Event]:
        o, total = self.opts, self.opts["minutes"] * 60
        events = [Event(o["kill_beat_at"] if o["kill_beat_at"] is not None else 0.35 * total, "kill active beat", self.kill_beat),
                  Event(o["kill_worker_at"] if o["kill_worker_at"] is not None else 0.55 * total, "kill worker w2", self.kill_worker)]
        if o["scenario_at"] is not None and o["scenario_at"] >= 0:
            events.append(Event(o["scenario_at"], "scenario", self.scenario))
        if o["stop_workers_for"]:
            at = o["stop_workers_at"] if o["stop_workers_at"] is not None else 0.65 * total
            events.append(Event(at, f"stop every worker for {o['stop_workers_for']:.0f} s", self.stop_workers))
            events.append(Event(at + o["stop_workers_for"], "start the workers", self.start_workers))
        if o["restart_redis_at"] is not None:
            events.append(Event(o["restart_redis_at"], "stop redis", self.stop_redis))
            events.append(Event(o["restart_redis_at"] + o["redis_down_seconds"], "start redis", self.start_redis))
        return sorted(events, key=lambda e: e.at)

    def kill_beat(self) -> None:
        name = self.active_beat()
        if name is None:
            self.say("  no beat holds the lock: nothing to kill")
            return
        self.deliberate.add(name)
        self.marks["beat_killed"] = self.procs.kill(name, signal.SIGKILL)
        self.say(f"  SIGKILL {name} (the lock holder); supervisor restarts it in {RESTART_AFTER_SECONDS} s")
        self.restarts.append((time.time() + RESTART_AFTER_SECONDS, name))

    def kill_worker(self) -> None:
        self.deliberate.add("w2")
        self.marks["worker_killed"] = self.procs.kill("w2", signal.SIGKILL)
        self.say(f"  SIGKILL w2 (and its pool) mid-cycle; supervisor restarts it in {RESTART_AFTER_SECONDS} s")
        self.restarts.append((time.time() + RESTART_AFTER_SECONDS, "w2"))

    def scenario(self) -> None:
        from workers.models import HybridWorker

        # The 2026 failure: the Hybrid Worker service stops on a V2 machine. Automation's lastSeen and
        # the HybridWorkerPing stop, the Azure Monitor Agent's heartbeats go on: the worker goes down
        # and exactly one DOWN email (cause: the service) must reach the sink, whichever worker sends it.
        worker = (HybridWorker.objects.filter(group__account=self.account, status="online", worker_type="HybridV2")
                  .order_by("group__name", "name").first())
        if worker is None:
            self.say("  no online V2 worker for the scenario")
            return
        self.targeted.add(worker.name.lower())
        minutes = self.opts["scenario_minutes"]
        self.marks["scenario_started"] = time.time()
        self.emu.start_scenario("service_stopped", worker.name, minutes)
        self.scenario_worker = worker.name
        self.say(f"  service_stopped on {worker.name} for {minutes:g} min (one DOWN and one RESTORED email expected)")

    def stop_workers(self) -> None:
        at = time.time()
        for name in WORKERS:
            self.deliberate.add(name)
            self.procs.kill(name, signal.SIGTERM, wait=30)
        self.marks["workers_stopped"] = at

    def start_workers(self) -> None:
        for name in WORKERS:
            if not self.procs.children[name].alive:
                self.procs.start(name)
            self.deliberate.discard(name)
        self.gaps["workers_down"] = (self.marks["workers_stopped"], time.time())

    def stop_redis(self) -> None:
        self.deliberate.add("redis")
        self.marks["redis_stopped"] = self.procs.kill("redis", signal.SIGTERM)

    def start_redis(self) -> None:
        self.procs.start("redis")
        wait_until(lambda: redis_up(self.redis_port), "redis-server after its restart", 20)
        self.deliberate.discard("redis")
        self.gaps["redis_down"] = (self.marks["redis_stopped"], time.time())

    # ------------------------------------------------------------------ run

    def run(self) -> dict[str, Any]:
        self.restarts: list[tuple[float, str]] = []
        self.start()
        t0 = time.time()
        end = t0 + self.opts["minutes"] * 60
        pending = self.timeline()
        self.say(f"running {self.opts['minutes']:g} min: " + "; ".join(f"{e.name} at {e.at:.0f} s" for e in pending))
        while time.time() < end or any(p[0] <= end + 60 for p in self.restarts):
            now = time.time()
            while pending and t0 + pending[0].at <= now:
                event = pending.pop(0)
                self.say(f"[{now - t0:5.0f} s] {event.name}")
                event.action()
            for due, name in [r for r in self.restarts if r[0] <= now]:
                self.restarts.remove((due, name))
                self.procs.start(name)
                self.deliberate.discard(name)
                if name in BEATS:
                    self.gaps.setdefault("beat_takeover", (self.marks["beat_killed"], now))
            self.supervise()
            if time.time() >= end and not self.restarts:
                break
            time.sleep(0.5)  # the harness's own scheduler tick (not a synchronisation)
        for event in pending:  # events scheduled past the end still run (e.g. "start the workers")
            event.action()
        return self.finish(t0)

    def supervise(self) -> None:
        """Like systemd's Restart=always: a child that died without being told to is restarted."""
        for name, child in self.procs.children.items():
            if name in self.deliberate or child.alive or child.proc is None:
                continue
            self.unexpected_exits.append(f"{name} (exit {child.proc.returncode}) at {time.strftime('%H:%M:%S')}")
            self.say(f"  {name} exited unexpectedly ({child.proc.returncode}); restarting it")
            self.procs.start(name)

    def finish(self, t0: float) -> dict[str, Any]:
        from workers.models import Notification

        chaos_end = time.time()
        drain = 5 * max(settings.POLL_JOBS_SECONDS, settings.POLL_LOGS_SECONDS, settings.POLL_WORKERS_SECONDS) + 120
        self.say(f"draining: waiting for a successful poll of every kind started after the last fault (at most {drain} s)")
        for kind in ("groups", "jobs", "perf"):
            wait_until(lambda k=kind: (s := figures.last_ok_start(self.account, k)) and s.timestamp() > chaos_end + 1,
                       f"a successful {kind} poll after the run", drain, 1.0)
        worker = getattr(self, "scenario_worker", None)
        if worker is not None:  # the scenario's page may still be on its way on a slow machine: wait for it
            try:
                wait_until(lambda: any(s.startswith("DOWN ") and worker.lower() in s.lower() for _, s, _ in self.smtp.emails()),
                           f"the DOWN email for {worker}", drain, 1.0)
            except RuntimeError as exc:  # reported by the figures (0 DOWN emails) and the verdict
                self.say(f"  {exc}")
        wait_until(lambda: not Notification.objects.filter(status__in=("pending", "sending")).exists(),
                   "the alert outbox to drain", 120, 1.0)
        self.health.stopping.set()
        result: dict[str, Any] = {
            "minutes": self.opts["minutes"], "fault_rate": self.opts["fault_rate"],
            "intervals": {"poll_workers": settings.POLL_WORKERS_SECONDS, "poll_jobs": settings.POLL_JOBS_SECONDS,
                          "poll_logs": settings.POLL_LOGS_SECONDS, "beat_lock_timeout": settings.BEAT_LOCK_TIMEOUT_SECONDS,
                          "beat_max_loop_interval": settings.CELERY_BEAT_MAX_LOOP_INTERVAL},
            "fleet": {"groups": self.opts["groups"], "workers": self.opts["workers"]},
        }
        if "beat_killed" in self.marks:
            acquired = [t for name in BEATS for t in log_times(self.procs.children[name].log, "beat: Acquired lock")]
            result["beat"] = figures.takeover(self.account, self.marks["beat_killed"], acquired)
        result["polls_per_interval"] = figures.polls_per_interval(self.account, t0, chaos_end, settings.POLL_WORKERS_SECONDS)
        result["rows"] = figures.rows_lost(self.account, self.emu.simulation, t0)
        result["email"] = figures.duplicate_emails(self.smtp.emails())
        result["email"]["subjects"] = sorted({s for _, s, _ in self.smtp.emails()})[:10]
        result["scenario"] = figures.scenario_pages(self.smtp.emails(), getattr(self, "scenario_worker", None),
                                                    self.marks.get("scenario_started"))
        result["blind"] = figures.blind_pages(self.smtp.emails(), self.gaps,
                                              settings.ALERT_BLIND_GRACE_SECONDS + 2 * settings.ALERT_SEND_SECONDS + 30)
        result["status"] = figures.false_status_changes(self.account, self.targeted)
        result["healthz"] = figures.health_during(self.health.samples, self.gaps)
        result["unexpected_exits"] = self.unexpected_exits
        return result

    def close(self) -> None:
        self.health.stopping.set()
        self.procs.stop_all()
        emu = getattr(self, "emu", None)
        if emu is not None:
            emu.close()


def verdict(result: dict[str, Any]) -> list[str]:
    """The reasons to exit non-zero: rows lost, emails duplicated, or figures that could not be taken."""
    rows, mail = result["rows"], result["email"]
    bad = []
    if rows.get("jobs_lost") is None or rows.get("samples_lost") is None:
        bad.append("no successful jobs/perf poll to compare with")
    else:
        if rows["jobs_lost"]:
            bad.append(f"{rows['jobs_lost']} jobs lost")
        if rows["samples_lost"]:
            bad.append(f"{rows['samples_lost']} utilization samples lost")
    if mail["duplicates"]:
        bad.append(f"{mail['duplicates']} duplicate emails")
    page = result.get("scenario") or {}
    if page.get("down_emails") is not None and page["down_emails"] != 1:
        bad.append(f"{page['down_emails']} DOWN emails for the scenario's worker {page['worker']} (want exactly 1)")
    elif page.get("down_emails") == 1 and not page["cause_named"]:
        bad.append("the scenario's DOWN email does not name its cause")
    if result["blind"]["outside_gaps"]:
        bad.append(f"{result['blind']['outside_gaps']} BLIND pages outside our own deliberate gaps")
    for gap in ("workers_down", "redis_down"):
        seen = result["healthz"].get(gap)
        if seen is not None and not any(" ok" not in answer for answer in seen):
            bad.append(f"/healthz never said anything was down while {gap.replace('_', ' ')}")
    if result["status"]["false_status_changes"]:
        bad.append(f"{result['status']['false_status_changes']} false late/offline status changes")
    return bad


def dump(result: dict[str, Any], path: Path | None) -> str:
    text = json.dumps(result, indent=2, default=str)
    if path is not None:
        path.write_text(text)
    return text
