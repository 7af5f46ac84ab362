"""Files that hold a secret are mode 0600 from the moment they exist: the emulator's connection file
(a client secret), the development SECRET_KEY file, the demo's login file."""
from __future__ import annotations

import json
import os
import stat

import pytest


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_the_emulator_connection_file_is_0600(make_emulator):
    old = os.umask(0o022)
    try:
        emu = make_emulator(seed=5, groups=1, workers=2, scenarios=False)
    finally:
        os.umask(old)
    assert json.loads(emu.connection_file.read_text())["client_secret"]
    assert mode(emu.connection_file) == 0o600


def test_rewriting_it_over_an_old_world_readable_file_makes_it_0600(make_emulator, tmp_path):
    emu = make_emulator(seed=5, groups=1, workers=2, scenarios=False)
    target = tmp_path / "emulator.json"
    target.write_text("{}")
    target.chmod(0o644)
    (tmp_path / "emulator.json.tmp").write_text("left over")
    (tmp_path / "emulator.json.tmp").chmod(0o644)
    emu.server.write_connection_file(target)
    assert mode(target) == 0o600 and "client_secret" in target.read_text()


def test_the_development_secret_key_file_is_0600(tmp_path, monkeypatch):
    from dashboard import localstate

    monkeypatch.setenv("HRW_VAR_DIR", str(tmp_path))
    monkeypatch.delenv("SECRET_KEY", raising=False)
    localstate.prepare()
    assert mode(tmp_path / "secret_key") == 0o600


@pytest.mark.django_db
def test_the_demo_login_file_is_0600_even_if_an_old_one_was_not(tmp_path):
    from dashboard.management.commands.demo import Command

    (tmp_path / "demo-login.json").write_text(json.dumps({"username": "admin", "password": "pw-not-secret-123"}))
    (tmp_path / "demo-login.json").chmod(0o644)
    Command()._ensure_login(tmp_path)
    assert mode(tmp_path / "demo-login.json") == 0o600
