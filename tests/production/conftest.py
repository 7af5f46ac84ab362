"""Our own services for outage tests: a private redis-server we can stop and start, and a way to
make the database unreachable for the code under test without touching the machine's PostgreSQL."""
from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import redis
from django.db import connections

from tests.fixtures.services import need_service

START_DEADLINE_SECONDS = 20


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RedisServer:
    """A redis-server subprocess on its own port (no persistence), stopped and started at will."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.url = f"redis://127.0.0.1:{port}/0"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        assert self.proc is None, "already running"
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--daemonize", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        client = redis.Redis(host="127.0.0.1", port=self.port, socket_connect_timeout=0.5)
        end = time.monotonic() + START_DEADLINE_SECONDS
        try:
            while True:
                try:
                    if client.ping():
                        return
                except redis.exceptions.ConnectionError:
                    if self.proc.poll() is not None or time.monotonic() > end:
                        raise AssertionError(f"redis-server on port {self.port} did not start") from None
                time.sleep(0.05)  # polling until it answers, bounded by the deadline
        finally:
            client.close()

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.terminate()
        self.proc.wait(timeout=10)
        self.proc = None

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port)


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    """A private redis-server on a spare port (never the shared one), stopped at the end."""
    need_service("redis-server", shutil.which("redis-server") is not None, "the redis-server binary is not installed")
    server = RedisServer(free_port())
    server.start()
    try:
        yield server
    finally:
        server.stop()


def redis_cache_settings(url: str, *, down_retry_seconds: float = 0) -> dict:
    return {"default": {"BACKEND": "dashboard.resilient_cache.ResilientRedisCache", "LOCATION": url,
                        "OPTIONS": {"DOWN_RETRY_SECONDS": down_retry_seconds}}}


@contextmanager
def database_unreachable() -> Iterator[None]:
    """New connections of every thread go to a port where nothing listens (SQLite: a file in a folder
    that does not exist), as if the database server were down; restored afterwards.

    Django's connections share their settings dict, so a connection opened after this point (in this
    thread, or a Celery worker / live server thread) fails to connect exactly as it would against a
    stopped server.
    """
    conn = connections["default"]
    saved = dict(conn.settings_dict)
    conn.close()
    if "sqlite" in conn.settings_dict["ENGINE"]:
        conn.settings_dict["NAME"] = "/nonexistent-hrw-dir/db.sqlite3"
    else:
        conn.settings_dict.update(HOST="127.0.0.1", PORT=str(free_port()))
    try:
        yield
    finally:
        conn.close()
        conn.settings_dict.clear()
        conn.settings_dict.update(saved)
