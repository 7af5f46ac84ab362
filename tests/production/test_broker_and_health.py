"""One Redis as cache and broker (the production layout), stopped: every page still renders, and
/healthz names both parts while answering 200 (the database answers, so this process can serve)."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import override_settings

from tests.fixtures.web import record_polls
from tests.production.conftest import redis_cache_settings

pytestmark = pytest.mark.django_db

PAGES = ["/", "/jobs/", "/latency/", "/timeouts/", "/correlation/", "/capacity/", "/alerts/", "/wall/",
         "/api/v1/groups", "/api/v1/wall", "/api/v1/jobs?since=7d"]


def test_pages_render_and_healthz_names_cache_and_broker_while_redis_is_down(own_redis, client_in, small_fleet, now):
    record_polls(small_fleet.account, at=now - timedelta(seconds=10))
    with override_settings(CACHES=redis_cache_settings(own_redis.url), CELERY_BROKER_URL=own_redis.url,
                           CELERY_BROKER_TRANSPORT_OPTIONS={}):
        group = small_fleet.groups[0]
        paths = PAGES + [f"/groups/{group.pk}/", f"/workers/{small_fleet.workers[0].pk}/"]
        healthy = client_in.get("/healthz")
        assert healthy.status_code == 200 and healthy.json()["down"] == [] and healthy.json()["status"] == "ok"

        own_redis.stop()
        for path in paths:
            assert client_in.get(path).status_code == 200, path
        health = client_in.get("/healthz")
        assert health.status_code == 200
        assert health.json()["status"] == "degraded"
        assert health.json()["cache"] == "error" and health.json()["broker"] == "error"
        assert health.json()["database"] == "ok" and health.json()["down"] == ["cache", "broker"]

        own_redis.start()
        health = client_in.get("/healthz")
        assert health.json()["status"] == "ok" and health.json()["down"] == []
