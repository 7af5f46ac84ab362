"""The soak's moving parts: child processes in their own sessions (killed as a group, never outliving
the harness), a private redis-server that persists (so a restart keeps the beat lock and schedule),
an aiosmtpd sink that records every email, and a /healthz sampler."""
from __future__ import annotations

import atexit
import email
import email.policy
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(condition: Callable[[], Any], what: str, timeout: float, step: float = 0.25) -> Any:
    """Poll ``condition`` until it is truthy (returned) or the deadline passes (RuntimeError)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(step)  # waiting on other processes, bounded by the deadline


@dataclass
class Child:
    name: str
    cmd: list[str]
    log: Path
    proc: subprocess.Popen[bytes] | None = None
    started: list[float] = field(default_factory=list)

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


class Processes:
    """Named child processes, each the leader of its own session and process group."""

    def __init__(self, cwd: Path, env: dict[str, str], logs: Path) -> None:
        self.cwd, self.env, self.logs = cwd, env, logs
        self.children: dict[str, Child] = {}
        atexit.register(self.stop_all)

    def start(self, name: str, cmd: list[str] | None = None) -> Child:
        child = self.children.get(name)
        if child is None:
            assert cmd is not None
            child = self.children[name] = Child(name, cmd, self.logs / f"{name}.log")
        assert not child.alive, f"{name} is already running"
        with child.log.open("ab") as out:
            child.proc = subprocess.Popen(child.cmd, cwd=self.cwd, env=self.env, stdin=subprocess.DEVNULL,
                                          stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        child.started.append(time.time())
        return child

    def kill(self, name: str, sig: int = signal.SIGKILL, wait: float = 30) -> float:
        """Signal the child's whole process group; returns the time of the signal (epoch seconds)."""
        child = self.children[name]
        at = time.time()
        if child.proc is None:
            return at
        try:
            os.killpg(child.proc.pid, sig)
        except ProcessLookupError:
            pass
        try:
            child.proc.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            os.killpg(child.proc.pid, signal.SIGKILL)
            child.proc.wait(timeout=10)
        self._reap_group(child.proc.pid)
        return at

    @staticmethod
    def _reap_group(pgid: int) -> None:
        """Grandchildren (prefork pool, gunicorn workers) of a killed leader: end them too."""
        try:
            os.killpg(pgid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

    def stop_all(self) -> None:
        for child in list(self.children.values()):
            if child.proc is None:
                continue
            if child.alive:
                try:
                    os.killpg(child.proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + 15
        for child in self.children.values():
            if child.proc is None:
                continue
            try:
                child.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            self._reap_group(child.proc.pid)
            if child.proc.poll() is None:
                child.proc.wait(timeout=10)


def redis_cmd(port: int, directory: Path) -> list[str]:
    # Append-only file: a restart (even a crash) keeps the beat lock, the schedule and queued tasks.
    return ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", str(directory),
            "--appendonly", "yes", "--appendfsync", "everysec", "--save", "", "--daemonize", "no"]


def redis_up(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def celery_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "celery", "-A", "dashboard", *args]


def gunicorn_cmd(port: int) -> list[str]:
    return [sys.executable, "-m", "gunicorn", "dashboard.wsgi:application", "--bind", f"127.0.0.1:{port}",
            "--workers", "1", "--threads", "2", "--timeout", "60"]


class SmtpSink:
    """aiosmtpd on loopback; keeps (epoch seconds, subject, recipients) of every email received."""

    def __init__(self) -> None:
        from aiosmtpd.controller import Controller

        self.port = free_port()
        self.received: list[tuple[float, str, str]] = []
        self._lock = threading.Lock()
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)
        self.controller.start()
        atexit.register(self.close)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd hook
        message = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        subject = " ".join(str(message["Subject"]).split())
        with self._lock:
            self.received.append((time.time(), subject, ",".join(sorted(envelope.rcpt_tos))))
        return "250 OK"

    def emails(self) -> list[tuple[float, str, str]]:
        with self._lock:
            return list(self.received)

    def close(self) -> None:
        try:
            self.controller.stop()
        except (AssertionError, RuntimeError):
            pass


class HealthSampler(threading.Thread):
    """GETs /healthz on every web port every ``every`` seconds: (epoch, port, HTTP status, body status, down)."""

    def __init__(self, ports: list[int], every: float = 2.0) -> None:
        super().__init__(daemon=True)
        self.ports, self.every = ports, every
        self.samples: list[tuple[float, int, int, str, list[str]]] = []
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.wait(self.every):
            for port in self.ports:
                self.samples.append((time.time(), port, *self._get(port)))

    @staticmethod
    def _get(port: int) -> tuple[int, str, list[str]]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as r:
                body = json.loads(r.read())
                return r.status, str(body.get("status")), list(body.get("down") or [])
        except urllib.error.HTTPError as exc:
            try:
                body = json.loads(exc.read())
                return exc.code, str(body.get("status")), list(body.get("down") or [])
            except ValueError:
                return exc.code, "not json", []
        except (OSError, ValueError):
            return 0, "no answer", []


def log_times(path: Path, needle: str) -> list[float]:
    """Epoch seconds of the log lines containing ``needle`` (lines start "YYYY-mm-dd HH:MM:SS,fff", UTC)."""
    out = []
    if not path.exists():
        return out
    for line in path.read_text(errors="replace").splitlines():
        head = line.lstrip("[")
        if needle in line and len(head) > 23:
            try:
                stamp = datetime.strptime(head[:23], "%Y-%m-%d %H:%M:%S,%f").replace(tzinfo=UTC)
            except ValueError:
                continue
            out.append(stamp.timestamp())
    return out
