"""Screenshots of every page, light and dark, at 1920x1080, 1280x720 and 390x844 (issue 15's
"Done when"), written to test-artifacts/screenshots/pages/<page>-<theme>-<W>x<H>.png (git-ignored;
the path is printed, run with -s to see it). Each capture also checks what a reviewer would: the
theme asked for is the theme shown, the page has no horizontal scroll at that width and nothing
went wrong in the browser.

The theme follows the system preference (static/js/theme.js), so it is set with
page.emulate_media(color_scheme=...) and nothing is stored."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.urls import Resolver404, resolve

from tests.browser.conftest import ARTIFACTS
from tests.browser.pages_fleet import build_pages_fleet

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

OUT = ARTIFACTS / "pages"
SIZES = ((1920, 1080), (1280, 720), (390, 844))
THEMES = ("light", "dark")
# name, path (formatted with the fleet and the theme), anonymous
PAGES = [
    ("login", "/login/", True),
    ("overview", "/", False),
    ("group", "/groups/{group.pk}/", False),
    ("worker", "/workers/{worker.pk}/", False),
    ("alerts", "/alerts/", False),
    ("notification", "/alerts/notifications/{email.pk}/", False),
    ("jobs", "/jobs/", False),
    ("job", "/jobs/{job.job_id}/?account={account.pk}", False),
    ("search", "/search/?q={group.name}", False),
    ("latency", "/latency/", False),
    ("timeouts", "/timeouts/", False),
    ("thresholds", "/timeouts/thresholds/", False),
    ("correlation", "/correlation/", False),
    ("capacity", "/capacity/", False),
    ("capacity-report", "/capacity/report/", False),
    ("wall", "/wall/?theme={theme}", False),  # the wall's theme is chosen in its URL (default dark)
]

THEME = "() => document.documentElement.dataset.theme || document.body.dataset.theme"
SETTLED = "() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))"


@pytest.fixture
def fleet(make_emulator: Any, browser_user: Any) -> dict[str, Any]:
    from dashboard.roles import set_role

    set_role(browser_user, "operator")
    return build_pages_fleet(make_emulator)


@pytest.mark.parametrize("name,path,anonymous", PAGES, ids=[p[0] for p in PAGES])
def test_it_captures_the_page_in_both_themes_at_three_sizes(login_cookie, fleet, name, path, anonymous):
    try:
        resolve(path.split("?")[0].format(theme="", **fleet))
    except Resolver404:
        pytest.skip(f"no route {path} yet (built in parallel)")
    watch, page = login_cookie, login_cookie.page
    if anonymous:
        watch.context.clear_cookies()
    OUT.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for theme in THEMES:
        page.emulate_media(color_scheme=theme)
        for width, height in SIZES:
            page.set_viewport_size({"width": width, "height": height})
            response = page.goto(watch.origin + path.format(theme=theme, **fleet), wait_until="networkidle")
            assert response is not None and response.status == 200, f"{path}: HTTP {response and response.status}"
            assert page.evaluate(THEME) == theme
            if page.locator("[data-figure]").count() and not page.locator("[data-figure] .main-svg").count():
                page.locator("[data-figure] .main-svg").first.wait_for()  # plotly drew before the capture
            page.evaluate(SETTLED)
            scroll = page.evaluate("() => [document.scrollingElement.scrollWidth, document.scrollingElement.clientWidth]")
            assert scroll[0] <= scroll[1], f"{name} scrolls sideways at {width}x{height} ({theme}): {scroll}"
            target = OUT / f"{name}-{theme}-{width}x{height}.png"
            page.screenshot(path=str(target), full_page=name != "wall")
            assert target.stat().st_size > 5_000, f"{target} is nearly empty"
            written.append(target)
    print(f"\n{len(written)} screenshots of {name} in {OUT}")
    assert len(written) == len(THEMES) * len(SIZES)
    watch.assert_clean()
