"""``python -m tests.demo_run [--minutes 30] [--json FILE]``: issue 12's demo run, end to end.

Starts ``manage.py demo`` as ``make demo`` does (fresh HRW_VAR_DIR, a free port, no DATABASE_URL /
REDIS_URL: SQLite and the filesystem broker) with its alert emails going to an aiosmtpd sink, times
launch -> URL, checks the three figures right after the URL, keeps it running for ``--minutes``,
then judges the emails against the emulator's scenarios (checks.judge), stops the demo with SIGINT
and checks that no process it started is left. Prints the figures; exits 1 on any failure.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tests.demo_run import checks
from tests.demo_run.services import BodySink, Emulator, Site, cpu_seconds, descendants, leftovers, load_average
from tests.soak.services import free_port

ROOT = Path(__file__).resolve().parents[2]
URL_MARK = "HRW monitor is running: "
# How long after a scenario begins its page can be in the sink: the slowest offline threshold
# (HybridWorkerPing, 420 s) + its poll (60 s) + the status refresh (15 s) + the group wait (60 s) +
# outbox and sending (5 + 10 s), rounded up.
DETECTION_MINUTES = 10.0
# One poll interval: lastSeen is a 30-second poll and POLL_WORKERS_SECONDS is 30.
START_TOLERANCE_SECONDS = 30.0


class Demo:
    """``manage.py demo`` in its own session; its stdout is copied to <var>/demo-stdout.log."""

    def __init__(self, var: Path, port: int, smtp_port: int) -> None:
        python = ROOT / ".venv" / "bin" / "python"
        env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
        env.update({"HRW_VAR_DIR": str(var), "PORT": str(port), "EMAIL_HOST": "127.0.0.1",
                    "EMAIL_PORT": str(smtp_port), "PYTHONUNBUFFERED": "1"})
        self.out = (var / "demo-stdout.log").open("w", buffering=1)
        self.launched = time.monotonic()
        self.proc = subprocess.Popen([str(python if python.exists() else sys.executable), "manage.py", "demo", "--port", str(port)],
                                     cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        self.url: str | None = None
        self.url_seconds: float | None = None
        self.url_cpu_seconds: float | None = None
        self.url_seen = threading.Event()
        self.lines: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            line = raw.decode(errors="replace").rstrip("\n")
            self.lines.append(line)
            self.out.write(line + "\n")
            if URL_MARK in line and self.url is None:
                self.url_seconds = time.monotonic() - self.launched
                self.url_cpu_seconds = cpu_seconds([self.proc.pid, *descendants(self.proc.pid)])
                self.url = line.split(URL_MARK, 1)[1].strip()
                self.url_seen.set()
        self.url_seen.set()  # the demo ended: wake the waiter

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, timeout: float = 60) -> int | None:
        """SIGINT, as Ctrl-C would; the demo stops its own children. None if it did not exit in time."""
        if self.alive():
            os.kill(self.proc.pid, signal.SIGINT)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None
        finally:
            self.out.flush()


def check_figures(site: Site, emulator: Emulator) -> dict[str, Any]:
    latency = site.json("/api/v1/jobs/latency?window=24h")
    overview = site.csv("/overview.csv")
    cap7 = site.csv("/capacity/?window=7d&format=csv&table=groups")
    cap30 = site.csv("/capacity/?window=30d&format=csv&table=groups")
    corr = site.json("/api/v1/correlations?window=7d")
    scenarios = [checks.Scenario.from_api(s) for s in emulator.scenarios()["value"]]
    findings = corr.get("findings") or []
    verdict = checks.figures_verdict(
        latency_total=int(latency["counts"]["total"]), overview_jobs=checks.overview_total(overview),
        jobs_h_7d=checks.fleet_jobs_per_hour(cap7), jobs_h_30d=checks.fleet_jobs_per_hour(cap30),
        first_finding_worker=findings[0]["worker"] if findings else None, under_spec=checks.under_spec_workers(scenarios))
    verdict["correlations_findings"] = [f"{f['rank']}. {f['worker']} {f['metric']}->{f['target']}" for f in findings[:5]]
    verdict["capacity_per_group"] = {r["group"]: [r["arrivals_mean_per_h"], next(
        (c["arrivals_mean_per_h"] for c in cap30 if c["group"] == r["group"]), None)] for r in cap7}
    return verdict


def run(opts: argparse.Namespace) -> dict[str, Any]:
    var = Path(tempfile.mkdtemp(prefix="hrw-demo-run-"))
    port = opts.port or free_port()
    sink = BodySink()
    report: dict[str, Any] = {"command": " ".join(sys.argv), "var_dir": str(var), "port": port,
                              "load_average_start": load_average(), "failures": []}
    fail = report["failures"].append
    print(f"demo_run: var dir {var}, port {port}, SMTP sink 127.0.0.1:{sink.port}; load average {load_average()}", flush=True)
    demo = Demo(var, port, sink.port)
    seen: dict[int, int] = {}
    try:
        demo.url_seen.wait(timeout=opts.url_timeout * 60)
        if demo.url is None:
            fail(f"the demo printed no URL within {opts.url_timeout:g} min (alive: {demo.alive()}); last lines: {demo.lines[-5:]}")
            return report
        report["seconds_to_url"] = round(demo.url_seconds or 0, 1)
        report["cpu_seconds_to_url"] = round(demo.url_cpu_seconds or 0, 1)
        report["demo_steps"] = [line.strip() for line in demo.lines if line.startswith("  ") or "History ready" in line]
        report["load_average_at_url"] = load_average()
        run_start = datetime.now(UTC)
        print(f"demo_run: URL {demo.url} after {report['seconds_to_url']} s (load average {load_average()})", flush=True)
        if report["seconds_to_url"] > 120:
            fail(f"time to URL {report['seconds_to_url']} s is over 2 minutes (issue 12, Deliver item 4)")
        seen.update(descendants(demo.proc.pid))
        emulator = Emulator(var / "emulator.json")
        site = Site(demo.url, var)
        figures = report["figures"] = check_figures(site, emulator)
        for key, what in (("latency_ok", "latency 24 h jobs vs the overview's 24 h total differ by more than 5 %"),
                          ("capacity_ok", "capacity jobs/h 7 d vs 30 d differ by 10 % or more"),
                          ("correlations_ok", "correlations 7 d do not rank the under-spec machine first")):
            if not figures[key]:
                fail(what)
        print("demo_run: figures right after the URL: " + json.dumps({k: v for k, v in figures.items() if k != "capacity_per_group"}),
              flush=True)
        ends = time.monotonic() + opts.minutes * 60
        print(f"demo_run: running for {opts.minutes:g} min (until {datetime.now(UTC) + timedelta(minutes=opts.minutes):%H:%M:%S} UTC)",
              flush=True)
        while time.monotonic() < ends and demo.alive():
            time.sleep(min(30.0, max(0.0, ends - time.monotonic())))  # the run's length, not synchronisation
            seen.update(descendants(demo.proc.pid))
        if not demo.alive():
            fail(f"the demo exited during the run with code {demo.proc.returncode}; last lines: {demo.lines[-5:]}")
        report["load_average_end"] = load_average()
        try:
            view = emulator.scenarios()
        except OSError as exc:  # requests' errors are OSErrors: the emulator is gone with the demo
            fail(f"cannot read the emulator's scenarios at the end: {exc}")
            report["emails"] = [m.subject for m in sink.mails()]
            return report
        run_end = datetime.now(UTC)
        scenarios = [checks.Scenario.from_api(s) for s in view["value"]]
        judgement = checks.judge(scenarios, sink.mails(), run_start=run_start, run_end=run_end,
                                 detection=timedelta(minutes=opts.detection_minutes),
                                 tolerance=timedelta(seconds=START_TOLERANCE_SECONDS), titles=checks.diagnosis_titles())
        report.update({"run_start": run_start.isoformat(), "run_end": run_end.isoformat(), "minutes": opts.minutes,
                       "emails": [m.subject for m in sink.mails()],
                       "mails": [vars(m) for m in sink.mails()], "scenarios": view["value"], "judgement": judgement.as_dict()})
        if judgement.blind:
            fail(f"{len(judgement.blind)} BLIND email(s) while the emulator injects no fault")
        if judgement.false_pages:
            fail(f"{len(judgement.false_pages)} false page(s)")
        for v in judgement.judged:
            if not v.ok:
                fail(f"scenario {v.scenario['id']} {v.scenario['kind']} on {v.scenario['target']}: once={v.once} "
                     f"cause={v.cause_ok} start={v.start_ok}")
        if not judgement.judged:
            fail("no scheduled scenario began early enough in the run to be judged")
    finally:
        code = demo.stop()
        report["demo_exit_code"] = code
        seen.update({demo.proc.pid: demo.proc.pid})
        left = leftovers(set(seen), {g for g in seen.values() if g != os.getpgrp()})
        report["processes_left"] = left
        if code is None:
            fail("the demo did not exit within 60 s of SIGINT")
        if left:
            fail(f"processes left after the demo stopped: {left}")
        sink.close()
    return report


def show(report: dict[str, Any]) -> None:
    j = report.get("judgement") or {}
    print("\n=== demo run ===")
    print(f"command: {report['command']}; var dir {report['var_dir']}")
    print(f"time to URL: {report.get('seconds_to_url')} s wall, {report.get('cpu_seconds_to_url')} CPU-s of the demo's processes "
          f"({'; '.join(report.get('demo_steps', []))}); load average at start {report['load_average_start']}, "
          f"at URL {report.get('load_average_at_url')}, at end {report.get('load_average_end')}")
    for key, value in (report.get("figures") or {}).items():
        print(f"  {key}: {value}")
    print("NOTE: in real time the default scenarios start 20 min after the emulator starts (outbound_blocked at +20 min "
          "for 30 min, tls_intercepted at +60, flapping at +100, site_down at +140, then every 4 h), so a 30-minute run "
          "sees one scheduled scenario begin.")
    for v in j.get("judged", []):
        s = v["scenario"]
        print(f"  JUDGED {s['kind']} on {s['target']} ({', '.join(s['workers'])}) at {s['start']} (+{s['start_minutes_into_run']} min): "
              f"pages={len(v['pages'])} once={v['once']} cause_ok={v['cause_ok']} primary={v['cause_primary']} "
              f"named={v['causes_named']} start printed {v['start_printed']} (delta {v['start_delta_seconds']} s) "
              f"ok={v['ok']} {'; '.join(v['notes'])}")
        for p in v["pages"]:
            print(f"      page: {p}")
    upcoming = [s for s in j.get("excluded", []) if s["reason"].startswith("has not begun")]
    for s in j.get("excluded", []):
        if s["reason"] != "ended before the run (history)" and s not in upcoming:
            print(f"  excluded {s['kind']} on {s['target']} at {s['start']} (+{s['start_minutes_into_run']} min): {s['reason']}")
    if upcoming:
        s = upcoming[0]
        print(f"  not begun by the end: {len(upcoming)} scenarios; the next: {s['kind']} on {s['target']} at {s['start']} "
              f"(+{s['start_minutes_into_run']} min)")
    history = sum(1 for s in j.get("excluded", []) if s["reason"] == "ended before the run (history)")
    print(f"  historical scenarios (ended before the run): {history}")
    print(f"BLIND emails: {len(j.get('blind', []))}; false pages: {len(j.get('false_pages', []))}; "
          f"pages for scenarios ongoing since before the run: {len(j.get('ongoing_pages', []))}; other emails: {len(j.get('other_emails', []))}")
    for key in ("blind", "false_pages", "ongoing_pages", "other_emails"):
        for subject in j.get(key, []):
            print(f"  {key}: {subject}")
    print(f"demo exit code {report.get('demo_exit_code')}; processes left: {report.get('processes_left')}")
    print("FAILURES:" if report["failures"] else "RESULT: pass")
    for f in report["failures"]:
        print(f"  - {f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.demo_run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=30.0, help="how long to keep the demo running after the URL")
    parser.add_argument("--port", type=int, default=0, help="the demo's web port (default: a free one)")
    parser.add_argument("--json", type=Path, help="also write the report here")
    parser.add_argument("--url-timeout", type=float, default=15.0, help="minutes to wait for the URL")
    parser.add_argument("--detection-minutes", type=float, default=DETECTION_MINUTES,
                        help="a scenario is judged only if it began at least this long before the emails are read")
    opts = parser.parse_args(argv)
    report = run(opts)
    show(report)
    if opts.json:
        opts.json.write_text(json.dumps(report, indent=2, default=str))
    return 1 if report["failures"] else 0
