"""Tokens: issued once, stored hashed, accepted as Bearer on the API and ?token= on the wall only."""
from __future__ import annotations

import hashlib
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from dashboard.auth import issue_token
from dashboard.models import ApiToken

pytestmark = pytest.mark.django_db


def test_it_prints_the_token_once_and_stores_only_its_hash():
    out, err = StringIO(), StringIO()
    call_command("issue_token", "noc-wall", "--scope", "read", stdout=out, stderr=err)
    raw = out.getvalue().strip()
    token = ApiToken.objects.get(name="noc-wall")
    assert token.token_hash == hashlib.sha256(raw.encode()).hexdigest()
    assert raw not in {token.token_hash, token.prefix, token.name}
    assert raw.startswith(token.prefix) and len(token.prefix) < len(raw) // 3
    assert raw not in err.getvalue()


def test_it_refuses_an_unknown_scope():
    with pytest.raises(ValueError):
        issue_token(name="x", scope="admin")


def test_it_accepts_a_bearer_token_on_the_api(client, read_token):
    response = client.get("/api/v1/groups", HTTP_AUTHORIZATION=f"Bearer {read_token}")
    assert response.status_code == 200
    assert response.json() == {"groups": [], "generated_at": response.json()["generated_at"]}


def test_it_answers_401_json_without_credentials(client):
    response = client.get("/api/v1/groups")
    assert response.status_code == 401
    assert response.json() == {"error": "authentication required"}
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_it_refuses_a_wrong_bearer_token(client, read_token):
    response = client.get("/api/v1/groups", HTTP_AUTHORIZATION=f"Bearer {read_token[:-2]}xx")
    assert response.status_code == 401
    assert response.json()["error"] == "invalid or revoked token"


def test_it_refuses_a_revoked_bearer_token(client, read_token):
    ApiToken.objects.update(revoked_at=timezone.now())
    assert client.get("/api/v1/groups", HTTP_AUTHORIZATION=f"Bearer {read_token}").status_code == 401


def test_it_refuses_a_token_in_another_auth_scheme(client, read_token):
    assert client.get("/api/v1/groups", HTTP_AUTHORIZATION=f"Basic {read_token}").status_code == 401


def test_it_does_not_take_the_query_token_on_the_api(client, read_token):
    assert client.get(f"/api/v1/groups?token={read_token}").status_code == 401


def test_it_records_when_a_token_was_last_used(client, read_token):
    client.get("/api/v1/groups", HTTP_AUTHORIZATION=f"Bearer {read_token}")
    assert ApiToken.objects.get().last_used_at is not None


def test_it_opens_the_wall_with_a_query_token_through_a_cookie(client, read_token):
    response = client.get(f"/wall/?token={read_token}")
    assert response.status_code == 302 and response["Location"] == "/wall/"
    assert client.get("/wall/").status_code == 200


def test_it_refuses_a_query_token_on_other_pages_with_403(client, read_token):
    response = client.get(f"/?token={read_token}")
    assert response.status_code == 403
    assert b"only the wall" in response.content and read_token.encode() not in response.content


def test_it_refuses_a_revoked_query_token_with_401(client, read_token):
    ApiToken.objects.update(revoked_at=timezone.now())
    response = client.get(f"/wall/?token={read_token}")
    assert response.status_code == 401
    assert b"invalid or has been revoked" in response.content


def test_it_refuses_a_wrong_query_token_with_401(client, read_token):
    assert client.get("/wall/?token=hrw_not-a-real-token").status_code == 401


def test_it_refuses_writes_with_a_read_only_query_token(client, read_token):
    client.handler.enforce_csrf_checks = False
    assert client.post(f"/jobs/?token={read_token}").status_code == 403
    response = client.post(f"/wall/?token={read_token}")
    assert response.status_code == 401
    assert b"read-only token" in response.content


def test_it_redirects_anonymous_page_requests_to_login(client):
    response = client.get("/jobs/?status=Failed")
    assert response.status_code == 302
    assert response["Location"].startswith("/login/?next=/jobs/")


def test_it_lets_the_admin_revoke_tokens(admin_client, read_token):
    token = ApiToken.objects.get()
    response = admin_client.post(
        "/admin/dashboard/apitoken/", {"action": "revoke", "_selected_action": [token.pk]}, follow=True
    )
    assert response.status_code == 200
    token.refresh_from_db()
    assert token.revoked_at is not None


def test_it_logs_in_through_the_login_page(client, user):
    response = client.post("/login/", {"username": "alice", "password": "pw-not-secret-123"})
    assert response.status_code == 302 and response["Location"] == "/"
    assert client.get("/").status_code == 200
