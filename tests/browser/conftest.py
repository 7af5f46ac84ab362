"""Headless Chromium (Debian's /usr/bin/chromium) driven by Playwright, against pytest-django's
live server.

* ``browser`` (session): skips with a reason when /usr/bin/chromium is missing, fails instead when
  HRW_REQUIRE_SERVICES=1.
* ``page_watch`` (function): a fresh context and page that records console errors, uncaught page
  errors, failed requests, HTTP answers >= 400 and any request leaving the live server's origin
  (those are aborted: a NOC wall may have no internet). ``watch.assert_clean()`` checks them all.
* ``login_cookie``: a session for a real user, set as a cookie on the context.
* Screenshots go to test-artifacts/screenshots/ (git-ignored).

Playwright's sync API keeps an asyncio loop alive in this thread, which Django's async-safety check
mistakes for async code calling the ORM; the tests and the live server are plain threads, so the
check is switched off while the browser fixture is alive.
"""
from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.browser.chromium import CHROMIUM, launch_chromium

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
SIZES = ((1920, 1080), (3840, 2160))
REQUIRE = os.environ.get("HRW_REQUIRE_SERVICES") == "1"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if Path(str(item.fspath)).is_relative_to(here) and not item.get_closest_marker("browser"):
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)) and not shutil.which(CHROMIUM):
        reason = f"Chromium not found at {CHROMIUM} (apt-get install chromium, or set HRW_CHROMIUM)"
        if REQUIRE:
            pytest.fail(f"browser tests are required (HRW_REQUIRE_SERVICES=1) but {reason}")
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            chromium = launch_chromium(playwright)
            try:
                yield chromium
            finally:
                chromium.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@dataclass
class PageWatch:
    """One browser context + page and everything that went wrong in it."""

    page: Any
    context: Any
    origin: str
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    failed_requests: list[str] = field(default_factory=list)
    bad_responses: list[str] = field(default_factory=list)
    external_requests: list[str] = field(default_factory=list)
    # Failures a test provokes on purpose (e.g. the server going away) are allowed by substring.
    allowed: list[str] = field(default_factory=list)

    def _keep(self, items: list[str]) -> list[str]:
        return [i for i in items if not any(a in i for a in self.allowed)]

    def problems(self) -> dict[str, list[str]]:
        found = {
            "console errors": self._keep(self.console_errors),
            "page errors": self._keep(self.page_errors),
            "failed requests": self._keep(self.failed_requests),
            "HTTP >= 400": self._keep(self.bad_responses),
            "non-local requests": self.external_requests,
        }
        return {k: v for k, v in found.items() if v}

    def assert_clean(self) -> None:
        assert self.problems() == {}, self.problems()

    def screenshots(self, name: str, *, full_page: bool = True) -> list[Path]:
        """``name``-WxH.png at 1920x1080 and 3840x2160; the viewport is restored afterwards."""
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        original = self.page.viewport_size
        paths = []
        for width, height in SIZES:
            self.page.set_viewport_size({"width": width, "height": height})
            # Let resize handlers (the wall's layout) run before the capture.
            self.page.wait_for_function(f"() => window.innerWidth === {width}")
            self.page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
            path = ARTIFACTS / f"{name}-{width}x{height}.png"
            self.page.screenshot(path=str(path), full_page=full_page)
            paths.append(path)
        if original:
            self.page.set_viewport_size(original)
        return paths


@pytest.fixture
def page_watch(browser: Any, live_server: Any) -> Iterator[PageWatch]:
    context = browser.new_context(viewport={"width": 1920, "height": 1080}, locale="en-GB", timezone_id="Europe/Paris")
    page = context.new_page()
    origin = live_server.url.rstrip("/")
    watch = PageWatch(page=page, context=context, origin=origin)

    def route(route: Any) -> None:
        url = route.request.url
        if url.startswith(origin + "/") or url == origin or url.startswith(("data:", "blob:", "about:")):
            route.continue_()
        else:
            watch.external_requests.append(url)
            route.abort()

    context.route("**/*", route)
    page.on("console", lambda msg: watch.console_errors.append(f"{msg.text} @ {msg.location}") if msg.type == "error" else None)
    page.on("pageerror", lambda exc: watch.page_errors.append(str(exc)))
    page.on("requestfailed", lambda req: watch.failed_requests.append(f"{req.method} {req.url}: {req.failure}"))
    page.on("response", lambda resp: watch.bad_responses.append(f"{resp.status} {resp.url}") if resp.status >= 400 else None)
    try:
        yield watch
    finally:
        context.close()


@pytest.fixture
def browser_user(django_user_model: Any) -> Any:
    return django_user_model.objects.create_user("operator", password="correct horse battery staple")


@pytest.fixture
def login_cookie(page_watch: PageWatch, browser_user: Any) -> PageWatch:
    """Log the context in by giving it a real session cookie (the login form has its own test)."""
    from django.test import Client

    client = Client()
    client.force_login(browser_user)
    cookie = client.cookies["sessionid"]
    host = urlsplit(page_watch.origin).hostname
    page_watch.context.add_cookies([{"name": "sessionid", "value": cookie.value, "domain": host, "path": "/"}])
    return page_watch
