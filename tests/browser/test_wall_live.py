"""The wall in headless Chromium: live updates, staleness, paging, no scrolling, bounded DOM.

Waits are conditions with deadlines (Playwright's wait_for_*), never sleeps. The wall runs with
``?refresh=5``, so "within one refresh" is a 5 s refresh plus a few seconds of slack for the fetch
and the render on this shared 2-core machine."""
from __future__ import annotations

from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from tests.browser.fleet import build_fleet
from tests.browser.pipeline import poll_and_refresh, register
from workers.models import WorkerGroup, WorkerStatus

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

REFRESH = 5
ONE_REFRESH_MS = (REFRESH + 6) * 1000
VIEWER_TZ = ZoneInfo("Europe/Paris")  # the page_watch context's time zone


def _open(watch: Any, query: str = "") -> Any:
    response = watch.page.goto(f"{watch.origin}/wall/?refresh={REFRESH}&rotate=5{query}", wait_until="domcontentloaded")
    assert response is not None and response.status == 200
    watch.page.wait_for_selector("#wall-tiles.is-laid-out, #wall-empty:not([hidden])")
    return watch.page


def _down_some(down: set[int]):
    def rule(group_index: int, worker_index: int) -> str:
        return WorkerStatus.OFFLINE.value if group_index in down else WorkerStatus.ONLINE.value

    return rule


def test_it_turns_the_right_tile_down_within_one_refresh_when_a_site_goes_dark(login_cookie, make_emulator):
    # The emulator starts 12 minutes in the past so that, once its clock is advanced past the
    # offline thresholds (Automation 180 s, heartbeat 600 s), its time matches the server's again.
    start = timezone.now().replace(microsecond=0) - timedelta(minutes=12)
    emulator = make_emulator(seed=5, groups=3, workers=9, history_days=0.05, scenarios=False, start=start)
    account = register(emulator)
    poll_and_refresh(account, now=start)
    # Groups of V2 workers only: a group of retired V1 workers has no capacity and is down from the start.
    v2_groups = WorkerGroup.objects.filter(account=account, workers__isnull=False).exclude(workers__worker_type="HybridV1")
    target = v2_groups.order_by("name").distinct().first()
    others = list(v2_groups.exclude(pk=target.pk).distinct().values_list("pk", flat=True))
    page = _open(login_cookie)
    tile = f'.tile[data-group-id="{target.pk}"]'
    assert page.get_attribute(tile, "data-health") == "healthy"

    emulator.start_scenario("site_down", target.name, 60)
    emulator.clock.advance(12 * 60)
    poll_and_refresh(account, now=emulator.clock.now())

    page.wait_for_selector(f'{tile}[data-health="down"]', timeout=ONE_REFRESH_MS)
    assert page.text_content(f"{tile} .tile-health") == "DOWN"
    assert page.text_content(f"{tile} .tile-icon") == "✕"
    assert all(page.get_attribute(f'.tile[data-group-id="{pk}"]', "data-health") != "down" for pk in others)
    # Worst first: the dark site moved to the first cell.
    assert page.get_attribute("#wall-tiles .tile >> nth=0", "data-group-id") == str(target.pk)
    login_cookie.assert_clean()


def test_it_shows_stale_and_greys_the_tiles_when_the_server_cannot_be_reached(login_cookie):
    build_fleet(now=timezone.now(), groups=6, poll_age_seconds=5)
    page = _open(login_cookie)
    assert page.is_hidden("#wall-stale")

    login_cookie.allowed.append("/api/v1/wall")
    login_cookie.allowed.append("Failed to load resource")
    login_cookie.context.route("**/api/v1/wall*", lambda route: route.abort("connectionrefused"))

    page.wait_for_selector("#wall-stale:not([hidden])", timeout=ONE_REFRESH_MS)
    assert page.text_content("#wall-stale-head").startswith("DATA STALE since ")
    assert "cannot reach the server" in page.text_content("#wall-stale-reason")
    assert "grayscale(1)" in page.evaluate("getComputedStyle(document.getElementById('wall-tiles')).filter")
    login_cookie.assert_clean()


def test_it_recovers_from_stale_when_the_server_answers_again(login_cookie):
    build_fleet(now=timezone.now(), groups=3, poll_age_seconds=5)
    page = _open(login_cookie)
    login_cookie.allowed.extend(["/api/v1/wall", "Failed to load resource"])
    login_cookie.context.route("**/api/v1/wall*", lambda route: route.abort("connectionrefused"))
    page.wait_for_selector("#wall-stale:not([hidden])", timeout=ONE_REFRESH_MS)

    login_cookie.context.unroute("**/api/v1/wall*")

    page.wait_for_selector("#wall-stale", state="hidden", timeout=ONE_REFRESH_MS)
    assert not page.evaluate("document.body.classList.contains('is-stale')")


