"""/wall/ and /api/v1/wall: access, validation, themes, escaping, CSP, empty and stale states."""
from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from html import unescape
from html.parser import HTMLParser

import pytest
import time_machine
from django.test import Client

from dashboard.auth import issue_token
from tests.browser.fleet import build_fleet, record_polls
from workers.models import WorkerStatus

NOW = datetime(2026, 11, 20, 12, 0, 0, tzinfo=UTC)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def frozen_clock():
    with time_machine.travel(NOW, tick=False):
        yield NOW


@pytest.fixture
def logged_in(client: Client, django_user_model) -> Client:
    client.force_login(django_user_model.objects.create_user("noc", password="pw-not-secret-123"))
    return client


@pytest.fixture
def wall_token() -> str:
    return issue_token(name="NOC wall")[1]


def _config(response) -> dict:
    match = re.search(rb'<script id="wall-config" type="application/json">(.*?)</script>', response.content, re.S)
    assert match, "the page carries its configuration in json_script"
    return json.loads(match.group(1))


class _Scan(HTMLParser):
    """Collects what a strict CSP forbids: inline script bodies, inline handlers, style attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.violations: list[str] = []
        self._in_script: str | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for name in attrs:
            if name.startswith("on") or name == "style":
                self.violations.append(f"{tag}[{name}]")
        if tag == "style":
            self.violations.append("<style>")
        if tag == "script":
            self._in_script = "external" if "src" in attrs else attrs.get("type") or "inline"

    def handle_data(self, data):
        if self._in_script not in (None, "external", "application/json") and data.strip():
            self.violations.append("inline <script>")

    def handle_endtag(self, tag):
        if tag == "script":
            self._in_script = None


def test_it_sends_anonymous_viewers_to_the_login_page(client):
    response = client.get("/wall/")

    assert response.status_code == 302 and "/login/" in response["Location"]


def test_it_opens_with_a_read_only_token_without_login(client, wall_token):
    build_fleet(now=NOW, groups=2)

    exchange = client.get(f"/wall/?token={wall_token}")
    response = client.get(exchange["Location"])  # the token became a cookie (tests/web/test_doors_tokens.py)

    assert exchange.status_code == 302 and exchange["Location"] == "/wall/"
    assert response.status_code == 200
    assert "token" not in _config(response) and wall_token not in response.content.decode()


def test_it_refuses_a_revoked_token(client):
    token, raw = issue_token(name="old wall")
    token.revoked_at = NOW
    token.save()

    assert client.get(f"/wall/?token={raw}").status_code == 401


def test_it_renders_every_group_as_a_tile_worst_first(logged_in):
    build_fleet(now=NOW, groups=3, workers_per_group=2, group_names=["calm", "dark", "shaky"],
                status=lambda g, w: WorkerStatus.OFFLINE.value if g == 1 or (g == 2 and w == 0) else WorkerStatus.ONLINE.value)

    html = logged_in.get("/wall/").content.decode()

    order = [m.group(1) for m in re.finditer(r'class="tile-name" title="[^"]*">([^<]+)<', html)]
    assert order == ["dark", "shaky", "calm"]


def test_it_marks_health_with_a_shape_and_a_word_not_colour_alone(logged_in):
    build_fleet(now=NOW, groups=1, workers_per_group=1, status=lambda g, w: WorkerStatus.OFFLINE.value)

    html = logged_in.get("/wall/").content.decode()

    assert '<span class="tile-icon" aria-hidden="true">✕</span>' in html
    assert '<span class="tile-health">DOWN</span>' in html


def test_it_states_units_on_the_totals(logged_in):
    build_fleet(now=NOW, groups=1)

    html = logged_in.get("/wall/").content.decode()

    assert "queue delay p95 · 24 h" in html and "workers online" in html and "jobs queued now" in html


@pytest.mark.parametrize(
    "theme,body_class",
    [("dark", "theme-dark"), ("contrast", "theme-contrast"), ("high-contrast", "theme-contrast"), ("light", "theme-light")],
)
def test_it_applies_the_requested_theme(logged_in, theme, body_class):
    response = logged_in.get(f"/wall/?theme={theme}")

    assert re.search(rf'<body class="wall wd-armed {body_class}', response.content.decode())


@pytest.mark.parametrize(
    "query,field",
    [("theme=neon", "theme"), ("refresh=1", "refresh"), ("refresh=abc", "refresh"), ("rotate=99999", "rotate"), ("account=" + "x" * 101, "account")],
)
def test_it_answers_400_naming_the_bad_parameter(logged_in, query, field):
    response = logged_in.get(f"/wall/?{query}")

    assert response.status_code == 400
    assert f"{field}:" in response.content.decode()


def test_it_answers_400_in_json_on_the_feed(logged_in):
    response = logged_in.get("/api/v1/wall?refresh=0")

    assert response.status_code == 400 and "refresh" in response.json()["error"]


def test_it_passes_refresh_and_rotation_to_the_script(logged_in):
    config = _config(logged_in.get("/wall/?refresh=7&rotate=20"))

    assert (config["refresh_seconds"], config["rotate_seconds"]) == (7, 20)


def test_it_defaults_to_a_15_second_refresh(logged_in):
    assert _config(logged_in.get("/wall/"))["refresh_seconds"] == 15


def test_it_keeps_the_filters_for_the_feed(logged_in):
    config = _config(logged_in.get("/wall/?groups=a, b,,A&account=east"))

    assert config["query"] == {"groups": "a,b", "account": "east"}


def test_it_sends_a_strict_content_security_policy(logged_in):
    response = logged_in.get("/wall/")

    assert "script-src 'self'" in response["Content-Security-Policy"]
    assert "style-src 'self'" in response["Content-Security-Policy"]


def test_it_has_no_inline_script_handler_or_style_for_the_csp_to_block(logged_in):
    build_fleet(now=NOW, groups=3)
    scan = _Scan()

    scan.feed(logged_in.get("/wall/").content.decode())

    assert scan.violations == []


def test_it_escapes_group_names_from_azure(logged_in):
    build_fleet(now=NOW, groups=1, group_names=["<script>alert(1)</script>"])

    html = logged_in.get("/wall/").content.decode()

    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "\\u003Cscript\\u003Ealert(1)" in html  # json_script escapes it inside the config too


def test_it_explains_a_groups_filter_that_matches_nothing(logged_in):
    build_fleet(now=NOW, groups=2)

    html = logged_in.get("/wall/?groups=x").content.decode()

    assert "No groups match ?groups=x." in html


def test_it_explains_an_empty_fleet(logged_in):
    html = logged_in.get("/wall/").content.decode()

    assert "No Automation account is configured yet" in html


def test_it_explains_an_account_that_was_never_polled(logged_in):
    build_fleet(now=NOW, groups=0, polled=False)

    assert "Waiting for the first poll" in logged_in.get("/wall/").content.decode()


def test_it_renders_the_stale_banner_when_the_latest_poll_failed(logged_in):
    fleet = build_fleet(now=NOW, groups=1, poll_age_seconds=300)
    record_polls(fleet.account, at=NOW - timedelta(seconds=5), ok=False, error="Forbidden: firewall")

    html = logged_in.get("/wall/").content.decode()

    assert 'class="wall wd-armed theme-dark is-stale"' in html
    assert "DATA STALE since 11:55 UTC" in html
    assert "Forbidden: firewall" in html


def test_it_hides_the_stale_banner_when_data_is_fresh(logged_in):
    build_fleet(now=NOW, groups=1, poll_age_seconds=5)

    html = logged_in.get("/wall/").content.decode()

    assert '<div id="wall-stale" class="wall-stale" role="alert" hidden>' in html


def test_the_feed_requires_a_session_or_bearer_token(client):
    response = client.get("/api/v1/wall")

    assert response.status_code == 401 and response.json()["error"]


def test_the_feed_accepts_a_bearer_token(client, wall_token):
    build_fleet(now=NOW, groups=2)

    response = client.get("/api/v1/wall", HTTP_AUTHORIZATION=f"Bearer {wall_token}")

    assert response.status_code == 200 and len(response.json()["groups"]) == 2


def test_the_feed_has_stable_field_names(logged_in):
    build_fleet(now=NOW, groups=1, workers_per_group=2)

    data = logged_in.get("/api/v1/wall").json()

    assert set(data) == {"generated_at", "filters", "unmatched_groups", "empty_message", "freshness", "totals", "groups"}
    assert set(data["groups"][0]) == {
        "id", "name", "account", "group_type", "health", "workers_online", "workers_total", "workers_late",
        "workers_offline", "workers_never", "jobs_queued", "open_alerts", "acknowledged_alerts", "single_member", "detail",
        "label", "poll_problem",
    }
    assert set(data["freshness"]) == {"stale", "last_ok_at", "age_seconds", "fresh_for_seconds", "ever_polled", "accounts", "reasons"}
    assert data["generated_at"] == "2026-11-20T12:00:00Z"


def test_the_feed_applies_the_filters(logged_in):
    build_fleet(now=NOW, groups=3, group_names=["a", "b", "c"])

    data = logged_in.get("/api/v1/wall?groups=c,zz").json()

    assert [g["name"] for g in data["groups"]] == ["c"]
    assert data["unmatched_groups"] == ["zz"]


def test_the_feed_is_never_cached(logged_in):
    assert logged_in.get("/api/v1/wall")["Cache-Control"] == "no-store"


def test_it_ships_one_blank_tile_for_the_script_to_clone(logged_in):
    build_fleet(now=NOW, groups=1, workers_per_group=1, status=lambda g, w: WorkerStatus.OFFLINE.value)

    html = logged_in.get("/wall/").content.decode()

    match = re.search(r'<template id="wall-tile" data-icons="([^"]*)">(.*?)</template>', html, re.S)
    assert match, "the tile markup the script fills comes from the server"
    assert json.loads(unescape(match.group(1))) == {"down": "✕", "degraded": "▲", "healthy": "✓", "empty": "○"}
    rendered = html[html.index('<main id="wall-tiles"'):html.index("</main>")]
    rendered = rendered[rendered.index("<article"):]

    def shape(markup: str) -> str:  # the elements and attributes, without values or text
        return re.sub(r">[^<]*<", "><", re.sub(r'="[^"]*"', '=""', markup.strip()))

    assert shape(rendered) == shape(match.group(2))
