"""Every page in headless Chromium: it loads with no console error, no failed request, nothing from
outside this server, and is captured at 1920x1080 and 3840x2160 (test-artifacts/screenshots/).

The fleet comes through the real pipeline: the emulator (real SDK clients over HTTPS), the polling
services, the status refresh and the rollups. A page whose route does not exist yet is skipped
with the reason (its owner builds it in parallel)."""
from __future__ import annotations

from typing import Any

import pytest
from django.urls import Resolver404, resolve
from django.utils import timezone

from tests.browser.pipeline import poll_and_refresh, register, roll_up
from workers.models import HybridWorker, WorkerGroup

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _require_route(path: str, owner: str) -> None:
    try:
        resolve(path.split("?")[0])
    except Resolver404:
        pytest.skip(f"route {path} does not exist yet ({owner} builds it)")


@pytest.fixture
def fleet(make_emulator: Any) -> dict[str, Any]:
    """A 4-group emulator fleet polled at the real current time, with 6 h of history rolled up."""
    now = timezone.now().replace(microsecond=0)
    emulator = make_emulator(seed=21, groups=4, workers=12, history_days=0.25, scenarios=True, start=now)
    account = register(emulator)
    poll_and_refresh(account, now=now)
    roll_up(now=now, hours=8)
    group = WorkerGroup.objects.filter(account=account).order_by("name").first()
    worker = HybridWorker.objects.filter(group=group).order_by("name").first()
    return {"emulator": emulator, "account": account, "group": group, "worker": worker, "now": now}


def _visit(watch: Any, path: str) -> Any:
    response = watch.page.goto(watch.origin + path, wait_until="networkidle")
    assert response is not None and response.status == 200, f"{path}: HTTP {response and response.status}"
    return response


PAGES = [
    ("overview", "/", "helper D"),
    ("jobs", "/jobs/", "helper D"),
    ("timeouts", "/timeouts/", "helper G1"),
    ("latency", "/latency/", "helper G1"),
    ("correlation", "/correlation/", "helper G2"),
    ("capacity", "/capacity/", "helper G2"),
    ("alerts", "/alerts/", "helper F"),
    ("wall", "/wall/", "helper H"),
]


@pytest.mark.parametrize("name,path,owner", PAGES, ids=[p[0] for p in PAGES])
def test_it_renders_the_page_cleanly_at_hd_and_4k(login_cookie, fleet, name, path, owner):
    _require_route(path, owner)

    _visit(login_cookie, path)
    login_cookie.screenshots(name, full_page=name != "wall")

    login_cookie.assert_clean()


def test_it_renders_a_group_page_cleanly_at_hd_and_4k(login_cookie, fleet):
    path = f"/groups/{fleet['group'].pk}/"
    _require_route(path, "helper D")

    _visit(login_cookie, path)
    login_cookie.screenshots("group")

    login_cookie.assert_clean()


def test_it_renders_a_worker_page_cleanly_at_hd_and_4k(login_cookie, fleet):
    path = f"/workers/{fleet['worker'].pk}/"
    _require_route(path, "helper D")

    _visit(login_cookie, path)
    # The signal timeline drew its lanes (one poll recorded a span per signal; the 6 h of Perf history).
    timeline = login_cookie.page.locator('[data-key="timeline"]')
    timeline.locator(".main-svg").first.wait_for()
    labels = timeline.locator(".ytick text").all_text_contents()
    assert {"Automation lastSeen", "Log Analytics Heartbeat", "Perf samples"} <= set(labels), labels
    login_cookie.screenshots("worker")

    login_cookie.assert_clean()


def test_it_logs_in_through_the_login_form(page_watch, browser_user):
    page = page_watch.page
    page.goto(page_watch.origin + "/", wait_until="networkidle")
    assert "/login/" in page.url, "an anonymous visit is sent to the login page"
    page_watch.screenshots("login")

    page.fill("input[name=username]", "operator")
    page.fill("input[name=password]", "correct horse battery staple")
    with page.expect_navigation(wait_until="networkidle"):
        page.locator("form").filter(has=page.locator("input[name=password]")).locator("[type=submit]").click()

    assert "/login/" not in page.url
    page_watch.assert_clean()


@pytest.mark.parametrize("name,path,owner", PAGES, ids=[p[0] for p in PAGES])
def test_it_shows_a_visible_focus_outline_when_tabbing_to_links(login_cookie, fleet, name, path, owner):
    _require_route(path, owner)
    page = login_cookie.page
    _visit(login_cookie, path)

    seen = []
    for _ in range(12):
        page.keyboard.press("Tab")
        focus = page.evaluate(
            """() => { const el = document.activeElement; const cs = getComputedStyle(el);
                       return {tag: el.tagName, text: (el.textContent || '').trim().slice(0, 40),
                               style: cs.outlineStyle, width: parseFloat(cs.outlineWidth), visible: el.getBoundingClientRect().width > 0}; }"""
        )
        if focus["tag"] == "A":
            seen.append(focus)
    assert seen, "Tab reaches at least one link"
    assert all(f["style"] != "none" and f["width"] >= 2 and f["visible"] for f in seen), seen
    login_cookie.assert_clean()


def test_it_opens_the_wall_with_a_read_only_token_and_no_login(page_watch, fleet):
    from dashboard.auth import issue_token

    _token, raw = issue_token(name="wall in the NOC")
    _visit(page_watch, f"/wall/?token={raw}&refresh=5")
    assert page_watch.page.url.endswith("/wall/?refresh=5")  # swapped for a cookie, gone from the address bar

    # The first refresh goes through the JSON feed, carried by the display cookie.
    with page_watch.page.expect_response(lambda r: "/api/v1/wall" in r.url, timeout=15_000) as answer:
        pass
    assert answer.value.status == 200
    assert page_watch.page.locator(".tile[data-group-id]").count() == WorkerGroup.objects.count()
    page_watch.assert_clean()
