"""``python -m tests.bench alert-latency``: end-to-end outage-to-email latency, in real time.

Starts the emulator on a real-time clock and an SMTP server (aiosmtpd) on loopback, then runs the
periodic tasks in-process on their real beat schedule (worker poll + status refresh every
POLL_WORKERS_SECONDS, Log Analytics poll every POLL_LOGS_SECONDS, status refresh every
STATUS_REFRESH_SECONDS, the alert outbox every ALERT_PROCESS_SECONDS followed by an immediate send,
the sender every ALERT_SEND_SECONDS), through the same services the Celery tasks call. It starts a
scenario (agent_stopped by default) on one worker and measures the time until the email reaches
the SMTP server, next to the target: grace period + one poll interval + 15 s.

It writes an emulator account and alerts to the configured database, so it refuses to run on a
database that already has accounts: run it as ``HRW_VAR_DIR=$(mktemp -d) python manage.py
measure_alert_latency`` (a fresh SQLite database, migrated here).
"""
from __future__ import annotations

import logging
import socket
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.test.utils import override_settings
from django.utils import timezone

AZURE_HEARTBEAT_ALERT = "about 6-9 min (360-540 s): a log search alert on a missing Heartbeat"


@dataclass
class Job:
    name: str
    interval: float
    run: Callable[[], None]
    due: float = 0.0


class _Handler:
    def __init__(self, marker: str, received: threading.Event, box: list[tuple[float, str]]) -> None:
        self.marker = marker
        self.received = received
        self.box = box

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd hook
        import email
        import email.policy

        at = time.monotonic()
        message = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        subject = " ".join(str(message["Subject"]).split())
        self.box.append((at, subject))
        if self.marker in subject:
            self.received.set()
        return "250 OK"


