"""The alert tasks through a REAL Redis broker and a REAL Celery worker thread, sending over real
SMTP. Completion is awaited by polling the broker and the database with a deadline (no sleeps)."""
from __future__ import annotations

from datetime import timedelta

import pytest
import redis
from django.utils import timezone

from tests.alerting.factories import go, make_fleet
from tests.fixtures.celery import wait_for
from workers.alerting.tasks import process_alert_outbox, send_alert_reminders, send_pending_notifications
from workers.models import Notification, NotificationStatus, StatusChange

pytestmark = [pytest.mark.redis, pytest.mark.django_db(transaction=True)]


def drained(client: redis.Redis) -> bool:
    """No message waiting and none delivered-but-unacknowledged (tasks ack late: after they ran)."""
    return client.llen("celery") == 0 and client.hlen("unacked") == 0


@pytest.fixture
def down_worker(db):
    _, group, (w1, _, _) = make_fleet()
    go(w1, "offline", timezone.now() - timedelta(seconds=1))
    return group


def test_it_sends_one_email_when_the_outbox_task_runs_twice(celery_worker, mailbox, down_worker):
    process_alert_outbox.delay()
    process_alert_outbox.delay()
    wait_for(lambda: mailbox.count() >= 1 and drained(celery_worker), "the alert email and an idle queue")
    send_pending_notifications.delay()
    wait_for(lambda: drained(celery_worker), "an idle queue")
    assert mailbox.count() == 1
    assert StatusChange.objects.filter(processed_at__isnull=True).count() == 0
    assert Notification.objects.get().status == NotificationStatus.SENT


def test_it_sends_a_queued_email_from_the_send_task(celery_worker, mailbox, down_worker):
    from workers.alerting.outbox import process_outbox

    process_outbox(now=timezone.now())
    send_pending_notifications.delay()
    wait_for(lambda: mailbox.count() == 1, "the email at the SMTP server")
    assert mailbox.subjects()[0].startswith("DOWN hrw-win-01")


def test_it_runs_the_reminder_task_without_duplicates(celery_worker, mailbox, down_worker):
    from workers.alerting.outbox import process_outbox
    from workers.models import Alert

    process_outbox(now=timezone.now())
    Alert.objects.update(next_reminder_at=timezone.now() - timedelta(seconds=1), notified_at=timezone.now())
    send_alert_reminders.delay()
    send_alert_reminders.delay()
    wait_for(lambda: mailbox.count() >= 2 and drained(celery_worker), "the alert and its reminder")
    assert sorted(s.split()[0] for s in mailbox.subjects()) == ["DOWN", "STILL"]
