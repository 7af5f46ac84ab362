"""``manage.py poll --once``: every poll of every enabled account, in the foreground.

The same services the Celery tasks call (never a second copy of the logic): groups, each group's
workers, jobs, Log Analytics, the HybridWorkerPing metric, then a status refresh. Prints what each
poll ingested; exits non-zero when any poll failed, with the reason. An account whose ping has never
been read (the metric refused or not available to us) prints "ping: not available" and is not a
failure, as the pages and the blind alert treat it.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from workers.azure.errors import AzureTransientError
from workers.fleet.accounts import ensure_account_from_env
from workers.fleet.ping import poll_pings
from workers.fleet.polling import PollOutcome, poll_account_once
from workers.fleet.selectors.poll_evidence import ping_ever_read
from workers.fleet.status import refresh_statuses
from workers.models import AutomationAccount


class Command(BaseCommand):
    help = (
        "Poll every enabled Automation account once (groups, workers, jobs, Log Analytics, HybridWorkerPing) "
        "and refresh statuses."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--once", action="store_true", required=True, help="Run every poll once and exit (required).")
        parser.add_argument("--account", help="Only the account with this name.")

    def handle(self, *args: Any, **options: Any) -> None:
        ensure_account_from_env()
        queryset = AutomationAccount.objects.filter(enabled=True)
        if options["account"]:
            queryset = queryset.filter(name=options["account"])
        accounts = list(queryset)
        if not accounts:
            raise CommandError(
                "No enabled account to poll. Add one with `manage.py add_account --connection-file FILE`, "
                "the admin, or the HRW_SUBSCRIPTION_ID/HRW_RESOURCE_GROUP/HRW_AUTOMATION_ACCOUNT settings."
            )
        failures: list[str] = []
        for account in accounts:
            now = timezone.now()
            self.stdout.write(f"Account {account.name}:")
            worker_polls = {"groups": 0, "rows": 0, "failed": 0}
            for outcome in poll_account_once(account.pk, now=now):
                if outcome.kind == "workers":
                    worker_polls["groups"] += 1
                    worker_polls["rows"] += outcome.rows
                    if outcome.ok:
                        continue
                    worker_polls["failed"] += 1
                scope = f" {outcome.scope}" if outcome.scope else ""
                if outcome.ok:
                    skipped = f" ({outcome.skipped} skipped)" if outcome.skipped else ""
                    self.stdout.write(f"  {outcome.kind:<9}{scope}: {outcome.rows} rows{skipped}")
                else:
                    failures.append(f"{account.name} {outcome.kind}{scope}: {outcome.error}")
                    self.stdout.write(self.style.ERROR(f"  {outcome.kind:<9}{scope}: FAILED: {outcome.error}"))
            self.stdout.write(
                f"  {'workers':<9}: {worker_polls['rows']} rows from {worker_polls['groups']} groups"
                + (f" ({worker_polls['failed']} failed)" if worker_polls["failed"] else "")
            )
            failure = self._ping(account, now)
            if failure:
                failures.append(failure)
            result = refresh_statuses(account.pk, now=now)
            self.stdout.write(f"  {'statuses':<9}: {result.workers} workers judged, {result.changes} changes")
        if failures:
            raise CommandError(f"{len(failures)} poll(s) failed:\n" + "\n".join(failures))
        self.stdout.write(self.style.SUCCESS("All polls succeeded."))

    def _ping(self, account: AutomationAccount, now: datetime) -> str:
        """Read the account's pings; the failure line to report, or "" (also when never available)."""
        try:
            outcome = poll_pings(account.pk, now=now)
        except AzureTransientError as exc:  # recorded by the poll; the Celery task would retry it
            outcome = PollOutcome("ping", "", False, 0, error=f"transient: {exc}")
        if outcome.ok:
            skipped = f" ({outcome.skipped} skipped)" if outcome.skipped else ""
            self.stdout.write(f"  {'ping':<9}: {outcome.rows} rows{skipped}")
            return ""
        if not ping_ever_read(account.pk):
            self.stdout.write(f"  {'ping':<9}: not available ({outcome.error[:200]})")
            return ""
        self.stdout.write(self.style.ERROR(f"  {'ping':<9}: FAILED: {outcome.error}"))
        return f"{account.name} ping: {outcome.error}"
