"""In a real gunicorn with its access log on, a wall opened with ``?token=`` and left refreshing puts
the token in exactly one log line (the redirect that swaps it for a cookie); the API by Bearer
header puts it in none."""
from __future__ import annotations

import http.cookiejar
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from django.conf import settings

ROOT = Path(settings.BASE_DIR)
pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _manage(env: dict[str, str], *args: str) -> str:
    result = subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=300, check=True)
    return result.stdout


def _wait_ready(url: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert proc.poll() is None, "gunicorn exited"
        try:
            urllib.request.urlopen(url, timeout=2).read()
            return
        except urllib.error.HTTPError:
            return  # it answers (503 before any poll is still an answer)
        except OSError:
            time.sleep(0.2)  # not listening yet; bounded by the deadline
    raise AssertionError("gunicorn did not start")


def test_the_token_is_in_one_access_log_line_only(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "SECRET_KEY")}
    env.update(HRW_VAR_DIR=str(tmp_path), LOG_LEVEL="WARNING")
    _manage(env, "migrate", "--noinput", "-v", "0")
    raw = _manage(env, "issue_token", "NOC wall").strip()
    log = tmp_path / "access.log"
    port = _free_port()
    web = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "dashboard.wsgi:application", "--bind", f"127.0.0.1:{port}",
         "--workers", "1", "--access-logfile", str(log)],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_ready(f"{base}/healthz", web)
        browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))

        wall = browser.open(f"{base}/wall/?theme=dark&token={raw}", timeout=60)
        assert wall.status == 200 and wall.geturl() == f"{base}/wall/?theme=dark"
        assert raw not in wall.read().decode()
        for _ in range(3):  # the wall's refreshes, carried by the cookie
            assert browser.open(f"{base}/api/v1/wall", timeout=60).status == 200
        api = urllib.request.Request(f"{base}/api/v1/groups", headers={"Authorization": f"Bearer {raw}"})
        assert urllib.request.urlopen(api, timeout=60).status == 200
    finally:
        web.terminate()
        web.wait(timeout=30)

    lines = log.read_text().splitlines()
    assert len(lines) >= 6
    with_token = [line for line in lines if raw in line]
    assert len(with_token) == 1 and '" 302 ' in with_token[0], with_token
