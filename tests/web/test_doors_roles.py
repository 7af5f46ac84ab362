"""Roles as Django groups: a viewer reads but gets a 403 page on every state-changing POST (and sees
no button for it); an operator succeeds; the groups are made by migrate, idempotently; add_user."""
from __future__ import annotations

import io
from datetime import timedelta

import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.core.management.base import CommandError

from dashboard.models import Role
from dashboard.roles import OPERATOR_PERMISSIONS, ensure_roles, set_role
from tests.alerting.factories import T0, go, make_fleet, ok_poll
from workers.alerting.content import RenderedEmail
from workers.alerting.maintenance import create_maintenance_window
from workers.alerting.notifications import queue_email
from workers.alerting.outbox import process_outbox
from workers.models import Alert, MaintenanceWindow, Notification, NotificationStatus, RunbookThreshold

pytestmark = pytest.mark.django_db
# Pages and API reads that render (or 404) whatever the method: they read, so a POST changes nothing.
READS_ANSWERING_ANY_METHOD = {
    "overview", "group-detail", "worker-detail", "jobs", "alert-notification", "alert-mail-file",
    "correlation", "capacity", "capacity-report", "api-correlations", "wall", "wall-data",
}


@pytest.fixture
def state():
    """One of everything a POST can change: an open alert, a failed email, a window, a threshold."""
    account, group, (w1, _, _) = make_fleet()
    ok_poll(account, T0)
    go(w1, "offline", T0)
    process_outbox(now=T0)
    ok_poll(account, T0 + timedelta(seconds=30))
    process_outbox(now=T0 + timedelta(seconds=30))
    note = queue_email(None, "alert", "k", RenderedEmail("DOWN x", "t", "h"), now=T0, recipients=["a@example.com"])
    Notification.objects.filter(pk=note.pk).update(status=NotificationStatus.FAILED, attempts=8, next_attempt_at=None)
    window = create_maintenance_window(reason="patching", group=group, starts_at=T0, ends_at=T0 + timedelta(hours=1))
    RunbookThreshold.objects.create(runbook="Sync-AD", max_queue_seconds=60, max_run_seconds=60)
    return {"alert": Alert.objects.get(), "note": note, "window": window, "group": group}


def posts(s) -> list[tuple[str, dict]]:
    """Every state-changing POST of the dashboard, with a valid body."""
    return [
        (f"/alerts/{s['alert'].pk}/acknowledge/", {}),
        (f"/alerts/notifications/{s['note'].pk}/retry/", {}),
        ("/alerts/maintenance/", {"group": s["group"].pk, "kind": "once", "starts_at": "2026-11-21T01:00",
                                  "ends_at": "2026-11-21T03:00", "reason": "more patching"}),
        (f"/alerts/maintenance/{s['window'].pk}/delete/", {}),
        ("/timeouts/thresholds/", {"action": "save", "runbook": "Backup-SQL", "max_queue_minutes": "5", "max_run_minutes": "60"}),
        ("/timeouts/thresholds/", {"action": "delete", "runbook": "Sync-AD"}),
    ]


def snapshot() -> tuple:
    alert = Alert.objects.get()
    return (alert.acknowledged_at, tuple(Notification.objects.values_list("status", "next_attempt_at").order_by("pk")),
            tuple(MaintenanceWindow.objects.values_list("reason", flat=True).order_by("pk")),
            tuple(RunbookThreshold.objects.values_list("runbook", flat=True).order_by("runbook")))


def logged_in(client, django_user_model, role: str | None, name: str = "someone"):
    user = django_user_model.objects.create_user(name, password="pw-not-secret-123")
    if role:
        set_role(user, role)
    client.force_login(user)
    return user


def test_migrate_made_the_three_groups_with_their_permissions():
    assert set(Group.objects.values_list("name", flat=True)) >= {"viewer", "operator", "admin"}
    operator = Group.objects.get(name="operator")
    granted = {f"{p.content_type.app_label}.{p.codename}" for p in operator.permissions.select_related("content_type")}
    assert granted == set(OPERATOR_PERMISSIONS)
    assert not Group.objects.get(name="viewer").permissions.exists()
    admin = {f"{p.content_type.app_label}.{p.codename}" for p in Group.objects.get(name="admin").permissions.select_related("content_type")}
    assert set(OPERATOR_PERMISSIONS) | {"auth.add_user", "auth.change_user", "dashboard.change_apitoken",
                                        "axes.delete_accessattempt"} <= admin


def test_making_the_roles_again_changes_nothing_and_keeps_hand_made_grants():
    from django.contrib.auth.models import Permission

    viewer = Group.objects.get(name="viewer")
    extra = Permission.objects.get(codename="view_apitoken")
    viewer.permissions.add(extra)
    before = {g.name: set(g.permissions.values_list("pk", flat=True)) for g in Group.objects.all()}
    ensure_roles()
    call_command("migrate", verbosity=0)
    after = {g.name: set(g.permissions.values_list("pk", flat=True)) for g in Group.objects.all()}
    assert after == before and Group.objects.filter(name="operator").count() == 1


