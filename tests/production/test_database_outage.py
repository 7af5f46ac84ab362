"""PostgreSQL down: a clear 503 page (no traceback) and a JSON 503 for the API, logged at most once a
minute; everything answers again once the database is back. In-process, new connections go to a
port where nothing listens; in a real gunicorn, the app is started against such a database."""
from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from django.conf import settings
from django.db import InterfaceError, OperationalError

from dashboard import errors
from dashboard.auth import issue_token
from tests.production.conftest import database_unreachable, free_port

PAGES = ["/", "/jobs/", "/latency/", "/alerts/", "/wall/", "/capacity/"]
START_DEADLINE_SECONDS = 60


@pytest.fixture
def logged_in(client, django_user_model):
    client.force_login(django_user_model.objects.create_user("carol", password="pw-not-secret-123"))
    return client


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_pages_answer_a_clear_503_and_the_api_json_while_the_database_is_down(logged_in, caplog):
    _token, raw = issue_token(name="api")
    caplog.set_level(logging.ERROR, logger="dashboard.errors")
    errors._last_logged[0] = float("-inf")
    with database_unreachable():
        for path in PAGES:
            response = logged_in.get(path)
            body = response.content.decode()
            assert response.status_code == 503, path
            assert response["Content-Type"].startswith("text/html") and response["Retry-After"] == "30"
            assert "Temporarily unavailable" in body and "Traceback" not in body and "OperationalError" not in body
        for path in ["/api/v1/groups", "/api/v1/wall", "/api/v1/jobs"]:
            response = logged_in.get(path, HTTP_AUTHORIZATION=f"Bearer {raw}")
            assert response.status_code == 503, path
            assert response.json() == {"error": "database unavailable"}
        anonymous = logged_in.__class__().get("/api/v1/groups", HTTP_AUTHORIZATION=f"Bearer {raw}")
        assert anonymous.status_code == 503 and anonymous.json() == {"error": "database unavailable"}
        health = logged_in.get("/healthz")
        assert health.status_code == 503
        assert health.json()["database"] == "error" and health.json()["status"] == "down"
    outage_logs = [r for r in caplog.records if r.name == "dashboard.errors"]
    assert len(outage_logs) == 1, "logged once, not per request"
    assert logged_in.get("/").status_code == 200
    assert logged_in.get("/api/v1/groups").status_code == 200


def _wait_listening(port: int, proc: subprocess.Popen) -> None:
    end = time.monotonic() + START_DEADLINE_SECONDS
    while time.monotonic() < end:
        assert proc.poll() is None, "gunicorn exited"
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/login/", timeout=5).read()
            return
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.1)  # polling until it listens, bounded by the deadline
    raise AssertionError("gunicorn did not start")


def _get(url: str, headers: dict[str, str]) -> tuple[int, str, bytes]:
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.headers["Content-Type"], response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers["Content-Type"], exc.read()


def test_a_real_gunicorn_started_without_its_database_answers_503(tmp_path: Path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL",)}
    env.update(DATABASE_URL=f"postgres://postgres@127.0.0.1:{free_port()}/hrw_gone", HRW_VAR_DIR=str(tmp_path),
               DEBUG="false", PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "dashboard.wsgi:application", "--bind", f"127.0.0.1:{port}", "--workers", "1"],
        cwd=settings.BASE_DIR, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    try:
        _wait_listening(port, proc)
        base = f"http://127.0.0.1:{port}"
        status, content_type, body = _get(f"{base}/", {"Cookie": "sessionid=abcdefghijklmnopqrstuvwxyz012345"})
        assert status == 503 and content_type.startswith("text/html")
        assert b"Temporarily unavailable" in body and b"Traceback" not in body
        status, content_type, body = _get(f"{base}/api/v1/groups", {"Authorization": "Bearer hrw_whatever"})
        assert status == 503 and content_type == "application/json" and json.loads(body) == {"error": "database unavailable"}
        status, content_type, body = _get(f"{base}/healthz", {})
        assert status == 503 and json.loads(body)["database"] == "error"
    finally:
        proc.terminate()
        _out, err = proc.communicate(timeout=30)
    log = err.decode(errors="replace")
    assert log.count("database unavailable, answering 503") == 1, log


@pytest.mark.parametrize(("path", "exc", "status", "content_type", "text"), [
    ("/", OperationalError("server closed the connection"), 503, "text/html", "Temporarily unavailable"),
    ("/api/v1/groups", InterfaceError("connection already closed"), 503, "application/json", "database unavailable"),
    ("/", RuntimeError("secret detail"), 500, "text/html", "Server error (500)"),
    ("/api/v1/groups", RuntimeError("secret detail"), 500, "application/json", "internal error"),
])
def test_the_500_handler_answers_an_exception_raised_outside_a_view(rf, path, exc, status, content_type, text):
    """handler500 is what Django calls for an exception in a middleware (e.g. a session save while the
    database is down), inside its ``except`` block."""
    try:
        raise exc
    except Exception:  # noqa: BLE001 - the handler reads the exception being handled
        response = errors.server_error(rf.get(path))
    body = response.content.decode()
    assert response.status_code == status and response["Content-Type"].startswith(content_type)
    assert text in body and "secret detail" not in body and "Traceback" not in body
