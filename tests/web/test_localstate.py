"""Local state for a fresh checkout (dashboard/localstate.py) and settings that only read the environment."""
from __future__ import annotations

import ast
import os
import stat
import subprocess
import sys
from pathlib import Path

from dashboard import localstate

ROOT = Path(__file__).resolve().parents[2]
PRINT_KEY = "import os, dashboard.localstate as l; l.prepare(); print(os.environ['SECRET_KEY'])"


def test_it_makes_the_folders_and_a_private_key(tmp_path, monkeypatch):
    monkeypatch.setenv("HRW_VAR_DIR", str(tmp_path))
    monkeypatch.delenv("SECRET_KEY", raising=False)
    localstate.prepare()
    for folder in ("staticfiles", "celery-results", "broker/out", "broker/processed", "broker/control"):
        assert (tmp_path / folder).is_dir(), folder
    key_file = tmp_path / "secret_key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert os.environ["SECRET_KEY"] == key_file.read_text().strip() != ""


def test_it_keeps_a_key_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("HRW_VAR_DIR", str(tmp_path))
    monkeypatch.setenv("SECRET_KEY", "from-the-environment")
    localstate.prepare()
    assert os.environ["SECRET_KEY"] == "from-the-environment"
    assert not (tmp_path / "secret_key").exists()


def test_processes_starting_together_agree_on_one_key(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "SECRET_KEY"} | {"HRW_VAR_DIR": str(tmp_path)}
    procs = [subprocess.Popen([sys.executable, "-c", PRINT_KEY], cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
             for _ in range(4)]
    keys = {p.communicate(timeout=60)[0].strip() for p in procs}
    assert keys == {(tmp_path / "secret_key").read_text().strip()}
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".secret_key")] == []


def test_settings_do_nothing_but_read_the_environment():
    tree = ast.parse((ROOT / "dashboard" / "settings.py").read_text())
    side_effects = {"mkdir", "write_text", "write_bytes", "chmod", "open", "touch", "unlink", "makedirs"}
    calls = [
        node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
        for node in ast.walk(tree) if isinstance(node, ast.Call)
    ]
    assert sorted(set(calls) & side_effects) == []