def test_its_css_watchdog_greys_the_wall_when_the_script_stops(login_cookie):
    build_fleet(now=timezone.now(), groups=4, poll_age_seconds=5)
    page = _open(login_cookie)
    assert page.is_hidden(".wall-watchdog")

    # Kill every timer the script runs (as if it crashed or the tab froze) and shorten the
    # watchdog's delay so the test does not wait the real 45 s.
    page.evaluate(
        """() => { const last = setTimeout(() => {}, 0);
                   for (let id = 0; id <= last; id++) { clearTimeout(id); clearInterval(id); }
                   document.body.style.setProperty('--wd-delay', '2s');
                   for (const a of document.body.getAnimations({subtree: true})) a.currentTime = 0; }"""
    )

    page.wait_for_selector(".wall-watchdog", state="visible", timeout=10_000)
    assert "grayscale(1)" in page.evaluate("getComputedStyle(document.getElementById('wall-tiles')).filter")
    assert page.is_hidden("#wall-stale"), "the script is dead: only CSS can have said it"


def test_it_goes_stale_on_its_own_when_no_newer_poll_arrives(login_cookie):
    # Automation data goes stale after 3 x 30 s; the last poll is 86 s old, so 4 s remain.
    now = timezone.now()
    build_fleet(now=now, groups=3, poll_age_seconds=86)
    page = _open(login_cookie)

    page.wait_for_selector("#wall-stale:not([hidden])", timeout=ONE_REFRESH_MS)

    last_ok = now - timedelta(seconds=86)
    head = page.locator("#wall-stale-head")
    assert head.text_content() == f"DATA STALE since {last_ok.astimezone(VIEWER_TZ):%H:%M}"
    assert head.get_attribute("title") == f"last good poll {last_ok:%Y-%m-%d %H:%M:%S} UTC"
    login_cookie.assert_clean()


def test_it_shows_times_in_the_viewers_zone_with_utc_on_hover(login_cookie):
    now = timezone.now().replace(microsecond=0)
    build_fleet(now=now, groups=2, poll_age_seconds=0)
    page = _open(login_cookie)

    asof = page.locator("#wall-asof")

    assert asof.text_content() == f"{now.astimezone(VIEWER_TZ):%H:%M}"
    assert asof.get_attribute("title") == f"{now:%Y-%m-%d %H:%M:%S} UTC"


def test_it_rotates_pages_when_the_groups_do_not_fit(login_cookie):
    build_fleet(now=timezone.now(), groups=300, workers_per_group=1, poll_age_seconds=5)
    page = _open(login_cookie)
    first = page.text_content("#wall-page")
    assert first.startswith("Page 1 / ")

    page.wait_for_function("() => document.getElementById('wall-page').textContent.startsWith('Page 2 / ')", timeout=ONE_REFRESH_MS)

    assert page.locator(".wall-dot.is-current").count() == 1
    login_cookie.assert_clean()


@pytest.mark.parametrize("size", [(1920, 1080), (1366, 768), (3840, 2160)], ids=["hd", "laptop", "4k"])
@pytest.mark.parametrize("groups", [10, 500])
def test_it_never_scrolls(login_cookie, size, groups):
    build_fleet(now=timezone.now(), groups=groups, workers_per_group=1, poll_age_seconds=5)
    login_cookie.page.set_viewport_size({"width": size[0], "height": size[1]})
    page = _open(login_cookie)

    overflow = page.evaluate(
        """() => { const s = document.scrollingElement; const t = document.getElementById('wall-tiles');
                   const last = [...t.children].filter(c => !c.classList.contains('is-blank')).pop().getBoundingClientRect();
                   return {page: s.scrollHeight - window.innerHeight, pageX: s.scrollWidth - window.innerWidth,
                           tileBottom: last.bottom - t.getBoundingClientRect().bottom}; }"""
    )

    assert overflow["page"] <= 0 and overflow["pageX"] <= 0 and overflow["tileBottom"] <= 1, overflow


def test_it_puts_the_worst_groups_on_the_first_page(login_cookie):
    build_fleet(now=timezone.now(), groups=200, workers_per_group=2, status=_down_some({150, 170, 199}), poll_age_seconds=5)
    page = _open(login_cookie)

    first_three = page.eval_on_selector_all("#wall-tiles .tile", "els => els.slice(0, 3).map(e => e.dataset.health)")

    assert first_three == ["down", "down", "down"]


