"""The local state a fresh checkout needs under ``var/`` (or ``HRW_VAR_DIR``): folders for the SQLite
database, the serverless broker, static files and mail, and a development secret key.

The entry points (``manage.py``, ``dashboard/wsgi.py`` and the Celery app in ``dashboard/celery.py``)
call :func:`prepare` before Django reads its settings, so that ``dashboard/settings.py`` only reads
the environment. Safe to run any number of times, from several processes at once.
"""
from __future__ import annotations

import os
import secrets
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
BROKER_FOLDERS = ("out", "processed", "control")


def var_dir() -> Path:
    """Where local state lives: ``HRW_VAR_DIR``, else ``var/`` in the checkout (git-ignored)."""
    return Path(os.environ.get("HRW_VAR_DIR") or BASE_DIR / "var")


def prepare() -> None:
    """Create the ``var/`` folders and, unless ``SECRET_KEY`` is set, a random key kept in
    ``var/secret_key`` (mode 0600), exported as ``SECRET_KEY`` for this process and its children."""
    var = var_dir()
    for folder in (var / "staticfiles", var / "celery-results", *(var / "broker" / f for f in BROKER_FOLDERS)):
        folder.mkdir(parents=True, exist_ok=True)
    if not os.environ.get("SECRET_KEY"):
        os.environ["SECRET_KEY"] = _local_secret_key(var / "secret_key")


def _local_secret_key(path: Path) -> str:
    """Read the key file, creating it first if needed. Two processes starting together agree on one
    key: each writes its own temporary file and links it into place; the loser reads the winner's."""
    if not path.exists():
        temporary = path.with_name(f".{path.name}.{os.getpid()}")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(50))
        try:
            os.link(temporary, path)
        except FileExistsError:
            pass
        finally:
            temporary.unlink()
    return path.read_text().strip()
