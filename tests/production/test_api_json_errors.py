"""Under /api/ every answer is JSON, errors included: unknown URLs, wrong methods, auth failures,
CSRF refusals and exceptions in a view."""
from __future__ import annotations

import pytest
from django.test import Client
from django.urls import path

from dashboard import urls as root_urls
from dashboard.auth import api_view

pytestmark = pytest.mark.django_db


@api_view
def _boom(request):
    raise RuntimeError("secret detail https://internal.example/x")


urlpatterns = [*root_urls.urlpatterns, path("api/v1/boom", _boom)]
handler500 = root_urls.handler500


def _is_json_error(response, status: int) -> dict:
    assert response.status_code == status
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert set(body) == {"error"} and body["error"]
    return body


def test_an_unknown_api_url_is_a_json_404(client_in):
    assert _is_json_error(client_in.get("/api/v1/nope"), 404) == {"error": "not found"}
    assert _is_json_error(client_in.get("/api/v2/groups"), 404) == {"error": "not found"}


def test_a_page_404_stays_html(client_in):
    response = client_in.get("/no-such-page/")
    assert response.status_code == 404 and response["Content-Type"].startswith("text/html")


def test_a_wrong_method_is_a_json_405_with_allow(client_in):
    response = client_in.delete("/api/v1/groups")
    assert _is_json_error(response, 405) == {"error": "method not allowed"}
    assert "GET" in response["Allow"]


def test_missing_and_bad_tokens_are_json_401(client):
    response = client.get("/api/v1/groups")
    assert _is_json_error(response, 401) == {"error": "authentication required"}
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert _is_json_error(client.get("/api/v1/wall", HTTP_AUTHORIZATION="Bearer hrw_nope"), 401)


def test_a_csrf_refusal_is_json(user):
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    assert _is_json_error(client.post("/api/v1/groups", {}), 403) == {"error": "forbidden"}


def test_bad_input_is_a_json_400(client_in):
    assert _is_json_error(client_in.get("/api/v1/jobs?since=yesterday-ish"), 400)


@pytest.mark.urls(__name__)
def test_an_exception_in_a_view_is_a_json_500_without_details(client_in, caplog):
    response = client_in.get("/api/v1/boom")
    assert _is_json_error(response, 500) == {"error": "internal error"}
    assert b"internal.example" not in response.content
    assert any("internal error answering GET /api/v1/boom" in r.getMessage() for r in caplog.records)
