"""What Chromium really moves for a chart page, served as in production: collected static files
through WhiteNoise (pytest-django's live server serves static files itself, uncompressed, so this
module runs its own live server thread without that handler). First load under 1.5 MB, the next
under 50 KB (hashed names are cached for good, so only the page itself is asked again)."""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from pytest_django.live_server_helper import LiveServer

from tests.web.static_support import collected_static_root

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def whitenoise_server(settings) -> Iterator[str]:
    settings.STATIC_ROOT = collected_static_root()
    server = LiveServer("127.0.0.1:0", start=False)
    server.thread.static_handler = lambda handler: handler  # WhiteNoise (in the middleware) serves /static/
    server._live_server_modified_settings.enable()
    server.start()
    try:
        yield server.url
    finally:
        server.stop()
        server._live_server_modified_settings.disable()


@pytest.fixture
def logged_in_page(browser: Any, whitenoise_server: str, django_user_model: Any) -> Iterator[Any]:
    from django.test import Client

    user = django_user_model.objects.create_user("operator", password="correct horse battery staple")
    client = Client()
    client.force_login(user)
    context = browser.new_context(viewport={"width": 1280, "height": 720})
    context.add_cookies([{"name": "sessionid", "value": client.cookies["sessionid"].value,
                          "domain": urlsplit(whitenoise_server).hostname, "path": "/"}])
    page = context.new_page()
    try:
        yield page
    finally:
        context.close()


def load(page: Any, url: str) -> dict[str, tuple[int, int, str]]:
    """url -> (status, bytes over the wire: headers + encoded body, content-encoding) for one navigation."""
    seen: list[Any] = []

    def finished(request: Any) -> None:
        seen.append(request)

    page.on("requestfinished", finished)
    response = page.goto(url, wait_until="networkidle")
    assert response is not None and response.status == 200
    page.wait_for_function("() => window.Plotly !== undefined")
    page.remove_listener("requestfinished", finished)
    moved = {}
    for request in seen:
        sizes = request.sizes()
        answer = request.response()
        if answer is None or answer.from_service_worker:
            continue
        moved[request.url] = (answer.status, sizes["responseHeadersSize"] + sizes["responseBodySize"],
                              answer.headers.get("content-encoding", ""))
    return moved


def test_a_chart_page_moves_under_1_5_mb_first_and_under_50_kb_next(logged_in_page, whitenoise_server):
    url = whitenoise_server + "/latency/"
    first = load(logged_in_page, url)
    plotly = [u for u in first if "/static/vendor/plotly.min." in u]
    assert len(plotly) == 1 and first[plotly[0]][2] in ("br", "gzip"), first
    first_total = sum(size for _status, size, _enc in first.values())
    assert first_total < 1_500_000, first

    # A new visit (not a reload, which revalidates on purpose): the hashed files come from the cache.
    second = load(logged_in_page, url)
    second_total = sum(size for _status, size, _enc in second.values())
    assert second_total < 50_000, second
    assert all("/static/" not in u or size == 0 for u, (_s, size, _e) in second.items()), second
