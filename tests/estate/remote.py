"""One emulator per Automation account, each in a process of its own.

In Azure every subscription is served by its own machines; in one Python process three emulators
share one interpreter lock, and at 10,000 workers the harness, not the product, was the bottleneck.
So each account's emulator runs in a child process (``spawn``: nothing of the harness's threads or
database connections is inherited) and the harness asks it, over a pipe, for what it needs: the ARM
bucket's counts while the run goes on, and the ground truth at the end. ``RemoteEmulator.simulation``
answers the attributes the figures read from a ``FleetSimulation`` (``groups``, ``workers``, ``jobs``,
``rows()``, ``history_start``, ``subscription_id``), so the same figures serve both.
"""
from __future__ import annotations

import multiprocessing
import threading
from multiprocessing.connection import Connection
from pathlib import Path
from types import SimpleNamespace
from typing import Any

# What the child answers. Each takes the emulator handle and the request's arguments; results are
# plain values (pickled over the pipe).
_ANSWERS: dict[str, Any] = {
    "counters": lambda emu: {"granted": emu.server.read_bucket.granted if emu.server.read_bucket else None,
                             "throttled": emu.server.throttled_count},
    "groups": lambda emu: [g.name for g in emu.simulation.groups],
    "workers": lambda emu: [(w.index, w.group, w.name) for w in emu.simulation.workers],
    "jobs": lambda emu: [(j.job_id, j.created) for j in list(emu.simulation.jobs)],
    "rows": lambda emu, sql, params: emu.simulation.rows(sql, params),
    "history_start": lambda emu: emu.simulation.history_start,
}


def _serve(conn: Connection, build: dict[str, Any], bucket: int, refill: float) -> None:
    """The child: build and start the emulator, say where it listens, then answer until told to stop
    (or until the harness is gone: the pipe's end)."""
    from workers.emulator.testing import build_emulator

    try:
        emu = build_emulator(**build)
    except BaseException as exc:
        conn.send(("error", f"{type(exc).__name__}: {exc}"))
        raise
    try:
        emu.server.configure_arm_throttle(bucket, refill)
        conn.send(("ok", {"connection_file": str(emu.connection_file), "url": emu.url,
                          "subscription_id": emu.simulation.subscription_id}))
        while True:
            try:
                op, args = conn.recv()
            except (EOFError, OSError):
                break
            if op == "close":
                break
            try:
                conn.send(("ok", _ANSWERS[op](emu, *args)))
            except Exception as exc:  # a bad question must not end the emulator mid-run
                conn.send(("error", f"{type(exc).__name__}: {exc}"))
    finally:
        emu.close()
        conn.close()


class RemoteError(RuntimeError):
    pass


class RemoteEmulator:
    """An emulator in a child process; ``close()`` stops it."""

    def __init__(self, *, bucket: int, refill: float, start_timeout: float = 300.0, **build: Any) -> None:
        ctx = multiprocessing.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._lock = threading.Lock()
        self.process = ctx.Process(target=_serve, args=(child, build, bucket, refill), daemon=True,
                                   name=f"emulator-{Path(build['directory']).name}")
        self.process.start()
        child.close()
        if not self._conn.poll(start_timeout):
            self.close()
            raise RemoteError(f"the emulator in {build['directory']} did not start in {start_timeout:.0f} s")
        status, info = self._conn.recv()
        if status != "ok":
            self.close()
            raise RemoteError(f"the emulator in {build['directory']} failed to start: {info}")
        self.connection_file = Path(info["connection_file"])
        self.url: str = info["url"]
        self.simulation = _Truth(self, info["subscription_id"])

    @property
    def pid(self) -> int | None:
        return self.process.pid

    def ask(self, op: str, *args: Any, timeout: float = 300.0) -> Any:
        with self._lock:
            if not self.process.is_alive():
                raise RemoteError(f"the emulator process {self.pid} exited ({self.process.exitcode})")
            self._conn.send((op, args))
            if not self._conn.poll(timeout):
                raise RemoteError(f"the emulator process {self.pid} did not answer {op!r} in {timeout:.0f} s")
            status, value = self._conn.recv()
        if status != "ok":
            raise RemoteError(f"the emulator process {self.pid} could not answer {op!r}: {value}")
        return value

    def counters(self) -> dict[str, Any]:
        return self.ask("counters")

    def close(self) -> None:
        try:
            with self._lock:
                self._conn.send(("close", ()))
        except (OSError, ValueError):
            pass
        self.process.join(timeout=60)
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(timeout=10)
        self._conn.close()


class _Truth:
    """The ground truth of a remote emulator's simulation, read when asked (at the end of the run)."""

    def __init__(self, remote: RemoteEmulator, subscription_id: str) -> None:
        self._remote, self.subscription_id = remote, subscription_id

    @property
    def groups(self) -> list[SimpleNamespace]:
        return [SimpleNamespace(name=n) for n in self._remote.ask("groups")]

    @property
    def workers(self) -> list[SimpleNamespace]:
        return [SimpleNamespace(index=i, group=g, name=n) for i, g, n in self._remote.ask("workers")]

    @property
    def jobs(self) -> list[SimpleNamespace]:
        return [SimpleNamespace(job_id=j, created=c) for j, c in self._remote.ask("jobs")]

    @property
    def history_start(self) -> Any:
        return self._remote.ask("history_start")

    def rows(self, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
        return self._remote.ask("rows", sql, params)
