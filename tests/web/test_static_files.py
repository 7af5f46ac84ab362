"""Static files: hashed names after collectstatic, served precompressed (brotli, gzip) and cached for
good (immutable); plain names, with a short cache, without collectstatic or for a file changed since;
/favicon.ico. Through the real middleware stack (WhiteNoise) with the test client."""
from __future__ import annotations

import os
import re
from io import StringIO

import pytest
from django.contrib.staticfiles.storage import staticfiles_storage
from django.core.management import call_command
from django.test import Client

from tests.web.static_support import collected_static_root

HASHED = re.compile(r'(?:src|href)="(/static/[^"]+\.[0-9a-f]{12}\.(?:js|css|svg))"')
IMMUTABLE = "max-age=315360000, public, immutable"


def body(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


@pytest.fixture
def collected(settings):
    settings.STATIC_ROOT = collected_static_root()
    return settings.STATIC_ROOT


@pytest.fixture
def chart_page(collected, client_in: Client) -> str:
    response = client_in.get("/latency/")
    assert response.status_code == 200
    return response.content.decode()


def test_pages_link_hashed_names_after_collectstatic(chart_page):
    linked = set(HASHED.findall(chart_page))
    for name in ("css/app", "js/app", "js/charts", "vendor/plotly.min", "favicon"):
        assert any(url.startswith(f"/static/{name}.") for url in linked), (name, linked)
    assert 'src="/static/vendor/plotly.min.js"' not in chart_page


def test_a_chart_page_first_load_is_under_1_5_mb_and_every_asset_is_immutable(chart_page, client):
    """What a browser moves on a first visit (brotli accepted), and that nothing static is asked again."""
    total = len(chart_page.encode())
    for url in set(HASHED.findall(chart_page)):
        response = client.get(url, HTTP_ACCEPT_ENCODING="gzip, deflate, br")
        assert response.status_code == 200, url
        assert response["Cache-Control"] == IMMUTABLE, url
        if not url.endswith(".svg") or len(body(response)) > 1024:
            assert response.get("Content-Encoding") == "br", url
        total += len(body(response))
    assert total < 1_500_000
    # The next load moves the page alone: every asset above is cached for good.
    assert len(chart_page.encode()) < 50_000


@pytest.mark.parametrize(("accept", "encoding", "limit"), [
    ("br", "br", 1_200_000), ("gzip", "gzip", 1_500_000), ("", None, 5_000_000)])
def test_plotly_is_served_in_the_encoding_the_client_accepts(chart_page, client, accept, encoding, limit):
    url = next(u for u in HASHED.findall(chart_page) if "plotly" in u)
    response = client.get(url, HTTP_ACCEPT_ENCODING=accept)
    assert response.get("Content-Encoding") == encoding
    assert "Accept-Encoding" in response["Vary"]
    size = len(body(response))
    assert size < limit
    if encoding is None:
        assert size > 4_000_000  # the real file, so the two limits above mean something


def test_unhashed_names_are_served_from_the_sources_with_a_short_cache(collected, client):
    response = client.get("/static/js/app.js")
    assert response.status_code == 200
    assert "immutable" not in response["Cache-Control"]
    with open(os.path.join(os.path.dirname(__file__), "../../static/js/app.js"), "rb") as source:
        assert body(response) == source.read()


def test_favicon_ico_is_served_at_the_root(client):
    response = client.get("/favicon.ico")
    assert response.status_code == 200
    assert response["Content-Type"] in ("image/x-icon", "image/vnd.microsoft.icon")
    assert body(response)[:4] == b"\x00\x00\x01\x00"  # an ICO header


def test_without_collectstatic_pages_use_plain_names(settings, tmp_path, client_in):
    (tmp_path / "empty").mkdir()
    settings.STATIC_ROOT = tmp_path / "empty"
    response = client_in.get("/latency/")
    assert response.status_code == 200
    page = response.content.decode()
    assert 'src="/static/vendor/plotly.min.js"' in page
    assert client_in.get("/static/vendor/plotly.min.js").status_code == 200


def test_debug_uses_plain_names(collected, settings):
    settings.DEBUG = True
    assert staticfiles_storage.url("css/app.css") == "/static/css/app.css"
    settings.DEBUG = False
    assert re.fullmatch(r"/static/css/app\.[0-9a-f]{12}\.css", staticfiles_storage.url("css/app.css"))


def test_a_file_changed_after_collectstatic_is_served_by_its_plain_name(settings, tmp_path):
    source = tmp_path / "src"
    (source / "js").mkdir(parents=True)
    (source / "js" / "x.js").write_text("var x = 1;\n")
    settings.STATICFILES_DIRS = [source]
    settings.STATIC_ROOT = tmp_path / "collected"
    call_command("collectstatic", interactive=False, verbosity=0, stdout=StringIO())
    assert re.fullmatch(r"/static/js/x\.[0-9a-f]{12}\.js", staticfiles_storage.url("js/x.js"))
    manifest = settings.STATIC_ROOT / "staticfiles.json"
    later = manifest.stat().st_mtime + 10
    os.utime(source / "js" / "x.js", (later, later))
    settings.STATIC_ROOT = settings.STATIC_ROOT  # a fresh storage (as in a new process) reads the manifest again
    assert staticfiles_storage.url("js/x.js") == "/static/js/x.js"
