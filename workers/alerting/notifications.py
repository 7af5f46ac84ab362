"""Queue alert emails: one ``Notification`` row per email, with a unique ``dedupe_key``.

Queuing the same key twice is a no-op, so every caller (the outbox, reminders, the test-email
command) may repeat itself safely; ``workers.alerting.sending`` sends the rows. Recipients are the
group's own list, else ALERT_RECIPIENTS (an account-wide alert goes to both).
"""
from __future__ import annotations

from datetime import datetime

from django.conf import settings

from workers.alerting.content import RenderedEmail
from workers.models import Alert, Notification, WorkerGroup


def queue_email(
    alert: Alert | None, kind: str, key: str, email: RenderedEmail, *, now: datetime, recipients: list[str] | None = None
) -> Notification | None:
    """Store one email to send; None when this key was queued before (idempotent)."""
    if recipients is None:
        recipients = recipients_for(alert)
    note, created = Notification.objects.get_or_create(
        dedupe_key=key,
        defaults={
            "alert": alert,
            "kind": kind,
            "recipients": ",".join(recipients),
            "subject": email.subject,
            "body_text": email.text,
            "body_html": email.html,
            "created_at": now,
            "next_attempt_at": now,
        },
    )
    return note if created else None


def recipients_for(alert: Alert | None) -> list[str]:
    """The group's list (WorkerGroup.alert_recipients) else ALERT_RECIPIENTS; for an account-wide
    alert, ALERT_RECIPIENTS plus every group's list of that account."""
    default = list(settings.ALERT_RECIPIENTS)
    if alert is None:
        return default
    if alert.group is not None:
        own = _split(alert.group.alert_recipients)
        return own or default
    if alert.account_id is not None:
        found = list(default)
        for raw in WorkerGroup.objects.filter(account_id=alert.account_id).values_list("alert_recipients", flat=True):
            for address in _split(raw):
                if address not in found:
                    found.append(address)
        return found
    return default


def _split(raw: str) -> list[str]:
    return [a.strip() for a in (raw or "").replace(";", ",").split(",") if a.strip()]