class Command(BaseCommand):
    help = "Measure outage-to-email latency end to end (emulator in real time + SMTP on loopback)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--scenario", default="agent_stopped", choices=["agent_stopped", "outbound_blocked", "tls_intercepted", "site_down"])
        parser.add_argument("--grace", type=int, default=None, help="Group grace period override (seconds) for the probe's group.")
        parser.add_argument("--timeout", type=int, default=1200, help="Give up after this many seconds (default 1200).")
        parser.add_argument("--workers", type=int, default=8)
        parser.add_argument("--seed", type=int, default=11)

    def handle(self, *args: Any, **options: Any) -> None:
        from aiosmtpd.controller import Controller

        from workers.models import AutomationAccount

        call_command("migrate", verbosity=0, interactive=False)
        if AutomationAccount.objects.exists():
            raise CommandError(
                "this database already has Automation accounts; run the measurement on a scratch database: "
                "HRW_VAR_DIR=$(mktemp -d) python -m tests.bench alert-latency"
            )
        logging.getLogger("mail.log").setLevel(logging.WARNING)
        received = threading.Event()
        box: list[tuple[float, str]] = []
        handler = _Handler("", received, box)
        with socket.socket() as probe:  # an ephemeral port for the SMTP server
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        controller = Controller(handler, hostname="127.0.0.1", port=port)
        controller.start()
        try:
            with tempfile.TemporaryDirectory(prefix="hrw-latency-") as tmp, override_settings(
                EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend",
                EMAIL_HOST="127.0.0.1",
                EMAIL_PORT=port,
                EMAIL_USE_TLS=False,
                EMAIL_USE_SSL=False,
                EMAIL_HOST_USER="",
                EMAIL_HOST_PASSWORD="",
                ALERT_RECIPIENTS=["latency-probe@example.com"],
            ):
                self._measure(Path(tmp), handler, received, box, port, options)
        finally:
            controller.stop()

    def _measure(self, tmp: Path, handler: _Handler, received: threading.Event, box: list[tuple[float, str]], port: int, options: dict[str, Any]) -> None:
        from workers.alerting.outbox import process_outbox
        from workers.alerting.sending import send_pending
        from workers.emulator.testing import running_emulator
        from workers.fleet import polling
        from workers.fleet.accounts import add_account_from_connection_file
        from workers.fleet.status import refresh_statuses
        from workers.models import HybridWorker, WorkerGroup
        from workers.rules.signals import Thresholds

        with running_emulator(tmpdir=tmp, seed=options["seed"], groups=3, workers=options["workers"], history_days=1 / 24,
                              realtime=True, scenarios=False) as emu:
            account, _ = add_account_from_connection_file(emu.connection_file, name="latency-probe")
            self.stdout.write(f"emulator {emu.url} (real time), SMTP 127.0.0.1:{port}, database {settings.DATABASES['default']['NAME']}")

            def poll_workers() -> None:
                polling.poll_groups(account.pk)
                for group_id in WorkerGroup.objects.filter(account=account, removed_at__isnull=True).values_list("pk", flat=True):
                    polling.poll_workers(account.pk, group_id)
                    refresh_statuses(account.pk, group_id=group_id)

            def poll_logs() -> None:
                polling.poll_logs(account.pk)
                refresh_statuses(account.pk)

            def outbox() -> None:
                if process_outbox(now=timezone.now()).queued:
                    send_pending(now=timezone.now())

            jobs = [
                Job("workers", settings.POLL_WORKERS_SECONDS, poll_workers),
                Job("logs", settings.POLL_LOGS_SECONDS, poll_logs),
                Job("refresh", getattr(settings, "STATUS_REFRESH_SECONDS", 15), lambda: refresh_statuses(account.pk) and None),
                Job("outbox", settings.ALERT_PROCESS_SECONDS, outbox),
                Job("send", settings.ALERT_SEND_SECONDS, lambda: send_pending(now=timezone.now()) and None),
            ]

            def run_until(done: Callable[[], bool], deadline: float) -> bool:
                while time.monotonic() < deadline:
                    now = time.monotonic()
                    for job in jobs:
                        if job.due <= now:
                            job.run()
                            job.due = now + job.interval
                    if done():
                        return True
                    next_due = min(job.due for job in jobs)
                    # The beat's own sleep until the next due entry (or until the email arrives).
                    received.wait(timeout=max(0.0, min(next_due - time.monotonic(), 1.0)))
                return done()

            self.stdout.write("settling: polling until every worker of the probe group is online ...")
            if not run_until(lambda: self._victim() is not None, time.monotonic() + 300):
                raise CommandError("no worker came online within 5 min; is the emulator healthy?")
            victim = self._victim()
            assert victim is not None
            group = victim.group
            if options["grace"] is not None:
                WorkerGroup.objects.filter(pk=group.pk).update(grace_seconds=options["grace"])
                group.refresh_from_db()
                run_until(lambda: HybridWorker.objects.get(pk=victim.pk).status == "online", time.monotonic() + 300)
            thresholds = Thresholds.from_settings().with_grace(group.grace_seconds)
            victim.refresh_from_db()
            has_heartbeat = victim.last_heartbeat_at is not None
            # The grace that decides "down": every signal silent, except for a blocked outbound 443,
            # which is down once Automation alone is past its grace (heartbeats continue).
            every_signal = has_heartbeat and options["scenario"] != "outbound_blocked"
            grace = max(thresholds.lastseen_offline, thresholds.heartbeat_offline) if every_signal else thresholds.lastseen_offline
            target = grace + settings.POLL_WORKERS_SECONDS + 15
            target_name = group.name if options["scenario"] == "site_down" else victim.name
            handler.marker = target_name if options["scenario"] == "site_down" else victim.name
            scenario = emu.start_scenario(options["scenario"], target_name, max(30, options["timeout"] / 60 + 5))
            started = time.monotonic()
            self.stdout.write(f"{scenario.kind} on {target_name} started at {datetime.now(UTC):%H:%M:%S} UTC; waiting for the email ...")
            arrived = run_until(received.is_set, started + options["timeout"])
            if not arrived:
                raise CommandError(f"no alert email within {options['timeout']} s (emails seen: {[s for _, s in box]})")
            at, subject = next((a, s) for a, s in box if handler.marker in s)
            latency = at - started
            verdict = "MET" if latency <= target else "MISSED"
            self.stdout.write(f"email received after {latency:.1f} s: {subject}")
            self.stdout.write(
                f"target: grace {grace:.0f} s ("
                + (f"every signal silent: Automation {thresholds.lastseen_offline:.0f} s, Heartbeat {thresholds.heartbeat_offline:.0f} s"
                   if every_signal else f"Automation {thresholds.lastseen_offline:.0f} s")
                + f") + one poll interval {settings.POLL_WORKERS_SECONDS} s + 15 s = {target:.0f} s -> {verdict}"
            )
            self.stdout.write(f"Azure's own answer: {AZURE_HEARTBEAT_ALERT}.")
            polling.close_clients()

    @staticmethod
    def _victim() -> Any:
        """An online worker of the largest group (so the group keeps other members)."""
        from django.db.models import Count

        from workers.models import WorkerGroup

        group = WorkerGroup.objects.annotate(n=Count("workers")).order_by("-n", "name").first()
        if group is None:
            return None
        return group.workers.filter(status="online").select_related("group").order_by("name").first()
