"""Every answer carries a Content-Security-Policy: the default one, or the wall's stricter own."""
from __future__ import annotations

import pytest

from dashboard.middleware import DEFAULT_CSP
from dashboard.wall.views import WALL_CSP

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("url", ["/", "/jobs/", "/latency/", "/api/v1/groups", "/healthz"])
def test_it_sends_the_default_policy(client_in, url):
    response = client_in.get(url)
    assert response["Content-Security-Policy"] == DEFAULT_CSP
    assert "script-src 'self';" in DEFAULT_CSP and "unsafe-eval" not in DEFAULT_CSP


def test_it_sends_the_policy_on_a_login_redirect_and_a_404(client):
    assert client.get("/")["Content-Security-Policy"] == DEFAULT_CSP
    assert client.get("/login/")["Content-Security-Policy"] == DEFAULT_CSP
    assert client.get("/no-such-page/")["Content-Security-Policy"] == DEFAULT_CSP


def test_it_keeps_the_walls_stricter_policy(client_in):
    assert client_in.get("/wall/")["Content-Security-Policy"] == WALL_CSP