def test_it_patches_tiles_in_place_without_growing_the_dom(login_cookie):
    # 20 groups: one page at 1080p (6 x 4 tiles), so no page turn races the update.
    fleet = build_fleet(now=timezone.now(), groups=20, workers_per_group=2, poll_age_seconds=2)
    page = _open(login_cookie)
    page.evaluate("window.__firstTile = document.querySelector('#wall-tiles .tile')")
    before = page.evaluate("document.getElementsByTagName('*').length")
    victim = fleet.groups[17]
    victim.workers.update(status=WorkerStatus.OFFLINE.value)

    page.wait_for_selector(f'.tile[data-group-id="{victim.pk}"][data-health="down"]', timeout=ONE_REFRESH_MS)

    after = page.evaluate("document.getElementsByTagName('*').length")
    same_node = page.evaluate("window.__firstTile === document.querySelector('#wall-tiles .tile')")
    assert (after, same_node) == (before, True)


def test_it_explains_a_groups_filter_that_matches_nothing(login_cookie):
    build_fleet(now=timezone.now(), groups=3, poll_age_seconds=5)
    page = _open(login_cookie, "&groups=nope")

    assert page.text_content("#wall-empty") == "No groups match ?groups=nope."
    assert page.locator(".tile[data-group-id]").count() == 0
    login_cookie.assert_clean()


@pytest.mark.parametrize("theme", ["dark", "contrast", "light"])
def test_it_draws_each_theme_cleanly(login_cookie, theme):
    build_fleet(now=timezone.now(), groups=24, workers_per_group=3, poll_age_seconds=5,
                status=lambda g, w: WorkerStatus.OFFLINE.value if g in (3, 9) or (g in (4, 5, 11) and w == 0) else WorkerStatus.ONLINE.value)
    fleet_groups = WorkerGroup.objects.all()
    fleet_groups.filter(pk=fleet_groups.order_by("pk")[20].pk).update(name="group-with-a-rather-long-name-for-a-tv-tile")
    page = _open(login_cookie, f"&theme={theme}")

    assert page.evaluate(f"document.body.classList.contains('theme-{theme}')")
    login_cookie.screenshots(f"wall-theme-{theme}", full_page=False)
    login_cookie.assert_clean()


def test_it_draws_the_stale_state_for_the_artifacts(login_cookie):
    build_fleet(now=timezone.now(), groups=24, workers_per_group=3, poll_age_seconds=900,
                status=lambda g, w: WorkerStatus.OFFLINE.value if g == 2 else WorkerStatus.ONLINE.value)
    page = _open(login_cookie)
    page.wait_for_selector("#wall-stale:not([hidden])")

    login_cookie.screenshots("wall-stale", full_page=False)
    login_cookie.assert_clean()


def test_it_greys_and_labels_a_tile_whose_group_poll_starts_failing(login_cookie):
    from workers.models import PollKind, PollRun

    now = timezone.now()
    fleet = build_fleet(now=now, groups=3, poll_age_seconds=5)
    WorkerGroup.objects.update(first_seen_at=now - timedelta(days=1))
    PollRun.objects.bulk_create([  # each group's own worker poll, as the polling services record them
        PollRun(account=fleet.account, kind=PollKind.WORKERS, scope=g.name, ok=True,
                started_at=now - timedelta(seconds=6), finished_at=now - timedelta(seconds=5))
        for g in fleet.groups
    ])
    page = _open(login_cookie)
    target = fleet.groups[1]
    tile = f'.tile[data-group-id="{target.pk}"]'
    assert page.text_content(f"{tile} .tile-health") == "HEALTHY"

    PollRun.objects.create(account=fleet.account, kind=PollKind.WORKERS, scope=target.name, ok=False,
                           started_at=timezone.now() - timedelta(seconds=1), finished_at=timezone.now(), error="<i>403</i> Forbidden")

    page.wait_for_selector(f"{tile}.is-unpolled", timeout=ONE_REFRESH_MS)
    assert page.text_content(f"{tile} .tile-health") == "NOT POLLED"
    assert page.text_content(f"{tile} .tile-extra").startswith("last known healthy")
    assert page.get_attribute(f"{tile} .tile-name", "title").endswith(": worker poll failing: <i>403</i> Forbidden")
    assert "grayscale(1)" in page.evaluate(f"getComputedStyle(document.querySelector('{tile}')).filter")
    assert page.is_hidden("#wall-stale"), "the other groups are polled: the wall as a whole is fresh"
    login_cookie.assert_clean()
