"""``manage.py add_account --connection-file FILE [--name NAME]``: an account from an emulator connection file.

Stores the file's path, never its secret; running it twice updates the same account.
"""
from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from workers.fleet.accounts import AccountConfigError, add_account_from_connection_file


class Command(BaseCommand):
    help = "Add (or update) an Automation account to poll from a connection file (the emulator's --connection-file)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--connection-file", required=True, help="JSON file with endpoints, ids and credentials.")
        parser.add_argument("--name", help="Display name (default: the file's automation_account).")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            account, created = add_account_from_connection_file(options["connection_file"], options["name"])
        except AccountConfigError as exc:
            raise CommandError(str(exc)) from exc
        verb = "Added" if created else "Updated"
        self.stdout.write(
            self.style.SUCCESS(
                f"{verb} account {account.name!r} ({account.automation_account} in {account.resource_group}; "
                f"ARM {account.arm_endpoint}; workspace {account.workspace_id or 'none'})."
            )
        )
