"""The alerts page: lists, filters, acknowledgement, maintenance forms, failures and email files."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from tests.alerting.factories import T0, go, make_account, make_fleet, make_group, ok_poll
from workers.alerting.content import RenderedEmail
from workers.alerting.notifications import queue_email
from workers.alerting.outbox import process_outbox
from workers.models import Alert, MaintenanceWindow, Notification, NotificationStatus

pytestmark = pytest.mark.django_db
URL = "/alerts/"


@pytest.fixture
def ops(client, django_user_model):
    from dashboard.roles import set_role

    user = django_user_model.objects.create_user("ops", password="x" * 12)
    set_role(user, "operator")  # acknowledges, edits windows (tests/web/test_doors_roles.py: a viewer cannot)
    client.force_login(user)
    return user


@pytest.fixture
def down_alert():
    account, _, (w1, _, _) = make_fleet()
    ok_poll(account, T0)
    go(w1, "offline", T0)
    process_outbox(now=T0)
    ok_poll(account, T0 + timedelta(seconds=30))
    process_outbox(now=T0 + timedelta(seconds=30))
    return Alert.objects.get()


def test_it_redirects_anonymous_visitors_to_login(client):
    response = client.get(URL)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_it_explains_the_empty_state(client, ops):
    response = client.get(URL)
    assert response.status_code == 200
    assert "No open alert" in response.content.decode()


@override_settings(EMAIL_BACKEND="django.core.mail.backends.filebased.EmailBackend", EMAIL_HOST="")
def test_it_shows_the_mail_folder_and_the_latest_files_when_email_host_is_unset(client, ops, tmp_path, settings):
    settings.EMAIL_FILE_PATH = str(tmp_path)
    (tmp_path / "20261120-120000-1.log").write_text("Subject: DOWN hrw-win-01\n\nbody")
    body = client.get(URL).content.decode()
    assert str(tmp_path) in body
    assert "/alerts/mail/20261120-120000-1.log" in body


@override_settings(EMAIL_BACKEND="django.core.mail.backends.filebased.EmailBackend")
def test_it_previews_an_email_file(client, ops, tmp_path, settings):
    settings.EMAIL_FILE_PATH = str(tmp_path)
    (tmp_path / "a.log").write_text("Subject: DOWN <b>x</b>\n")
    response = client.get("/alerts/mail/a.log")
    assert response.status_code == 200
    assert "DOWN &lt;b&gt;x&lt;/b&gt;" in response.content.decode()


@override_settings(EMAIL_BACKEND="django.core.mail.backends.filebased.EmailBackend")
def test_it_refuses_names_outside_the_mail_folder(client, ops, tmp_path, settings):
    settings.EMAIL_FILE_PATH = str(tmp_path / "mail")
    (tmp_path / "secret.log").write_text("no")
    assert client.get("/alerts/mail/..%2Fsecret.log").status_code == 404
    assert client.get("/alerts/mail/.hidden.log").status_code == 404


def test_it_lists_an_open_alert_with_its_cause(client, ops, down_alert):
    body = client.get(URL).content.decode()
    assert "hrw-win-01" in body
    assert "Machine or Hybrid Worker service down" in body
    assert "Acknowledge" in body


def test_it_acknowledges_an_alert_with_a_post(client, ops, down_alert):
    response = client.post(f"/alerts/{down_alert.pk}/acknowledge/")
    assert response.status_code == 302
    down_alert.refresh_from_db()
    assert down_alert.acknowledged_by == ops
    assert down_alert.next_reminder_at is None


def test_it_refuses_acknowledgement_by_get(client, ops, down_alert):
    assert client.get(f"/alerts/{down_alert.pk}/acknowledge/").status_code == 405


def test_it_refuses_acknowledgement_with_a_read_only_token(client, down_alert):
    from dashboard.auth import issue_token

    _, raw = issue_token(name="wall")
    response = client.post(f"/alerts/{down_alert.pk}/acknowledge/?token={raw}")
    assert response.status_code == 403  # a display token opens only the wall and the read API
    down_alert.refresh_from_db()
    assert down_alert.acknowledged_at is None


def test_it_filters_by_group(client, ops, down_alert):
    other = make_group(down_alert.account, "hrw-empty", 1)
    body = client.get(URL, {"group": other.pk, "window": "24h"}).content.decode()
    assert "No open alert" in body


def test_it_answers_400_for_a_bad_filter(client, ops):
    response = client.get(URL, {"group": "abc", "window": "1y"})
    assert response.status_code == 400
    assert "Fix the filters" in response.content.decode()


def test_it_shows_a_failed_email_with_its_error(client, ops):
    note = queue_email(None, "alert", "k", RenderedEmail("DOWN x", "t", "h"), now=T0, recipients=["a@example.com"])
    Notification.objects.filter(pk=note.pk).update(
        status=NotificationStatus.FAILED, attempts=2, last_error="SMTPConnectError: 421 try later"
    )
    body = client.get(URL).content.decode()
    assert "SMTPConnectError: 421 try later" in body
    assert "1 failed" in body


def test_it_escapes_azure_names(client, ops):
    account = make_account()
    group = make_group(account, "<img src=x onerror=alert(1)>", 2)
    make_group(account, "other", 1)
    go(group.workers.first(), "offline", T0)
    process_outbox(now=T0)
    body = client.get(URL).content.decode()
    assert "<img src=x" not in body
    assert "&lt;img src=x onerror=alert(1)&gt;" in body


def test_it_creates_a_one_off_window_for_a_group(client, ops, down_alert):
    response = client.post(
        "/alerts/maintenance/",
        {"group": down_alert.group_id, "kind": "once", "starts_at": "2026-11-21T01:00", "ends_at": "2026-11-21T03:00", "reason": "patching"},
    )
    assert response.status_code == 302
    window = MaintenanceWindow.objects.get()
    assert (window.group_id, window.starts_at.isoformat(), window.created_by) == (down_alert.group_id, "2026-11-21T01:00:00+00:00", ops)


def test_it_creates_a_weekly_window_for_a_worker_by_name(client, ops, down_alert):
    response = client.post(
        "/alerts/maintenance/",
        {"worker": "HRW-WIN-02", "kind": "weekly", "weekdays": ["1", "3"], "start_time": "02:00", "duration_minutes": "90", "reason": "patch Tuesday"},
    )
    assert response.status_code == 302
    window = MaintenanceWindow.objects.get()
    assert (window.worker.name, window.weekdays, window.duration_minutes) == ("hrw-win-02", "1,3", 90)


def test_it_explains_a_window_with_two_targets(client, ops, down_alert):
    response = client.post(
        "/alerts/maintenance/",
        {"group": down_alert.group_id, "worker": "hrw-win-02", "kind": "once", "starts_at": "2026-11-21T01:00", "ends_at": "2026-11-21T03:00", "reason": "x"},
    )
    assert response.status_code == 400
    assert "Choose exactly one target" in response.content.decode()
    assert not MaintenanceWindow.objects.exists()


def test_it_explains_an_end_before_the_start(client, ops, down_alert):
    response = client.post(
        "/alerts/maintenance/",
        {"group": down_alert.group_id, "kind": "once", "starts_at": "2026-11-21T03:00", "ends_at": "2026-11-21T01:00", "reason": "x"},
    )
    assert response.status_code == 400
    assert "The end must be after the start." in response.content.decode()


def test_it_explains_an_unknown_worker_and_garbage_values(client, ops, down_alert):
    response = client.post(
        "/alerts/maintenance/",
        {"worker": "nope", "kind": "weekly", "weekdays": ["9"], "start_time": "25:99", "duration_minutes": "-1", "reason": "x"},
    )
    assert response.status_code == 400
    body = response.content.decode()
    assert "No current worker is named" in body
    assert "Select a valid choice" in body


def test_it_deletes_a_window(client, ops, down_alert):
    from workers.alerting.maintenance import create_maintenance_window

    window = create_maintenance_window(reason="x", group=down_alert.group, starts_at=T0, ends_at=T0 + timedelta(hours=1))
    assert client.post(f"/alerts/maintenance/{window.pk}/delete/").status_code == 302
    assert not MaintenanceWindow.objects.exists()


def test_it_shows_the_text_of_a_queued_email(client, ops, down_alert):
    note = Notification.objects.get()
    body = client.get(f"/alerts/notifications/{note.pk}/").content.decode()
    assert "Start-Service HybridWorkerService" in body


def test_it_uses_the_same_number_of_queries_for_one_or_many_alerts(client, ops):
    account = make_account()
    make_group(account, "other", 1)

    def many(n: int, start: int) -> None:
        group = make_group(account, f"g{start}", n)
        for worker in group.workers.all():
            go(worker, "offline", T0)
        process_outbox(now=T0)

    many(1, 1)
    with CaptureQueriesContext(connection) as one:
        assert client.get(URL).status_code == 200
    for i in range(2, 8):
        many(2, i)
    with CaptureQueriesContext(connection) as lots:
        assert client.get(URL).status_code == 200
    assert len(lots) == len(one)
