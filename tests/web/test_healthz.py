"""/healthz: no login, no secrets; each part ok/error. 200 while the database answers ("degraded",
with the parts listed in ``down``, when the cache, broker or polling is not well); 503 when the
database is unreachable (tests/production/test_database_outage.py)."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import override_settings

from tests.fixtures.web import make_account, record_polls

pytestmark = pytest.mark.django_db

BOGUS_BROKER = "redis://127.0.0.1:1/0"  # nothing listens on port 1


def test_it_is_ok_with_a_reachable_broker_and_a_fresh_poll(client, now):
    record_polls(make_account(), at=now - timedelta(seconds=30))
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok", "database": "ok", "cache": "ok", "broker": "ok", "polling": "ok", "last_poll_age_seconds": 30,
        "max_poll_age_seconds": response.json()["max_poll_age_seconds"], "down": [],
    }


def test_it_names_an_unreachable_broker_and_stays_200(client, now):
    record_polls(make_account(), at=now - timedelta(seconds=30))
    with override_settings(CELERY_BROKER_URL=BOGUS_BROKER, CELERY_BROKER_TRANSPORT_OPTIONS={}):
        response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json()["broker"] == "error"
    assert response.json()["status"] == "degraded" and response.json()["down"] == ["broker"]


def test_it_names_stale_polling_when_the_last_successful_poll_is_too_old(client, now, settings):
    settings.HEALTHZ_MAX_POLL_AGE_SECONDS = 300
    record_polls(make_account(), at=now - timedelta(seconds=301))
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json()["last_poll_age_seconds"] == 301
    assert response.json()["polling"] == "stale" and response.json()["down"] == ["polling"]


def test_it_ignores_failed_polls_when_computing_the_age(client, now, settings):
    settings.HEALTHZ_MAX_POLL_AGE_SECONDS = 300
    account = make_account()
    record_polls(account, at=now - timedelta(seconds=400))
    record_polls(account, at=now - timedelta(seconds=5), ok=False, error="AzureError: 403")
    response = client.get("/healthz")
    assert response.json()["polling"] == "stale" and response.json()["last_poll_age_seconds"] == 400


def test_it_says_never_before_any_poll_succeeded(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json()["last_poll_age_seconds"] is None
    assert response.json()["polling"] == "never" and response.json()["status"] == "degraded"


def test_it_reveals_no_secrets_or_errors(client, now, settings):
    record_polls(make_account(), at=now - timedelta(seconds=5), ok=False, error="token https://secret.example/x")
    with override_settings(CELERY_BROKER_URL="redis://:hunter2@127.0.0.1:1/0", CELERY_BROKER_TRANSPORT_OPTIONS={}):
        body = client.get("/healthz").content.decode()
    assert "hunter2" not in body and "secret.example" not in body and settings.SECRET_KEY not in body


def test_it_uses_the_default_threshold_from_poll_intervals(client, settings):
    settings.STALE_AFTER_INTERVALS = 3
    settings.POLL_WORKERS_SECONDS, settings.POLL_JOBS_SECONDS, settings.POLL_LOGS_SECONDS = 30, 60, 45
    assert client.get("/healthz").json()["max_poll_age_seconds"] == 180


@pytest.mark.redis
def test_it_is_ok_with_a_real_redis_broker(client, now, redis_url):
    record_polls(make_account(), at=now - timedelta(seconds=10))
    with override_settings(CELERY_BROKER_URL=redis_url, CELERY_BROKER_TRANSPORT_OPTIONS={}):
        response = client.get("/healthz")
    assert response.status_code == 200 and response.json()["broker"] == "ok"


def test_it_says_stale_when_one_account_stopped_polling(client, now, settings):
    settings.HEALTHZ_MAX_POLL_AGE_SECONDS = 300
    record_polls(make_account("a"), at=now - timedelta(seconds=10))
    record_polls(make_account("b"), at=now - timedelta(seconds=900))
    response = client.get("/healthz")
    assert response.json()["polling"] == "stale" and response.json()["last_poll_age_seconds"] == 900


def test_it_takes_the_newest_poll_of_any_kind_per_account(client, now, settings):
    settings.HEALTHZ_MAX_POLL_AGE_SECONDS = 300
    account = make_account()
    record_polls(account, at=now - timedelta(seconds=900))
    record_polls(account, at=now - timedelta(seconds=40), kinds=["perf"])
    assert client.get("/healthz").json()["last_poll_age_seconds"] == 40
