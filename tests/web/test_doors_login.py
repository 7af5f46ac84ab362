"""Login throttling (django-axes) through the real login form: AXES_FAILURE_LIMIT wrong passwords for
one username from one address lock that pair out, the right password included, until the cool-off
(AXES_COOLOFF_MINUTES, frozen clock) has passed."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.conf import settings
from django.test import Client

pytestmark = pytest.mark.django_db
T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
GOOD = "pw-not-secret-123"


@pytest.fixture
def clock():
    with time_machine.travel(T0, tick=False) as traveller:
        yield traveller


def login(client: Client, password: str, *, username: str = "alice", ip: str = "203.0.113.7"):
    return client.post("/login/", {"username": username, "password": password}, REMOTE_ADDR=ip)


def fail_to_the_limit(client: Client, **kwargs) -> None:
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert login(client, "wrong-password", **kwargs).status_code == 200  # the form again, with its error
    assert login(client, "wrong-password", **kwargs).status_code == 429  # the failure that reaches the limit


def test_the_settings_come_from_the_environment_with_safe_defaults():
    assert settings.AXES_ENABLED is True
    assert settings.AXES_FAILURE_LIMIT == 5
    assert settings.AXES_COOLOFF_TIME == timedelta(minutes=15)
    assert settings.AXES_LOCKOUT_PARAMETERS == [["username", "ip_address"]]


def test_it_locks_out_after_the_failure_limit_even_with_the_right_password(client, user, clock):
    fail_to_the_limit(client)

    response = login(client, GOOD)

    assert response.status_code == 429
    body = response.content.decode()
    assert "Too many failed logins" in body and "Traceback" not in body
    assert "sessionid" not in response.cookies
    assert client.get("/").status_code == 302  # still anonymous


def test_the_lockout_page_says_how_long_and_how_to_lift_it(client, user, clock):
    fail_to_the_limit(client)
    body = login(client, GOOD).content.decode()
    assert "0:15:00" in body and "axes_reset_username" in body
    assert '<script' not in body.split("<main", 1)[-1].split("</main>")[0]


def test_the_right_password_works_again_after_the_cool_off(client, user, clock):
    fail_to_the_limit(client)
    clock.shift(timedelta(minutes=14))
    assert login(client, GOOD).status_code == 429  # still locked, and the wait starts again
    clock.shift(timedelta(minutes=2))
    assert login(client, GOOD).status_code == 429  # 16 min after the lock, 2 after the last attempt

    clock.shift(timedelta(minutes=15, seconds=1))
    response = login(client, GOOD)

    assert response.status_code == 302 and response["Location"] == "/"
    assert client.get("/").status_code == 200


def test_four_failures_then_the_right_password_logs_in_and_resets_the_count(client, user, clock):
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        login(client, "wrong-password")
    assert login(client, GOOD).status_code == 302
    client.logout()
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        login(client, "wrong-password")
    assert login(client, GOOD).status_code == 302  # the success reset the count


def test_the_lock_is_per_username_and_address(client, user, django_user_model, clock):
    django_user_model.objects.create_user("bob", password=GOOD)
    fail_to_the_limit(client)

    assert login(Client(), GOOD, ip="198.51.100.9").status_code == 302  # alice from elsewhere
    assert login(Client(), GOOD, username="bob").status_code == 302  # another user from the same address
    assert login(Client(), GOOD).status_code == 429


def test_it_takes_the_client_address_from_the_configured_proxy_header(client, user, clock, settings):
    settings.LOGIN_CLIENT_IP_META = "HTTP_X_FORWARDED_FOR"
    for _ in range(settings.AXES_FAILURE_LIMIT):
        client.post("/login/", {"username": "alice", "password": "nope"}, HTTP_X_FORWARDED_FOR="10.9.9.9, 192.0.2.1")

    # Same proxy peer, another client address: not locked; the locked one (right-most entry) is.
    other = Client().post("/login/", {"username": "alice", "password": GOOD}, HTTP_X_FORWARDED_FOR="192.0.2.2")
    locked = Client().post("/login/", {"username": "alice", "password": GOOD}, HTTP_X_FORWARDED_FOR="spoofed, 192.0.2.1")
    assert other.status_code == 302
    assert locked.status_code == 429
