"""The dark theme: the system preference by default, a switch in the top bar stored in localStorage,
readable contrast in both themes, and plotly charts that follow the theme."""
from __future__ import annotations

from typing import Any

import pytest
from django.utils import timezone

from tests.fixtures.web import build_fleet

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CONTRAST = """(selector) => {
  function rgb(value) { return value.match(/[\\d.]+/g).slice(0, 3).map(Number); }
  function lum(c) {
    const [r, g, b] = c.map(v => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  }
  function background(el) {
    for (let e = el; e; e = e.parentElement) {
      const bg = getComputedStyle(e).backgroundColor;
      if (bg && !bg.startsWith("rgba(0, 0, 0, 0)") && bg !== "transparent") { return bg; }
    }
    return getComputedStyle(document.documentElement).backgroundColor;
  }
  return Array.from(document.querySelectorAll(selector)).filter(el => el.offsetParent !== null).map(el => {
    const fg = lum(rgb(getComputedStyle(el).color)), bg = lum(rgb(background(el)));
    return [el.tagName + "." + el.className, (Math.max(fg, bg) + 0.05) / (Math.min(fg, bg) + 0.05)];
  });
}"""
TEXT = "main h1, main p, main td, main th, main a, .muted, .badge, .freshness"


def body_background(page: Any) -> str:
    return page.evaluate("() => getComputedStyle(document.body).backgroundColor")


def assert_readable(page: Any) -> None:
    ratios = page.evaluate(CONTRAST, TEXT)
    assert ratios, "no text found to check"
    low = [(what, round(r, 2)) for what, r in ratios if r < 4.5]
    assert not low, low


@pytest.fixture
def worker_url(db: Any) -> str:
    fleet = build_fleet(groups=1, workers_per_group=2, now=timezone.now())
    return f"/workers/{fleet.workers[0].pk}/"


def chart_font(page: Any) -> str:
    page.wait_for_function("() => document.querySelector('.chart .main-svg') !== null")
    return page.evaluate("() => document.querySelector('.chart')._fullLayout.font.color")


def test_the_switch_changes_the_theme_and_is_remembered(login_cookie, worker_url):
    page = login_cookie.page
    page.emulate_media(color_scheme="light")
    page.goto(login_cookie.origin + worker_url, wait_until="networkidle")
    assert page.get_attribute("html", "data-theme") == "light"
    light = body_background(page)
    assert_readable(page)
    light_font = chart_font(page)

    switch = page.locator("[data-theme-switch]")
    assert switch.is_visible()
    switch.click()
    assert page.get_attribute("html", "data-theme") == "dark"
    assert switch.get_attribute("aria-pressed") == "true"
    dark = body_background(page)
    assert dark != light
    assert_readable(page)
    fg = page.evaluate("() => getComputedStyle(document.documentElement).getPropertyValue('--fg').trim()")
    page.wait_for_function("(fg) => document.querySelector('.chart')._fullLayout.font.color === fg", arg=fg)
    assert chart_font(page) != light_font

    # Remembered across pages, whatever the system says.
    page.goto(login_cookie.origin + "/alerts/", wait_until="networkidle")
    assert page.get_attribute("html", "data-theme") == "dark"
    assert body_background(page) == dark
    assert_readable(page)
    page.locator("[data-theme-switch]").click()
    assert body_background(page) == light
    login_cookie.screenshots("theme-alerts-light")
    login_cookie.assert_clean()


def test_the_system_preference_is_the_default(login_cookie, worker_url):
    page = login_cookie.page
    page.emulate_media(color_scheme="dark")
    page.goto(login_cookie.origin + worker_url, wait_until="networkidle")
    assert page.get_attribute("html", "data-theme") == "dark"
    assert page.get_attribute("[data-theme-switch]", "aria-pressed") == "true"
    assert_readable(page)
    login_cookie.screenshots("theme-worker-dark")
    login_cookie.assert_clean()


def test_without_javascript_the_system_dark_preference_still_applies(browser, live_server):
    context = browser.new_context(java_script_enabled=False, color_scheme="dark")
    try:
        page = context.new_page()
        page.goto(live_server.url + "/login/")
        assert body_background(page) == "rgb(18, 22, 27)"
        assert not page.locator("[data-theme-switch]").is_visible()  # it needs JavaScript, so it hides
    finally:
        context.close()
