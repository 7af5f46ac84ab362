"""Redis (the cache) down: pages and the API serve from the database, the outage is logged once, and
the cache is used again once Redis is back. Against a real redis-server of our own, stopped and
started during the test (tests/production/conftest.py)."""
from __future__ import annotations

import json
import logging
import urllib.request

import pytest
from django.core.cache import cache
from django.test import override_settings

from dashboard.resilient_cache import ResilientRedisCache
from tests.production.conftest import redis_cache_settings

pytestmark = pytest.mark.django_db

PAGES = ["/", "/jobs/", "/wall/", "/latency/", "/timeouts/", "/alerts/"]
API = ["/api/v1/groups", "/api/v1/wall"]
CACHE_LOGGER = "dashboard.resilient_cache"


def _outage_lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == CACHE_LOGGER]


def test_pages_and_api_serve_from_the_database_while_redis_is_down(own_redis, client_in, small_fleet, caplog):
    caplog.set_level(logging.INFO, logger=CACHE_LOGGER)
    with override_settings(CACHES=redis_cache_settings(own_redis.url)):
        before = {path: client_in.get(path) for path in API}
        assert all(r.status_code == 200 for r in before.values())
        assert own_redis.client().keys("*per-jobs-poll*"), "the aggregates were cached in our Redis"

        own_redis.stop()
        for _ in range(3):
            for path in PAGES + API:
                response = client_in.get(path)
                assert response.status_code == 200, path
        for path in API:
            during = client_in.get(path)
            assert during["Content-Type"].startswith("application/json")
            body, expected = during.json(), before[path].json()
            for changing in ("generated_at",):
                body.pop(changing, None)
                expected.pop(changing, None)
            assert body == expected, f"{path} served the same data from the database"
        lines = _outage_lines(caplog)
        assert len(lines) == 1 and lines[0].startswith("cache unavailable"), lines

        own_redis.start()
        assert own_redis.client().keys("*") == []  # a fresh server: nothing cached
        assert client_in.get("/").status_code == 200
        assert own_redis.client().keys("*per-jobs-poll*"), "the cache is used again once Redis is back"
        assert _outage_lines(caplog)[1:] == ["cache reachable again"]


def test_the_cache_api_answers_misses_and_no_ops_while_redis_is_down(own_redis):
    with override_settings(CACHES=redis_cache_settings(own_redis.url)):
        assert isinstance(cache, object) and cache.set("k", 1) is None and cache.get("k") == 1
        own_redis.stop()
        assert cache.get("k") is None
        assert cache.get("k", "fallback") == "fallback"
        assert cache.get_many(["k", "j"]) == {}
        assert cache.set("k", 2) is None
        assert cache.add("k", 3) is False
        assert cache.delete("k") is False
        assert cache.has_key("k") is False
        assert cache.set_many({"a": 1, "b": 2}) == ["a", "b"]
        assert cache.delete_many(["a", "b"]) is None
        assert cache.touch("k") is False
        assert cache.get_or_set("k", 7) == 7
        assert cache.ping() is False


def test_after_a_failure_the_cache_is_not_tried_until_the_retry_interval_has_passed(own_redis):
    backend = ResilientRedisCache(own_redis.url, {"OPTIONS": {"DOWN_RETRY_SECONDS": 30}})
    clock = [1000.0]
    backend.clock = lambda: clock[0]
    backend.set("k", "v")
    own_redis.stop()
    assert backend.get("k") is None and not backend.available()
    own_redis.start()
    own_redis.client().set(backend.make_key("k"), b"ignored")  # Redis is back, but we do not look yet
    clock[0] += 29
    assert not backend.available() and backend.get("k") is None
    clock[0] += 1
    assert backend.available()
    backend.set("k", "again")
    assert backend.get("k") == "again"


@pytest.mark.django_db(transaction=True)
def test_a_live_server_keeps_serving_while_redis_is_down(own_redis, live_server, client, django_user_model, now):
    from tests.fixtures.web import build_fleet, record_polls

    fleet = build_fleet(groups=2, workers_per_group=2, now=now)
    record_polls(fleet.account, at=now)
    client.force_login(django_user_model.objects.create_user("bob", password="pw-not-secret-123"))
    cookie = f"sessionid={client.cookies['sessionid'].value}"

    def get(path: str) -> tuple[int, str, bytes]:
        request = urllib.request.Request(f"{live_server.url}{path}", headers={"Cookie": cookie})
        with urllib.request.urlopen(request, timeout=30) as response:  # an HTTP error raises here
            return response.status, response.headers["Content-Type"], response.read()

    with override_settings(CACHES=redis_cache_settings(own_redis.url)):
        assert get("/")[0] == 200
        own_redis.stop()
        for path in ["/", "/api/v1/groups", "/api/v1/wall"]:
            status, content_type, body = get(path)
            assert status == 200, path
            if path.startswith("/api/"):
                assert content_type.startswith("application/json") and json.loads(body)
        groups = json.loads(get("/api/v1/groups")[2])["groups"]
        assert sorted(g["name"] for g in groups) == sorted(g.name for g in fleet.groups)
        own_redis.start()
        assert get("/")[0] == 200
