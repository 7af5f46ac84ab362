"""`python manage.py demo` (what `make demo` runs): the whole product on one machine with nothing but
Python. Migrates SQLite, starts the local Azure emulator with ``--history-days`` of history, registers
it as an account and polls its groups and workers once, so the fleet is on screen within a minute;
the Celery worker then reads the last ``POLL_BACKFILL_HOURS`` of jobs and Log Analytics data.
With ``--full-history`` it first ingests the emulator's whole history in the foreground
(``workers.fleet.backfill``: jobs, utilization, heartbeats, every rollup and the capacity/correlation
snapshot, one progress line per step), so the first page opened covers all of it; that takes about
ten minutes on two cores (mostly 1.2 million one-minute Perf rows), so it is not the default. A
restart on an existing var/ reads only the gap since the stored watermarks. Then one Celery worker,
one beat (kombu's filesystem broker unless REDIS_URL is set) and the web server. Links in alert emails use ``SITE_URL``, which the demo
sets to the address it serves (``--port`` / ``PORT``) unless it is set explicitly.
Ctrl-C stops every process it started.
"""
from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "Run the whole product locally: emulator, Celery worker, beat and web server."

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
        parser.add_argument("--seed", type=int, default=7)
        parser.add_argument("--groups", type=int, default=8)
        parser.add_argument("--workers", type=int, default=60)
        parser.add_argument("--history-days", type=int, default=14)
        parser.add_argument("--no-emulator", action="store_true", help="Poll only the accounts already configured (real Azure).")
        parser.add_argument("--full-history", action="store_true",
                            help="Ingest the emulator's whole history (and build rollups and the capacity snapshot) "
                                 "before printing the URL: about ten minutes on two cores.")

    def handle(self, *args, **opts):
        var = Path(settings.VAR_DIR)
        var.mkdir(parents=True, exist_ok=True)
        self.procs: list[tuple[str, subprocess.Popen]] = []
        signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
        try:
            self._run(var, opts)
        except KeyboardInterrupt:
            self.stdout.write("\nStopping...")
        finally:
            self._stop_all()

    # --- steps -------------------------------------------------------------------------------
    def _run(self, var: Path, opts) -> None:
        # Alert emails need somebody to go to; in the demo they land in var/mail/ (or EMAIL_HOST).
        os.environ.setdefault("ALERT_RECIPIENTS", "oncall@example.com")
        site = use_demo_site_url(opts["port"])
        self.stdout.write("Migrating the database...")
        call_command("migrate", interactive=False, verbosity=0)
        username, password = self._ensure_login(var)

        if not opts["no_emulator"]:
            conn_file = var / "emulator.json"
            conn_file.unlink(missing_ok=True)
            self._spawn(
                "emulator",
                [
                    "azure_emulator", "--port", "0", "--seed", str(opts["seed"]),
                    "--groups", str(opts["groups"]), "--workers", str(opts["workers"]),
                    "--history-days", str(opts["history_days"]),
                    # Large pages: the emulator filters every job it holds for each page it serves,
                    # so 14 days of jobs in pages of 100 cost minutes of its CPU at first start.
                    "--page-size", "1000",
                    "--connection-file", str(conn_file),
                    "--request-log", str(var / "emulator-requests.log"),
                ],
            )
            self._wait_for(conn_file, "the emulator's connection file", timeout=180)
            call_command("add_account", connection_file=str(conn_file), name="Demo fleet (local emulator)")

        # The web server and the Celery worker boot while the first poll or the history backfill runs;
        # beat starts after it, so no routine poll races a backfill.
        celery = [sys.executable, "-m", "celery", "-A", "dashboard"]
        self._spawn(
            "web",
            [sys.executable, "-m", "gunicorn", "dashboard.wsgi:application", "--bind", f"127.0.0.1:{opts['port']}",
             "--workers", "2", "--threads", "4", "--access-logfile", str(var / "web-access.log")],
            manage=False,
        )
        self._spawn("celery-worker", celery + ["worker", "--loglevel", "WARNING", "--concurrency", "2"], manage=False)
        if opts["full_history"] and not opts["no_emulator"]:
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

        url = f"http://127.0.0.1:{opts['port']}/"
        self.stdout.write(self.style.SUCCESS(f"\nHRW monitor is running: {url}"))
        self.stdout.write(f"Log in as {username!r} with password {password!r} (kept in var/demo-login.json)")
        self.stdout.write(f"Emails go to {settings.EMAIL_HOST or settings.EMAIL_FILE_PATH}; their links use {site}")
        if not opts["no_emulator"]:
            self.stdout.write(f"Emulator connection file: {var / 'emulator.json'}; request log: {var / 'emulator-requests.log'}")
        self.stdout.write("Press Ctrl-C to stop everything.\n")
        while True:
            for name, proc in self.procs:
                if proc.poll() is not None:
                    raise CommandError(f"{name} exited with code {proc.returncode}; stopping the demo")
            time.sleep(1)

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

        path = var / "demo-login.json"
        if path.exists():
            data = json.loads(path.read_text())
        else:
            data = {"username": "admin", "password": secrets.token_urlsafe(9)}
            path.write_text(json.dumps(data))
            path.chmod(0o600)
        user_model = get_user_model()
        user = user_model.objects.filter(username=data["username"]).first()
        if user is None:
            user = user_model.objects.create_superuser(data["username"], "admin@localhost", data["password"])
        else:
            user.set_password(data["password"])
            user.save(update_fields=["password"])
        return data["username"], data["password"]

    def _spawn(self, name: str, args: list[str], *, manage: bool = True) -> None:
        cmd = [sys.executable, "manage.py", *args] if manage else args
        proc = subprocess.Popen(cmd, cwd=settings.BASE_DIR, start_new_session=True)
        self.procs.append((name, proc))

    def _wait_for(self, path: Path, what: str, *, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not path.exists():
            for name, proc in self.procs:
                if proc.poll() is not None:
                    raise CommandError(f"{name} exited with code {proc.returncode} before writing {what}")
            if time.monotonic() > deadline:
                raise CommandError(f"timed out after {timeout:.0f} s waiting for {what}")
            time.sleep(0.2)

    def _stop_all(self) -> None:
        for _name, proc in reversed(self.procs):
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + 10
        for _name, proc in self.procs:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        self.stdout.write("All demo processes stopped.")


def use_demo_site_url(port: int) -> str:
    """Point the links in alert emails at the address the demo serves, unless SITE_URL is set.

    Sets the environment (inherited by the Celery worker that sends the emails) and this process's
    settings, and returns the URL.
    """
    site = os.environ.get("SITE_URL") or f"http://127.0.0.1:{port}"
    os.environ["SITE_URL"] = site
    settings.SITE_URL = site
    return site
