"""add_account, rollup and poll commands (poll --once against the emulator lives in test_polling_emulator.py)."""
from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from workers.models import AutomationAccount

CONN = {
    "arm_endpoint": "https://127.0.0.1:9443",
    "logs_endpoint": "https://127.0.0.1:9443",
    "authority_host": "https://127.0.0.1:9443",
    "ca_bundle": "ca.pem",
    "tenant_id": "t",
    "client_id": "c",
    "client_secret": "very-secret",
    "subscription_id": "00000000-0000-0000-0000-000000000001",
    "resource_group": "rg-hrw",
    "automation_account": "aa-hrw",
    "workspace_id": "11111111-1111-1111-1111-111111111111",
}


def write_conn(tmp_path, **changes):
    path = tmp_path / "conn.json"
    path.write_text(json.dumps({**CONN, **changes}))
    return path


@pytest.mark.django_db
def test_add_account_creates_an_account_from_a_connection_file(tmp_path):
    path = write_conn(tmp_path)
    out = StringIO()
    call_command("add_account", "--connection-file", str(path), stdout=out)
    account = AutomationAccount.objects.get()
    assert (account.name, account.resource_group, account.workspace_id) == ("aa-hrw", "rg-hrw", CONN["workspace_id"])
    assert account.credential_file == str(path.resolve())
    assert account.ca_bundle == str((tmp_path / "ca.pem").resolve())
    assert "Added account 'aa-hrw'" in out.getvalue()


@pytest.mark.django_db
def test_add_account_never_stores_the_secret(tmp_path):
    call_command("add_account", "--connection-file", str(write_conn(tmp_path)), stdout=StringIO())
    row = AutomationAccount.objects.values().get()
    assert all("very-secret" not in str(v) for v in row.values())


@pytest.mark.django_db
def test_add_account_twice_updates_the_same_account(tmp_path):
    call_command("add_account", "--connection-file", str(write_conn(tmp_path)), "--name", "demo", stdout=StringIO())
    out = StringIO()
    call_command("add_account", "--connection-file", str(write_conn(tmp_path, resource_group="rg2")), "--name", "demo", stdout=out)
    assert list(AutomationAccount.objects.values_list("name", "resource_group")) == [("demo", "rg2")]
    assert "Updated" in out.getvalue()


@pytest.mark.django_db
def test_add_account_rejects_a_missing_file(tmp_path):
    with pytest.raises(CommandError, match="cannot read"):
        call_command("add_account", "--connection-file", str(tmp_path / "nope.json"))


@pytest.mark.django_db
def test_add_account_rejects_a_file_that_is_not_json(tmp_path):
    path = tmp_path / "conn.json"
    path.write_text("{nope")
    with pytest.raises(CommandError, match="not valid JSON"):
        call_command("add_account", "--connection-file", str(path))


@pytest.mark.django_db
def test_add_account_names_the_missing_keys(tmp_path):
    with pytest.raises(CommandError, match="resource_group"):
        call_command("add_account", "--connection-file", str(write_conn(tmp_path, resource_group="")))
    assert AutomationAccount.objects.count() == 0


@pytest.mark.django_db
def test_poll_says_what_to_do_without_an_account():
    with pytest.raises(CommandError, match="add_account"):
        call_command("poll", "--once")


@pytest.mark.django_db
def test_an_account_comes_from_the_environment_settings(settings):
    from workers.fleet.accounts import ensure_account_from_env

    settings.HRW_SUBSCRIPTION_ID = "sub"
    settings.HRW_RESOURCE_GROUP = "rg"
    settings.HRW_AUTOMATION_ACCOUNT = "aa"
    settings.HRW_WORKSPACE_ID = "ws"
    ensure_account_from_env()
    ensure_account_from_env()
    assert list(AutomationAccount.objects.values_list("name", "subscription_id", "workspace_id", "credential_file")) == [
        ("aa", "sub", "ws", "")
    ]


@pytest.mark.django_db
def test_no_account_comes_from_incomplete_environment_settings(settings):
    from workers.fleet.accounts import ensure_account_from_env

    settings.HRW_SUBSCRIPTION_ID = "sub"
    settings.HRW_RESOURCE_GROUP = ""
    assert ensure_account_from_env() is None


@pytest.mark.django_db
def test_rollup_command_reports_its_work():
    out = StringIO()
    call_command("rollup", "--hours", "2", stdout=out)
    assert "utilization: 0 worker-hours over the last 2 h" in out.getvalue()
