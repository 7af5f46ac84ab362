"""Display tokens open only the wall and the read API. ``/wall/?token=`` is exchanged for a signed,
HttpOnly cookie and a redirect to the clean URL; every other page (alerts and their recipients, email
bodies, fleet pages) refuses the token with a 403."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import signing
from django.test import Client
from django.utils import timezone

from dashboard.auth import DISPLAY_COOKIE, hash_token
from dashboard.models import ApiToken
from tests.fixtures.web import build_fleet, record_polls

pytestmark = pytest.mark.django_db


@pytest.fixture
def fleet(now):
    fleet = build_fleet(groups=2, workers_per_group=2, now=now)
    record_polls(fleet.account, at=now - timedelta(seconds=20))
    return fleet


def exchange(client: Client, token: str, query: str = "") -> object:
    return client.get(f"/wall/?{query}{'&' if query else ''}token={token}")


def test_the_token_is_swapped_for_a_cookie_and_a_redirect_to_the_clean_url(client, read_token, fleet):
    response = exchange(client, read_token, "theme=light&refresh=30")

    assert response.status_code == 302
    assert response["Location"] == "/wall/?theme=light&refresh=30"
    assert read_token not in response["Location"]
    cookie = response.cookies[DISPLAY_COOKIE]
    assert cookie["httponly"] and cookie["samesite"] == "Lax" and not cookie["secure"]
    assert read_token not in cookie.value  # the signed hash, never the token itself
    assert response["Cache-Control"] == "no-store" and response["Referrer-Policy"] == "no-referrer"


def test_the_cookie_then_opens_the_wall_and_its_feed_without_the_token(client, read_token, fleet):
    exchange(client, read_token)

    page = client.get("/wall/")
    feed = client.get("/api/v1/wall")

    assert page.status_code == 200 and read_token not in page.content.decode()
    assert feed.status_code == 200 and len(feed.json()["groups"]) == 2


def test_the_cookie_opens_the_read_api(client, read_token, fleet):
    exchange(client, read_token)
    assert client.get("/api/v1/groups").status_code == 200
    assert client.get("/api/v1/jobs").status_code == 200


def test_a_bearer_token_still_opens_the_api(client, read_token, fleet):
    assert client.get("/api/v1/wall", HTTP_AUTHORIZATION=f"Bearer {read_token}").status_code == 200


@pytest.mark.parametrize("url", ["/alerts/", "/alerts/notifications/1/", "/alerts/mail/x.log", "/", "/jobs/",
                                 "/latency/", "/timeouts/thresholds/", "/capacity/"])
def test_the_token_is_refused_on_every_other_page_in_the_url_or_the_cookie(client, read_token, fleet, url):
    in_url = client.get(f"{url}?token={read_token}")
    exchange(client, read_token)
    with_cookie = client.get(url)

    for response in (in_url, with_cookie):
        assert response.status_code == 403
        body = response.content.decode()
        assert "only the wall" in body and "oncall@" not in body


def test_the_alerts_page_with_the_cookie_shows_no_recipient(client, read_token, fleet, settings):
    settings.ALERT_RECIPIENTS = ["oncall@example.com"]
    exchange(client, read_token)
    assert "oncall@example.com" not in client.get("/alerts/").content.decode()


def test_a_revoked_token_ends_its_cookie(client, read_token, fleet):
    exchange(client, read_token)
    ApiToken.objects.update(revoked_at=timezone.now())

    assert client.get("/wall/").status_code == 302  # to the login page
    assert client.get("/api/v1/wall").status_code == 401


def test_a_forged_or_foreign_cookie_is_ignored(client, read_token, fleet):
    client.cookies[DISPLAY_COOKIE] = hash_token(read_token)  # unsigned
    assert client.get("/api/v1/wall").status_code == 401
    forged = signing.get_cookie_signer(salt=DISPLAY_COOKIE + "other-salt").sign(hash_token(read_token))
    client.cookies[DISPLAY_COOKIE] = forged
    assert client.get("/api/v1/wall").status_code == 401
    assert client.get("/wall/").status_code == 302


def test_a_bad_token_is_a_401_page_and_sets_no_cookie(client, fleet):
    response = client.get("/wall/?token=hrw_not-a-real-token")
    assert response.status_code == 401 and DISPLAY_COOKIE not in response.cookies


def test_the_cookie_cannot_write(client, read_token, fleet):
    exchange(client, read_token)
    client.handler.enforce_csrf_checks = False
    assert client.post("/api/v1/wall").status_code in (403, 405)
    assert client.post("/timeouts/thresholds/", {"action": "save", "runbook": "X", "max_queue_minutes": "1",
                                                 "max_run_minutes": "1"}).status_code == 403


def test_the_cookie_is_secure_over_https(client, read_token, fleet, settings):
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    response = client.get(f"/wall/?token={read_token}", HTTP_X_FORWARDED_PROTO="https")
    assert response.cookies[DISPLAY_COOKIE]["secure"]


def test_a_logged_in_user_with_a_token_url_also_lands_on_the_clean_url(client_in, read_token, fleet):
    response = client_in.get(f"/wall/?token={read_token}")
    assert response.status_code == 302 and response["Location"] == "/wall/"
    assert client_in.get("/").status_code == 200
