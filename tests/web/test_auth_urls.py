"""Walk the whole URL configuration: every URL, asked anonymously, must redirect to a login page or
answer 401 — except /healthz and the login pages themselves."""
from __future__ import annotations

import re

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, resolve
from django.urls.resolvers import RegexPattern, RoutePattern

SAMPLES = {"int": "1", "str": "x", "slug": "x", "path": "x/y", "uuid": "00000000-0000-0000-0000-000000000001"}
REGEX_CANDIDATES = ["1", "x", "auth", "workers", "dashboard", "x/y", ""]
# The only names that may be reached without credentials.
PUBLIC = {"healthz", "login", "logout", "admin:login", "admin:logout"}


def _route_piece(pattern: RoutePattern) -> str:
    return re.sub(r"<(?:(\w+):)?(\w+)>", lambda m: SAMPLES[m.group(1) or "str"], str(pattern))


def _regex_piece(pattern: RegexPattern) -> str:
    text = str(pattern).lstrip("^").rstrip("$").replace("\\Z", "")

    def fill(match: re.Match[str]) -> str:
        inner = match.group(2)
        for candidate in REGEX_CANDIDATES:
            if re.fullmatch(inner, candidate):
                return candidate
        raise AssertionError(f"no sample value for {match.group(0)!r}")

    return re.sub(r"\(\?P<(\w+)>((?:[^()]|\([^()]*\))*)\)", fill, text)


def walk(resolver: URLResolver, prefix: str = "", namespace: str = ""):
    for entry in resolver.url_patterns:
        pattern = entry.pattern
        piece = _route_piece(pattern) if isinstance(pattern, RoutePattern) else _regex_piece(pattern)
        if isinstance(entry, URLResolver):
            ns = f"{namespace}{entry.namespace}:" if entry.namespace else namespace
            yield from walk(entry, prefix + piece, ns)
        elif isinstance(entry, URLPattern):
            yield "/" + prefix + piece, f"{namespace}{entry.name}" if entry.name else None, entry


ALL_URLS = list(walk(get_resolver()))


def test_it_walks_the_included_modules_and_the_admin():
    names = {name for _url, name, _entry in ALL_URLS}
    assert {"overview", "group-detail", "worker-detail", "jobs", "api-groups", "api-jobs", "admin:index"} <= names
    assert len(ALL_URLS) > 40  # the admin alone contributes dozens


@pytest.mark.django_db
@pytest.mark.parametrize(("url", "name", "entry"), ALL_URLS, ids=[u for u, _n, _e in ALL_URLS])
def test_it_refuses_anonymous_requests(client, url, name, entry):
    assert resolve(url.split("?")[0]).func == entry.callback or entry.callback is None, f"sample URL {url} resolved elsewhere"
    if name in PUBLIC:
        return
    response = client.get(url)
    if response.status_code == 401:
        return
    assert response.status_code == 302, f"{url} ({name}) answered {response.status_code} anonymously"
    location = response["Location"]
    assert location.startswith(("/login/", "/admin/login/")), f"{url} ({name}) redirected to {location}"


@pytest.mark.django_db
def test_it_serves_healthz_without_login(client):
    assert client.get("/healthz").status_code in (200, 503)


@pytest.mark.django_db
def test_it_serves_the_login_page_without_login(client):
    response = client.get("/login/")
    assert response.status_code == 200
    assert b'name="password"' in response.content


@pytest.mark.django_db
@pytest.mark.parametrize(("url", "name", "entry"), ALL_URLS, ids=[u for u, _n, _e in ALL_URLS])
def test_it_refuses_anonymous_writes(client, url, name, entry):
    if name in PUBLIC:
        return
    response = client.post(url, {"x": "1"})
    # 405: the route takes no POST at all, so nothing was done.
    assert response.status_code in (302, 401, 405), f"{url} ({name}) answered POST with {response.status_code}"
    if response.status_code == 302:
        assert response["Location"].startswith(("/login/", "/admin/login/"))
