"""`python manage.py demo` (what `make demo` runs): the whole product on one machine with nothing but
Python. Migrates SQLite, collects the static files, starts the local Azure emulator with
``--history-days`` of history and registers it as an account. Then it ingests the emulator's whole
history in the foreground (``workers.fleet.backfill``: jobs, utilization (hourly rows summarised in
the workspace beyond the last day, minutes for the last day), heartbeats, every rollup and the
capacity/correlation snapshot, one progress line per step), so the first page opened is complete and
consistent: about two minutes on two cores. ``--quick`` instead polls groups and workers once (the
fleet is on screen in seconds) and leaves the last ``POLL_BACKFILL_HOURS`` to the Celery worker.
A restart on an existing var/ reads only the gap since the stored watermarks. Then one
Celery worker, one beat (kombu's filesystem broker unless REDIS_URL is set) and the web server.
Links in alert emails use ``SITE_URL``, which the demo sets to the address it serves (``--port`` /
``PORT``) unless it is set explicitly.

Each service writes its banners and output to ``var/log/<name>.log`` (emulator, web, celery-worker,
celery-beat), so the URL and the login are the last lines on screen. SIGINT (Ctrl-C) and SIGTERM stop
every process it started, even when SIGINT was ignored at launch (a shell script that starts the demo
with ``&``): the handlers are installed explicitly. Each service runs in its own process group, which
is signalled as a whole, and is asked by the kernel to stop if the demo itself dies (Linux).
"""
from __future__ import annotations

import argparse
import ctypes
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import IO, Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser

SERVICES = ("emulator", "web", "celery-worker", "celery-beat")
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


class Stop(Exception):
    """Raised by the SIGINT/SIGTERM handler to unwind to the clean-up."""


