"""``manage.py doctor``: what to run on the first day against a real account (or the emulator).

Checks the two role assignments, which jobs ``$filter`` forms the service accepts, what job list
items carry, how often ``lastSeenDateTime`` advances (sampled for ``--sample-minutes``), AMA vs MMA
heartbeats, Perf / InsightsMetrics volume, ``HybridWorkerPing``, and the ARM read budget left. Prints
one line per check and the recommended settings; exits 1 when any check is a blocker. Read-only.
"""
from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from workers.fleet.accounts import ensure_account_from_env
from workers.fleet.doctor import diagnose
from workers.models import AutomationAccount
from workers.rules.doctor import BLOCKER, OK, WARN

MAX_SAMPLE_MINUTES = 60


class Command(BaseCommand):
    help = "Check one Automation account the way the product reads it: permissions, filters, cadence, data, budget."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--account", help="The account with this name (default: the only enabled one).")
        parser.add_argument("--sample-minutes", type=float, default=3.0,
                            help="Minutes to sample lastSeenDateTime of one group (default 3; 0 skips).")
        parser.add_argument("--json", action="store_true", help="Print the report as JSON.")

    def handle(self, *args: Any, **options: Any) -> None:
        minutes = options["sample_minutes"]
        if not 0 <= minutes <= MAX_SAMPLE_MINUTES:
            raise CommandError(f"--sample-minutes must be between 0 and {MAX_SAMPLE_MINUTES}")
        ensure_account_from_env()
        accounts = AutomationAccount.objects.filter(enabled=True).order_by("name")
        if options["account"]:
            accounts = accounts.filter(name=options["account"])
        found = list(accounts[:2])
        if not found:
            raise CommandError(
                "No such enabled account. Add one with `manage.py add_account --connection-file FILE`, the admin, "
                "or the HRW_SUBSCRIPTION_ID/HRW_RESOURCE_GROUP/HRW_AUTOMATION_ACCOUNT settings."
            )
        if len(found) > 1:
            names = ", ".join(accounts.values_list("name", flat=True))
            raise CommandError(f"Several accounts ({names}): choose one with --account NAME")
        account = found[0]
        if not options["json"]:
            sampling = f", sampling lastSeenDateTime for {minutes:g} min" if minutes else ""
            self.stdout.write(f"Checking account {account.name}{sampling}...")
        report = diagnose(account, now=timezone.now, sample_minutes=minutes)
        if options["json"]:
            self.stdout.write(json.dumps({"account": account.name, **report.as_dict()}, indent=2))
        else:
            styles = {OK: self.style.SUCCESS, WARN: self.style.WARNING, BLOCKER: self.style.ERROR}
            for line in report.lines():
                level = line.split(" ", 1)[0]
                self.stdout.write(styles[level](line) if level in styles else line)
        if report.exit_code:
            raise SystemExit(report.exit_code)
