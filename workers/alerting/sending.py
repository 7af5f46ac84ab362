"""Sending queued alert emails through Django's email backend (SMTP when EMAIL_HOST is set).

Each ``Notification`` is claimed with a conditional UPDATE on (status, attempts) before the SMTP
conversation, and marked sent right after it, so two senders (two beats, a retried task) never send
the same row twice. A failure is stored on the row (``last_error``, visible on the alerts page) and
retried with exponential backoff until ALERT_MAX_ATTEMPTS; nothing is dropped silently.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection
from django.db.models import F

from workers.models import Notification, NotificationStatus

log = logging.getLogger(__name__)

RETRY_CAP = timedelta(hours=1)


class PermanentSendError(Exception):
    """Retrying cannot help (no recipients configured)."""


@dataclass
class SendResult:
    sent: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)


def backoff(attempts: int) -> timedelta:
    """Delay before attempt ``attempts + 1``: base, 2x, 4x ... capped at one hour."""
    seconds = settings.ALERT_RETRY_BASE_SECONDS * (2 ** max(0, attempts - 1))
    return min(timedelta(seconds=seconds), RETRY_CAP)


def stuck_after() -> timedelta:
    """A row still "sending" after this long lost its sender (killed mid-conversation)."""
    return timedelta(seconds=settings.EMAIL_TIMEOUT * 3 + 60)


def build_message(note: Notification) -> EmailMultiAlternatives:
    recipients = [a.strip() for a in note.recipients.split(",") if a.strip()]
    if not recipients:
        raise PermanentSendError("no recipients: set ALERT_RECIPIENTS or the group's alert recipients")
    message = EmailMultiAlternatives(
        subject=note.subject,
        body=note.body_text,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=recipients,
        connection=get_connection(fail_silently=False),
    )
    if note.body_html:
        message.attach_alternative(note.body_html, "text/html")
    return message


def send_pending(*, now: datetime, limit: int = 200) -> SendResult:
    """Send every notification that is due (new, or failed and due for a retry).

    Safe to run twice or concurrently: a row is sent only by the caller whose claim UPDATE matched.
    Called by the ``send_pending_notifications`` task (beat, and right after alerts are queued).
    """
    _requeue_stuck(now=now)
    result = SendResult()
    due = list(
        Notification.objects.filter(
            status__in=(NotificationStatus.PENDING, NotificationStatus.FAILED), next_attempt_at__lte=now
        ).order_by("next_attempt_at", "pk")[:limit]
    )
    for note in due:
        claimed = Notification.objects.filter(pk=note.pk, status=note.status, attempts=note.attempts).update(
            status=NotificationStatus.SENDING, claimed_at=now, attempts=F("attempts") + 1
        )
        if not claimed:
            continue
        attempts = note.attempts + 1
        try:
            build_message(note).send()
        except PermanentSendError as exc:
            _failed(note.pk, str(exc), retry_at=None)
            result.failed.append(note.pk)
        except Exception as exc:  # noqa: BLE001 - any SMTP/socket error is stored and retried
            retry_at = now + backoff(attempts) if attempts < settings.ALERT_MAX_ATTEMPTS else None
            detail = f"{type(exc).__name__}: {exc}"
            log.warning("alert email %s failed (attempt %s): %s", note.pk, attempts, detail)
            _failed(note.pk, detail, retry_at=retry_at)
            result.failed.append(note.pk)
        else:
            Notification.objects.filter(pk=note.pk).update(
                status=NotificationStatus.SENT, sent_at=now, next_attempt_at=None, last_error=""
            )
            result.sent.append(note.pk)
    return result


def _failed(pk: int, error: str, *, retry_at: datetime | None) -> None:
    Notification.objects.filter(pk=pk).update(
        status=NotificationStatus.FAILED, last_error=error[:2000], next_attempt_at=retry_at
    )


def _requeue_stuck(*, now: datetime) -> None:
    Notification.objects.filter(status=NotificationStatus.SENDING, claimed_at__lt=now - stuck_after()).update(
        status=NotificationStatus.FAILED,
        last_error="the sender stopped during the SMTP conversation; delivery unknown, retrying",
        next_attempt_at=now,
    )


def retry_now(*, notification_id: int, now: datetime) -> bool:
    """Make a failed notification due again (the alerts page's retry button). Repeating is harmless."""
    return (
        Notification.objects.filter(pk=notification_id, status=NotificationStatus.FAILED).update(next_attempt_at=now) > 0
    )