class Command(BaseCommand):
    help = "Run the whole product locally: emulator, Celery worker, beat and web server."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
        parser.add_argument("--seed", type=int, default=7)
        parser.add_argument("--groups", type=int, default=8)
        parser.add_argument("--workers", type=int, default=60)
        parser.add_argument("--history-days", type=float, default=14)
        parser.add_argument("--no-emulator", action="store_true", help="Poll only the accounts already configured (real Azure).")
        parser.add_argument("--quick", action="store_true",
                            help="Skip the history backfill: poll groups and workers once and print the URL at once "
                                 "(the Celery worker then reads the last POLL_BACKFILL_HOURS).")
        parser.add_argument("--full-history", action="store_true", help=argparse.SUPPRESS)  # the default since 2026-12

    def handle(self, *args: Any, **opts: Any) -> None:
        var = Path(settings.VAR_DIR)
        self.logs = var / "log"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.procs: list[tuple[str, subprocess.Popen[bytes]]] = []
        self.log_files: list[IO[Any]] = []
        self._child_setup = _child_setup(os.getpid())
        # Explicitly, for both: a process started with SIGINT ignored (``demo &`` in a script) keeps it
        # ignored, and Python then installs no KeyboardInterrupt handler of its own.
        for signum in STOP_SIGNALS:
            signal.signal(signum, _raise_stop)
        try:
            self._run(var, opts)
        except (Stop, KeyboardInterrupt):
            self.stdout.write("\nStopping...")
        finally:
            self._stop_all()

    # --- steps -------------------------------------------------------------------------------
    def _run(self, var: Path, opts: dict[str, Any]) -> None:
        # Alert emails need somebody to go to; in the demo they land in var/mail/ (or EMAIL_HOST).
        os.environ.setdefault("ALERT_RECIPIENTS", "oncall@example.com")
        site = use_demo_site_url(opts["port"])
        self.stdout.write("Migrating the database...")
        call_command("migrate", interactive=False, verbosity=0)
        self._collect_static()
        username, password = self._ensure_login(var)
        self.stdout.write(f"Service output goes to {self.logs}/ ({', '.join(f'{s}.log' for s in SERVICES)}).")

        if not opts["no_emulator"]:
            conn_file = var / "emulator.json"
            conn_file.unlink(missing_ok=True)
            self._spawn(
                "emulator",
                [
                    "azure_emulator", "--port", "0", "--seed", str(opts["seed"]),
                    "--groups", str(opts["groups"]), "--workers", str(opts["workers"]),
                    "--history-days", f"{opts['history_days']:g}",
                    # Large pages: the emulator filters every job it holds for each page it serves,
                    # so 14 days of jobs in pages of 100 cost minutes of its CPU at first start.
                    "--page-size", "1000",
                    "--connection-file", str(conn_file),
                    "--request-log", str(var / "emulator-requests.log"),
                ],
            )
            self.stdout.write("Starting the Azure emulator...")
            self._wait_for(conn_file, "the emulator's connection file", timeout=180)
            call_command("add_account", connection_file=str(conn_file), name="Demo fleet (local emulator)")

        # The web server and the Celery worker boot while the first poll or the history backfill runs;
        # beat starts after it, so no routine poll races a backfill.
        celery = [sys.executable, "-m", "celery", "-A", "dashboard"]
        self._spawn(
            "web",
            [sys.executable, "-m", "gunicorn", "dashboard.wsgi:application", "--bind", f"127.0.0.1:{opts['port']}",
             "--workers", "2", "--threads", "4", "--access-logfile", str(self.logs / "web-access.log")],
            manage=False,
        )
        self._spawn("celery-worker", celery + ["worker", "--loglevel", "WARNING", "--concurrency", "2"], manage=False)
        if not opts["quick"] and not opts["no_emulator"]:
            self._backfill(timedelta(days=opts["history_days"]))
        else:
            self.stdout.write("First poll (groups and workers), so the fleet is on screen at once...")
            self._first_poll()
        self._spawn(
            "celery-beat",
            celery + ["beat", "--loglevel", "WARNING", "--schedule", str(var / "celerybeat-schedule")],
            manage=False,
        )
        # Jobs and Log Analytics history arrive through the worker; no need to wait for beat's first tick.
        from workers.fleet import tasks

        for name in ("poll_all_jobs", "poll_all_logs", "poll_all_workers"):
            task = getattr(tasks, name, None)
            if task is not None:
                task.delay()

        self.stdout.write(f"Emails go to {settings.EMAIL_HOST or settings.EMAIL_FILE_PATH}; their links use {site}")
        if not opts["no_emulator"]:
            self.stdout.write(f"Emulator connection file: {var / 'emulator.json'}; request log: {var / 'emulator-requests.log'}")
            self.stdout.write("Start a failure: .venv/bin/python manage.py scenario site_down hrw-win-dmz --minutes 20")
        self.stdout.write("Press Ctrl-C to stop everything.")
        # The URL and the login last, so they stay on screen.
        self.stdout.write(self.style.SUCCESS(f"\nHRW monitor is running: http://127.0.0.1:{opts['port']}/"))
        self.stdout.write(f"Log in as {username!r} with password {password!r} (kept in var/demo-login.json)")
        self.stdout.flush()
        while True:
            self._check_children()
            time.sleep(1)  # a signal interrupts the sleep at once (its handler raises)

    def _collect_static(self) -> None:
        """Hashed, compressed static files (dashboard/static_storage.py), unless none changed since the last run."""
        from django.contrib.staticfiles import finders

        manifest = Path(settings.STATIC_ROOT) / "staticfiles.json"
        sources = [storage.path(path) for finder in finders.get_finders() for path, storage in finder.list(None)]
        if manifest.exists() and all(os.stat(p).st_mtime <= manifest.stat().st_mtime for p in sources):
            return
        self.stdout.write("Collecting and compressing the static files (once per change: about 20 s)...")
        call_command("collectstatic", interactive=False, verbosity=0)

    def _first_poll(self) -> None:
        """Groups and workers of every account, in the foreground (seconds); the rest via Celery."""
        from workers.azure.errors import AzureError
        from workers.fleet.polling import poll_groups, poll_workers
        from workers.fleet.status import refresh_statuses
        from workers.models import AutomationAccount

        for account in AutomationAccount.objects.filter(enabled=True):
            try:
                poll_groups(account.pk)
                groups = list(account.groups.filter(removed_at__isnull=True))
                workers = sum(poll_workers(account.pk, g.pk).rows for g in groups)
                refresh_statuses(account.pk)
                self.stdout.write(f"  {account.name}: {len(groups)} groups, {workers} workers")
            except AzureError as exc:
                self.stdout.write(self.style.WARNING(f"  {account.name}: first poll failed ({exc}); the pages say so"))

    def _backfill(self, history: timedelta) -> None:
        """Every account's history in the foreground, one line per step; a restart reads only the gap."""
        from django.utils import timezone

        from workers.fleet.backfill import BackfillStep, backfill_account
        from workers.models import AutomationAccount

        def show(step: BackfillStep) -> None:
            line = f"  {step.line()}"
            self.stdout.write(line if step.ok else self.style.WARNING(line))

        began = time.monotonic()
        for account in AutomationAccount.objects.filter(enabled=True):
            now = timezone.now()
            self.stdout.write(f"Reading {account.name}'s history (up to {history.total_seconds() / 86400:g} days; "
                              "only what is missing on a restart)...")
            backfill_account(account.pk, since=now - history - timedelta(hours=1), now=now, progress=show)
        self.stdout.write(f"History ready in {time.monotonic() - began:.0f} s.")

    def _ensure_login(self, var: Path) -> tuple[str, str]:
        from django.contrib.auth import get_user_model

        from dashboard.models import Role
        from dashboard.roles import set_role

        path = var / "demo-login.json"
        if path.exists():
            path.chmod(0o600)  # one written by an older version may be 0644
            data = json.loads(path.read_text())
        else:
            data = {"username": "admin", "password": secrets.token_urlsafe(9)}
            with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as handle:
                handle.write(json.dumps(data))  # a password: never readable by others, not even briefly
        user_model = get_user_model()
        user = user_model.objects.filter(username=data["username"]).first()
        if user is None:
            user = user_model.objects.create_superuser(data["username"], "admin@localhost", data["password"])
        else:
            user.set_password(data["password"])
            user.save(update_fields=["password"])
        set_role(user, Role.ADMIN)
        return data["username"], data["password"]

    # --- processes ---------------------------------------------------------------------------
    def _spawn(self, name: str, args: list[str], *, manage: bool = True) -> None:
        """Start a service in its own process group, its output in var/log/<name>.log."""
        cmd = [sys.executable, "manage.py", *args] if manage else args
        log = open(self.logs / f"{name}.log", "w", buffering=1)  # closed in _stop_all
        self.log_files.append(log)
        proc = subprocess.Popen(cmd, cwd=settings.BASE_DIR, stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True,
                                preexec_fn=self._child_setup)
        self.procs.append((name, proc))

    def _check_children(self) -> None:
        for name, proc in self.procs:
            if proc.poll() is not None:
                raise CommandError(f"{name} exited with code {proc.returncode}; stopping the demo "
                                   f"(see {self.logs / (name + '.log')})")

    def _wait_for(self, path: Path, what: str, *, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not path.exists():
            self._check_children()
            if time.monotonic() > deadline:
                raise CommandError(f"timed out after {timeout:.0f} s waiting for {what}")
            time.sleep(0.2)

    def _stop_all(self) -> None:
        # A second Ctrl-C must not cut the clean-up short; SIGKILL follows after 10 s anyway.
        for signum in STOP_SIGNALS:
            signal.signal(signum, signal.SIG_IGN)
        for _name, proc in reversed(self.procs):
            _signal_group(proc, signal.SIGTERM)
        deadline = time.monotonic() + 10
        for _name, proc in self.procs:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _signal_group(proc, signal.SIGKILL)
                proc.wait()
        # Whatever a service left behind in its group (e.g. pool processes) goes with it.
        for _name, proc in self.procs:
            _signal_group(proc, signal.SIGKILL)
        for log in self.log_files:
            log.close()
        self.stdout.write("All demo processes stopped.")


def _raise_stop(signum: int, frame: Any) -> None:
    raise Stop(signal.Signals(signum).name)


def _signal_group(proc: subprocess.Popen[bytes], signum: int) -> None:
    try:
        os.killpg(proc.pid, signum)
    except (ProcessLookupError, PermissionError):
        pass


def _child_setup(parent: int) -> Callable[[], None]:
    """In the child before exec: default SIGINT (not the inherited SIG_IGN) and, on Linux, SIGTERM
    when the demo dies, even by SIGKILL; exits at once if the demo is already gone."""
    libc = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None

    def setup() -> None:
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        if libc is not None:
            libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
            if os.getppid() != parent:
                os._exit(1)
    return setup


def use_demo_site_url(port: int) -> str:
    """Point the links in alert emails at the address the demo serves, unless SITE_URL is set.

    Sets the environment (inherited by the Celery worker that sends the emails) and this process's
    settings, and returns the URL.
    """
    site = os.environ.get("SITE_URL") or f"http://127.0.0.1:{port}"
    os.environ["SITE_URL"] = site
    settings.SITE_URL = site
    return site
