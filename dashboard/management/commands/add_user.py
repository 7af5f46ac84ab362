"""`python manage.py add_user NAME --role viewer|operator|admin`: create a user (or change one's role).

The password is asked twice on a terminal, or read as one line from standard input with
``--password-stdin`` (for scripts: ``printf '%s\\n' "$PW" | manage.py add_user ann --role viewer
--password-stdin``). An existing user keeps the password unless a new one is given.
"""
from __future__ import annotations

import getpass
import sys
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from dashboard.models import Role
from dashboard.roles import set_role


class Command(BaseCommand):
    help = "Create a user with a role (viewer, operator, admin), or change an existing user's role."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--role", required=True, choices=Role.values)
        parser.add_argument("--email", default="")
        parser.add_argument("--password-stdin", action="store_true", help="read the password from standard input")

    def _password(self, opts: dict[str, Any], *, required: bool) -> str | None:
        if opts["password_stdin"]:
            return sys.stdin.readline().rstrip("\r\n") or None
        if not required or not sys.stdin.isatty():
            if required:
                raise CommandError("no terminal to ask a password on: use --password-stdin")
            return None
        first = getpass.getpass("Password: ")
        if first != getpass.getpass("Password (again): "):
            raise CommandError("the passwords differ")
        return first

    def handle(self, *args: Any, **opts: Any) -> None:
        username = opts["username"].strip()
        if not username:
            raise CommandError("NAME must not be empty")
        user_model = get_user_model()
        user = user_model.objects.filter(username=username).first()
        password = self._password(opts, required=user is None)
        if user is None and not password:
            raise CommandError("a new user needs a password")
        with transaction.atomic():
            created = user is None
            if user is None:
                user = user_model(username=username, email=opts["email"])
            if password:
                try:
                    validate_password(password, user)
                except ValidationError as exc:
                    raise CommandError("; ".join(exc.messages)) from None
                user.set_password(password)
            if opts["email"]:
                user.email = opts["email"]
            user.save()
            set_role(user, opts["role"])
        self.stdout.write(f"{'Created' if created else 'Updated'} {username!r} with the {opts['role']} role.")
