"""``manage.py azure_emulator``: run the local Azure emulator (Automation, Log Analytics, Entra) over HTTPS.

Prints the URL, writes the connection file (written last, atomically, so a waiting process can use it
as the "ready" signal) and serves until SIGINT or SIGTERM.
"""
from __future__ import annotations

import signal
import threading
from datetime import datetime
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from workers.emulator.server import FAULT_KINDS
from workers.emulator.testing import build_emulator


class Command(BaseCommand):
    help = "Run the local Azure emulator: a simulated Hybrid Runbook Worker fleet behind Azure's HTTPS routes."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--port", type=int, default=0, help="TCP port on 127.0.0.1 (0 = pick a free one).")
        parser.add_argument("--seed", type=int, default=7, help="Simulation seed (same seed, same fleet).")
        parser.add_argument("--groups", type=int, default=8, help="Hybrid worker groups (incl. one System group).")
        parser.add_argument("--workers", type=int, default=60, help="Hybrid workers in total.")
        parser.add_argument("--history-days", type=float, default=1.0, help="Days of history to backfill.")
        parser.add_argument("--page-size", type=int, default=100, help="Items per ARM list page (nextLink paging).")
        parser.add_argument("--request-log", type=Path, help="Append one JSON line per request to this file.")
        parser.add_argument("--connection-file", type=Path,
                            help="Write the client connection JSON here (default: <var dir>/emulator.json).")
        parser.add_argument("--pki-dir", type=Path, help="Where to write the CA (default: next to the connection file).")
        parser.add_argument("--fault-rate", type=float, default=0.0,
                            help=f"Probability of a random fault per ARM/Logs request ({', '.join(FAULT_KINDS)}).")
        parser.add_argument("--retry-after", type=float, default=1.0, help="Retry-After seconds on injected 429s.")
        parser.add_argument("--job-filters", choices=("lenient", "strict"), default="lenient",
                            help="strict: the jobs list answers 400 to lastModifiedTime/runOn filters, as Azure may.")
        parser.add_argument("--arm-bucket", type=int, default=0,
                            help="ARM read token bucket size (Azure: 250); 0 = no throttling (the default).")
        parser.add_argument("--arm-refill", type=float, default=25.0,
                            help="ARM read tokens refilled per second (Azure: 25).")
        parser.add_argument("--no-scenarios", action="store_true", help="No scheduled failure scenarios.")
        parser.add_argument("--manual-clock", action="store_true",
                            help="Freeze the clock; move it with POST /_emulator/clock {\"advance\": seconds}.")
        parser.add_argument("--start", help="Simulation start time, ISO 8601 with offset (default: now).")

    def handle(self, *args: Any, **opts: Any) -> None:
        if opts["groups"] < 1 or opts["workers"] < opts["groups"]:
            raise CommandError("--workers must be at least --groups, and --groups at least 1")
        if opts["page_size"] < 1:
            raise CommandError("--page-size must be at least 1")
        if not 0.0 <= opts["fault_rate"] <= 1.0:
            raise CommandError("--fault-rate must be between 0 and 1")
        if opts["arm_bucket"] < 0 or opts["arm_refill"] <= 0:
            raise CommandError("--arm-bucket must be >= 0 and --arm-refill > 0")
        if opts["history_days"] < 0 or opts["history_days"] > 90:
            raise CommandError("--history-days must be between 0 and 90")
        start = None
        if opts["start"]:
            try:
                start = datetime.fromisoformat(opts["start"])
            except ValueError as exc:
                raise CommandError(f"--start: {exc}") from exc
            if start.tzinfo is None:
                raise CommandError("--start needs a UTC offset, e.g. 2026-11-20T12:00:00+00:00")
        conn_file: Path | None = opts["connection_file"]
        directory = (conn_file.parent if conn_file else Path(settings.VAR_DIR)).resolve()
        pki_dir = opts["pki_dir"] or (conn_file.with_name(conn_file.name + ".pki") if conn_file else directory / "pki")
        final = conn_file or directory / "emulator.json"
        # The connection file is the "ready" signal: write it only once the modes below are applied.
        starting = final.with_name(final.name + ".starting")
        self.stdout.write(f"Simulating {opts['workers']} workers in {opts['groups']} groups, "
                          f"{opts['history_days']} day(s) of history...")
        try:
            handle = build_emulator(
                seed=opts["seed"], groups=opts["groups"], workers=opts["workers"],
                history_days=opts["history_days"], page_size=opts["page_size"], directory=directory,
                realtime=not opts["manual_clock"], scenarios=not opts["no_scenarios"], start=start,
                port=opts["port"], fault_rate=opts["fault_rate"], retry_after=opts["retry_after"],
                request_log=opts["request_log"], log_requests=opts["request_log"] is not None, connection_file=starting,
                pki_dir=pki_dir,
            )
        except OSError as exc:
            raise CommandError(f"cannot start the emulator: {exc}") from exc
        handle.server.set_job_filters(opts["job_filters"])
        handle.server.configure_arm_throttle(opts["arm_bucket"], opts["arm_refill"])
        handle.connection_file = handle.server.write_connection_file(final)
        starting.unlink(missing_ok=True)
        stop = threading.Event()

        def _stop(signum: int, frame: Any) -> None:
            stop.set()

        signal.signal(signal.SIGINT, _stop)
        signal.signal(signal.SIGTERM, _stop)
        self.stdout.write(self.style.SUCCESS(f"Azure emulator listening on {handle.url}"))
        self.stdout.write(f"Connection file: {handle.connection_file}")
        self.stdout.write(f"CA bundle: {handle.ca_bundle}")
        throttle = (f"{opts['arm_bucket']} reads, refilled {opts['arm_refill']:g}/s" if opts["arm_bucket"] else "off")
        self.stdout.write(f"Job filters: {opts['job_filters']}; ARM read throttling: {throttle}")
        self.stdout.flush()
        try:
            while not stop.wait(0.5):
                pass
        finally:
            self.stdout.write("Stopping the emulator...")
            handle.close()
