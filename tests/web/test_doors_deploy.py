"""`DEBUG=false manage.py check --deploy` prints no warning with the production settings documented in
docs/configuration.md (that very block, read from the file), and warns without them; the HTTPS
settings come from the environment and take effect."""
from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

ROOT = Path(settings.BASE_DIR)


def documented_production_settings() -> dict[str, str]:
    text = (ROOT / "docs" / "configuration.md").read_text()
    block = re.search(r"### Production settings\n.*?```\n(.*?)```", text, re.S)
    assert block, "docs/configuration.md has no production settings block"
    values = dict(line.split("=", 1) for line in block.group(1).splitlines() if "=" in line)
    assert values.pop("SECRET_KEY").startswith("<")  # a placeholder: each deployment makes its own
    return values | {"SECRET_KEY": secrets.token_urlsafe(50)}


def run(args: list[str], env_values: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    # A clean environment: no HTTPS settings of ours, and not the async-unsafe switch a browser test may leave set.
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SECURE_", "SESSION_", "CSRF_", "DEBUG")) and k != "DJANGO_ALLOW_ASYNC_UNSAFE"}
    env.update(env_values, HRW_VAR_DIR=str(tmp_path), LOG_LEVEL="WARNING")
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120, check=False)


def test_check_deploy_is_clean_with_the_documented_production_settings(tmp_path):
    result = run(["check", "--deploy", "--fail-level", "WARNING"], documented_production_settings(), tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout
    assert "WARNING" not in result.stdout + result.stderr


def test_check_deploy_warns_without_them(tmp_path):
    result = run(["check", "--deploy"], {"DEBUG": "false", "SECRET_KEY": secrets.token_urlsafe(50)}, tmp_path)
    for code in ("security.W004", "security.W008", "security.W012", "security.W016"):
        assert code in result.stderr + result.stdout


def test_the_https_settings_are_read_from_the_environment(tmp_path):
    script = ("import django; django.setup(); from django.conf import settings as s; "
              "print(s.SECURE_SSL_REDIRECT, s.SECURE_HSTS_SECONDS, s.SECURE_PROXY_SSL_HEADER, s.SESSION_COOKIE_SECURE, "
              "s.CSRF_COOKIE_SECURE, s.CSRF_TRUSTED_ORIGINS)")
    env = documented_production_settings() | {"DJANGO_SETTINGS_MODULE": "dashboard.settings"}
    result = run(["shell", "-c", script], env, tmp_path)
    assert result.stdout.split("\n")[-2] == (
        "True 31536000 ('HTTP_X_FORWARDED_PROTO', 'https') True True ['https://hrw.example.com']"), result.stderr


@pytest.mark.django_db
def test_https_is_enforced_when_switched_on(client, settings):
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_HSTS_SECONDS = 31536000
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

    plain = client.get("/login/")
    secure = client.get("/login/", HTTP_X_FORWARDED_PROTO="https")
    probe = client.get("/healthz")

    assert plain.status_code == 301 and plain["Location"] == "https://testserver/login/"
    assert secure.status_code == 200 and secure["Strict-Transport-Security"].startswith("max-age=31536000")
    assert probe.status_code in (200, 503)  # load balancers probe over plain HTTP


def test_a_malformed_hsts_value_stops_start_up(tmp_path):
    result = run(["check"], {"SECURE_HSTS_SECONDS": "a year"}, tmp_path)
    assert result.returncode != 0 and "SECURE_HSTS_SECONDS must be an integer" in result.stderr
