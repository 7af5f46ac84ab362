"""``python manage.py send_test_alert --to ADDR``: send one email now, through the configured backend,
and say clearly whether it worked (checks EMAIL_HOST/PORT/TLS/credentials before an outage does)."""
from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import EmailMultiAlternatives, get_connection
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.core.validators import validate_email
from django.utils import timezone

from workers.alerting.content import render_test


class Command(BaseCommand):
    help = "Send a test alert email to check the SMTP settings."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--to", required=True, action="append", help="Recipient (repeatable).")

    def handle(self, *args: Any, **options: Any) -> None:
        recipients: list[str] = options["to"]
        for address in recipients:
            try:
                validate_email(address)
            except ValidationError:
                raise CommandError(f"{address!r} is not an email address") from None
        where = self._where()
        email = render_test(now=timezone.now())
        message = EmailMultiAlternatives(
            email.subject, email.text, settings.DEFAULT_FROM_EMAIL, recipients, connection=get_connection(fail_silently=False)
        )
        message.attach_alternative(email.html, "text/html")
        try:
            message.send()
        except Exception as exc:  # noqa: BLE001 - every failure is reported, with where we tried
            raise CommandError(f"FAILED to send via {where}: {type(exc).__name__}: {exc}") from None
        self.stdout.write(self.style.SUCCESS(f"OK: test alert sent via {where} to {', '.join(recipients)}"))

    @staticmethod
    def _where() -> str:
        if settings.EMAIL_BACKEND.endswith("smtp.EmailBackend"):
            security = "SSL" if settings.EMAIL_USE_SSL else "STARTTLS" if settings.EMAIL_USE_TLS else "no TLS"
            auth = f", user {settings.EMAIL_HOST_USER}" if settings.EMAIL_HOST_USER else ""
            return f"SMTP {settings.EMAIL_HOST}:{settings.EMAIL_PORT} ({security}{auth})"
        if settings.EMAIL_BACKEND.endswith("filebased.EmailBackend"):
            return f"the file folder {settings.EMAIL_FILE_PATH} (EMAIL_HOST is not set)"
        return settings.EMAIL_BACKEND
