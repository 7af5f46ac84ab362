"""Sending: a real SMTP conversation, failures stored and retried with backoff, never twice."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.test import override_settings

from tests.alerting.factories import T0, WAIT, go, make_fleet, ok_poll
from tests.fixtures.concurrency import run_in_threads
from tests.fixtures.smtp import Mailbox, start_smtp
from workers.alerting.content import RenderedEmail
from workers.alerting.notifications import queue_email
from workers.alerting.outbox import process_outbox
from workers.alerting.sending import backoff, send_pending
from workers.models import Notification, NotificationStatus


def queue_one(key: str = "k1", recipients: list[str] | None = None) -> Notification:
    email = RenderedEmail("DOWN test", "text body", "<p>html body</p>")
    note = queue_email(None, "alert", key, email, now=T0, recipients=recipients or ["oncall@example.com"])
    assert note is not None
    return note


@pytest.mark.django_db
def test_it_queues_a_key_only_once():
    queue_one("same")
    assert queue_email(None, "alert", "same", RenderedEmail("s", "t", "h"), now=T0, recipients=["a@b.c"]) is None


@pytest.mark.django_db
def test_it_sends_over_smtp_and_marks_the_row_sent(mailbox):
    note = queue_one()
    send_pending(now=T0)
    note.refresh_from_db()
    assert (note.status, note.attempts, note.sent_at) == (NotificationStatus.SENT, 1, T0)
    assert mailbox.subjects() == ["DOWN test"]


@pytest.mark.django_db
def test_it_stores_the_error_and_schedules_a_retry_when_smtp_is_down(smtp_settings):
    note = queue_one()
    send_pending(now=T0)
    note.refresh_from_db()
    assert note.status == NotificationStatus.FAILED
    assert "ConnectionRefusedError" in note.last_error
    assert note.next_attempt_at == T0 + backoff(1)


def test_it_doubles_the_backoff_up_to_an_hour():
    assert [backoff(n).total_seconds() for n in (1, 2, 3)] == [30, 60, 120]
    assert backoff(20) == timedelta(hours=1)


@pytest.mark.django_db
def test_it_delivers_late_exactly_once_when_smtp_comes_back(smtp_settings, smtp_port):
    note = queue_one()
    send_pending(now=T0)
    send_pending(now=T0 + timedelta(seconds=10))  # before the backoff: not retried yet
    box = Mailbox("127.0.0.1", smtp_port)
    controller = start_smtp(smtp_port, box)
    try:
        send_pending(now=T0 + timedelta(seconds=29))
        assert box.count() == 0
        send_pending(now=T0 + timedelta(seconds=30))
        send_pending(now=T0 + timedelta(minutes=5))
    finally:
        controller.stop()
    note.refresh_from_db()
    assert (box.subjects(), note.status, note.attempts) == (["DOWN test"], NotificationStatus.SENT, 2)


@pytest.mark.django_db
@override_settings(ALERT_MAX_ATTEMPTS=2)
def test_it_gives_up_after_the_attempt_limit_and_keeps_the_error(smtp_settings):
    note = queue_one()
    send_pending(now=T0)
    send_pending(now=T0 + timedelta(hours=1))
    note.refresh_from_db()
    assert (note.status, note.attempts, note.next_attempt_at) == (NotificationStatus.FAILED, 2, None)
    assert note.last_error


@pytest.mark.django_db
def test_it_fails_permanently_without_recipients(mailbox):
    note = queue_email(None, "alert", "none", RenderedEmail("s", "t", "h"), now=T0, recipients=[])
    send_pending(now=T0)
    note.refresh_from_db()
    assert (note.status, note.next_attempt_at) == (NotificationStatus.FAILED, None)
    assert "no recipients" in note.last_error


@pytest.mark.django_db
def test_it_retries_a_row_whose_sender_died_mid_conversation(mailbox):
    note = queue_one()
    Notification.objects.filter(pk=note.pk).update(status=NotificationStatus.SENDING, claimed_at=T0, attempts=1)
    send_pending(now=T0 + timedelta(minutes=1))
    assert mailbox.count() == 0
    send_pending(now=T0 + timedelta(minutes=5))
    assert mailbox.count() == 1


@pytest.mark.django_db
def test_it_sends_a_test_alert_with_the_command(mailbox, capsys):
    call_command("send_test_alert", "--to", "me@example.com")
    assert mailbox.subjects() == ["TEST hrw-monitor alert email: SMTP settings work"]
    assert mailbox.messages[0]["To"] == "me@example.com"
    assert "OK" in capsys.readouterr().out


@pytest.mark.django_db
def test_it_reports_a_clear_failure_from_the_test_command(smtp_settings, smtp_port):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match=f"127.0.0.1:{smtp_port}"):
        call_command("send_test_alert", "--to", "me@example.com")


@pytest.mark.django_db
def test_it_rejects_a_malformed_address_in_the_test_command(smtp_settings):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="not an email address"):
        call_command("send_test_alert", "--to", "not-an-address")


# --- Concurrency on PostgreSQL: two overlapping beat ticks ---------------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_it_sends_one_email_when_two_beat_ticks_overlap(mailbox):
    account, _, (w1, _, _) = make_fleet()
    ok_poll(account, T0 + WAIT)
    go(w1, "offline", T0)

    def beat() -> None:
        process_outbox(now=T0 + WAIT)
        send_pending(now=T0 + WAIT)

    run_in_threads(beat)
    run_in_threads(beat)
    assert mailbox.count() == 1
    assert Notification.objects.get().attempts == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_it_sends_one_email_when_two_senders_claim_the_same_row(mailbox):
    queue_one()
    run_in_threads(lambda: send_pending(now=T0), n=4)
    assert mailbox.count() == 1
