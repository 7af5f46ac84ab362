"""`python manage.py issue_token NAME --scope read`: create an API/display token and print it once.

A token opens the read API (``Authorization: Bearer``) and the wall (``/wall/?token=``, swapped for
a cookie at once); no other page."""
from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from dashboard.auth import issue_token
from dashboard.models import TokenScope


class Command(BaseCommand):
    help = "Issue a read-only token for the JSON API (Bearer) and the wall (/wall/?token=). Printed once."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name", help="Who or what uses it, e.g. 'noc-wall'.")
        parser.add_argument("--scope", default=TokenScope.READ, choices=TokenScope.values)

    def handle(self, *args: Any, **opts: Any) -> None:
        name = opts["name"].strip()
        if not name:
            raise CommandError("NAME must not be empty")
        token, raw = issue_token(name=name, scope=opts["scope"])
        self.stderr.write(f"Issued {token.scope} token {token.name!r} (id {token.pk}, prefix {token.prefix}). "
                          "It is shown only now; revoke it in the admin.")
        self.stdout.write(raw)