@pytest.mark.parametrize("role", [Role.VIEWER, None])
def test_a_viewer_gets_a_403_page_on_every_post_and_nothing_changes(client, django_user_model, state, role):
    logged_in(client, django_user_model, role)
    client.raise_request_exception = True
    before = snapshot()
    for url, data in posts(state):
        response = client.post(url, data)
        assert response.status_code == 403, url
        assert "Not allowed (403)" in response.content.decode() and "operator role" in response.content.decode()
    assert snapshot() == before


def test_an_operator_succeeds_on_every_post(client, django_user_model, state):
    user = logged_in(client, django_user_model, Role.OPERATOR)
    for url, data in posts(state):
        response = client.post(url, data)
        assert response.status_code == 302, (url, response.status_code)
    alert = Alert.objects.get()
    assert alert.acknowledged_by == user
    assert Notification.objects.get(pk=state["note"].pk).next_attempt_at is not None  # due again
    assert list(MaintenanceWindow.objects.values_list("reason", flat=True)) == ["more patching"]
    assert list(RunbookThreshold.objects.values_list("runbook", flat=True)) == ["Backup-SQL"]


def test_no_other_route_changes_state_for_a_viewer(client, django_user_model, state):
    """Walk every dashboard route (the admin aside): a viewer's POST is refused (403, or 405 where
    the route takes no POST), or it is a read that ignores the method and changes nothing."""
    from tests.web.test_auth_urls import ALL_URLS

    logged_in(client, django_user_model, Role.VIEWER)
    before = snapshot()
    answers = {}
    for url, name, _entry in ALL_URLS:
        if name is None or name.startswith("admin:") or name in {"login", "logout"}:
            continue
        answers[name] = client.post(url, {"x": "1"}).status_code
    assert snapshot() == before
    changed = {name for name, status in answers.items() if status not in (403, 405)}
    # GET-style reads that render whatever the method (no form on them posts).
    assert changed <= READS_ANSWERING_ANY_METHOD, sorted(changed - READS_ANSWERING_ANY_METHOD)
    assert {answers[n] for n in ("alert-acknowledge", "alert-notification-retry", "maintenance-create",
                                 "maintenance-delete", "thresholds")} == {403}


def test_a_viewer_reads_every_page_but_sees_no_button(client, django_user_model, state):
    logged_in(client, django_user_model, Role.VIEWER)
    alerts = client.get("/alerts/").content.decode()
    thresholds = client.get("/timeouts/thresholds/").content.decode()
    for body in (alerts, thresholds):
        forms = [chunk for chunk in body.split("<form")[1:] if 'method="post"' in chunk.split(">")[0]]
        assert all('action="/logout/"' in chunk.split(">")[0] for chunk in forms), forms
    assert "Changing thresholds needs the operator role" in thresholds


def test_an_operator_sees_the_buttons(client, django_user_model, state):
    logged_in(client, django_user_model, Role.OPERATOR)
    alerts = client.get("/alerts/").content.decode()
    thresholds = client.get("/timeouts/thresholds/").content.decode()
    assert ">Acknowledge<" in alerts and ">Retry now<" in alerts and ">Save window<" in alerts and ">Delete<" in alerts
    assert ">Save<" in thresholds and ">Remove<" in thresholds


def test_add_user_creates_a_viewer_and_changes_the_role(django_user_model, monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO("a-long-enough-password\n"))
    out = io.StringIO()
    call_command("add_user", "ann", "--role", "viewer", "--password-stdin", stdout=out)
    ann = django_user_model.objects.get(username="ann")
    assert ann.check_password("a-long-enough-password") and not ann.is_staff
    assert list(ann.groups.values_list("name", flat=True)) == ["viewer"]

    call_command("add_user", "ann", "--role", "admin", stdout=out)
    ann.refresh_from_db()
    assert list(ann.groups.values_list("name", flat=True)) == ["admin"] and ann.is_staff
    assert ann.check_password("a-long-enough-password")  # kept: none was given
    assert ann.has_perm("dashboard.acknowledge_alert") and ann.has_perm("auth.add_user")


def test_add_user_refuses_a_short_password_and_a_new_user_without_one(django_user_model, monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    with pytest.raises(CommandError, match="too short"):
        call_command("add_user", "bob", "--role", "operator", "--password-stdin")
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    with pytest.raises(CommandError):
        call_command("add_user", "bob", "--role", "operator")
    assert not django_user_model.objects.filter(username="bob").exists()


def test_the_demo_user_is_an_admin(tmp_path, django_user_model):
    from dashboard.management.commands.demo import Command

    username, _password = Command()._ensure_login(tmp_path)
    user = django_user_model.objects.get(username=username)
    assert user.is_superuser and list(user.groups.values_list("name", flat=True)) == ["admin"]
    assert (tmp_path / "demo-login.json").stat().st_mode & 0o777 == 0o600
