"""``manage.py demo`` as a real process tree (emulator, gunicorn, Celery worker and beat, on SQLite and
the filesystem broker in a private var/): the URL and the login are the last lines it prints, service
output goes to var/log/<name>.log, ``manage.py scenario`` starts a failure in it, and every process it
started stops on SIGINT (even when SIGINT was ignored at launch, as ``demo &`` in a script leaves it),
on SIGTERM, and when the demo itself is killed.

No sleeps: lines are read through a queue with a timeout, processes are waited on (pidfds for the
ones that are not our children) with a timeout.
"""
from __future__ import annotations

import os
import queue
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ("emulator", "web", "celery-worker", "celery-beat")
READY_SECONDS = 240
STOP_SECONDS = 60

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def demo_env(var: Path) -> dict[str, str]:
    # SQLite and the filesystem broker in a private var/: nothing shared with other tests or a real demo.
    drop = {"DATABASE_URL", "REDIS_URL", "SQLITE_PATH", "SITE_URL", "PORT", "SECRET_KEY", "EMAIL_HOST"}
    return {k: v for k, v in os.environ.items() if k not in drop} | {"HRW_VAR_DIR": str(var), "PYTHONUNBUFFERED": "1"}


def ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@dataclass
class Demo:
    proc: subprocess.Popen
    var: Path
    lines: list[str] = field(default_factory=list)
    _queue: queue.Queue = field(default_factory=queue.Queue)

    def start_reader(self) -> None:
        def read() -> None:
            assert self.proc.stdout is not None
            for line in self.proc.stdout:
                self._queue.put(line.rstrip("\n"))
            self._queue.put(None)
        threading.Thread(target=read, daemon=True).start()

    def wait_for_line(self, text: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self._queue.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                pytest.fail(f"no {text!r} within {timeout:.0f} s; output so far:\n" + "\n".join(self.lines))
            if line is None:
                pytest.fail(f"the demo exited ({self.proc.wait()}) before {text!r}:\n" + "\n".join(self.lines))
            self.lines.append(line)
            if text in line:
                return

    def rest(self) -> list[str]:
        """Every line after the demo has exited."""
        while (line := self._queue.get(timeout=STOP_SECONDS)) is not None:
            self.lines.append(line)
        return self.lines


@pytest.fixture(scope="module")
def demo_var(tmp_path_factory) -> Path:
    """One var/ for the module's demos, one after the other (as restarts): static files are collected once."""
    return tmp_path_factory.mktemp("demo") / "var"


@pytest.fixture
def start_demo(demo_var):
    started: list[Demo] = []

    def start() -> Demo:
        var = demo_var
        cmd = [sys.executable, "manage.py", "demo", "--port", str(free_port()), "--history-days", "0"]
        proc = subprocess.Popen(cmd, cwd=ROOT, env=demo_env(var), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, text=True, preexec_fn=ignore_sigint)
        demo = Demo(proc, var)
        started.append(demo)
        demo.start_reader()
        demo.wait_for_line("Log in as", READY_SECONDS)
        return demo

    yield start
    for demo in started:  # a failed test must not leave the tree running
        for pid, _fd in tree(demo.proc.pid):
            try:
                os.killpg(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        if demo.proc.poll() is None:
            demo.proc.kill()
        demo.proc.wait(timeout=STOP_SECONDS)


def processes() -> dict[int, tuple[int, int, str]]:
    """pid -> (ppid, pgid, state) of every process on the machine."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        found[int(entry)] = (int(fields[1]), int(fields[2]), fields[0])
    return found


def tree(root: int) -> list[tuple[int, int]]:
    """(pid, pidfd) of every descendant of ``root``, and of every member of their process groups."""
    table = processes()
    family = {root}
    grew = True
    while grew:
        grew = False
        for pid, (ppid, pgid, _state) in table.items():
            if pid not in family and (ppid in family or (pgid in family and pgid != root)):
                family.add(pid)
                grew = True
    family.discard(root)
    out = []
    for pid in sorted(family):
        try:
            out.append((pid, os.pidfd_open(pid)))
        except ProcessLookupError:
            pass
    return out


def assert_all_gone(members: list[tuple[int, int]], timeout: float) -> None:
    """Wait (on pidfds, with a deadline) until every process has exited."""
    deadline = time.monotonic() + timeout
    alive = dict(members)
    while alive:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        ready, _, _ = select.select(list(alive.values()), [], [], remaining)
        for fd in ready:
            pid = next(p for p, f in alive.items() if f == fd)
            os.close(fd)
            del alive[pid]
    table = processes()
    still = {pid: table.get(pid) for pid in alive if table.get(pid, (0, 0, "Z"))[2] != "Z"}
    assert not still, f"still running after {timeout:.0f} s: {still}"


def service_leaders(demo: Demo) -> dict[int, int]:
    """The demo's direct children (one per service, each leading its own process group)."""
    table = processes()
    return {pid: pgid for pid, (ppid, pgid, _s) in table.items() if ppid == demo.proc.pid}


def test_it_prints_the_url_and_login_last_and_keeps_service_output_in_var_log(start_demo):
    demo = start_demo()
    assert demo.lines[-2].startswith("HRW monitor is running: http://127.0.0.1:")
    assert demo.lines[-1].startswith("Log in as 'admin' with password ")
    assert f"Service output goes to {demo.var / 'log'}/" in "\n".join(demo.lines)
    leaders = service_leaders(demo)
    assert len(leaders) == len(SERVICES)
    assert all(pid == pgid for pid, pgid in leaders.items()), "each service leads its own process group"

    members = tree(demo.proc.pid)
    demo.proc.send_signal(signal.SIGINT)  # ignored at launch: the demo must have installed its own handler
    assert demo.proc.wait(timeout=STOP_SECONDS) == 0
    assert_all_gone(members, STOP_SECONDS)
    out = demo.rest()
    assert out[-1] == "All demo processes stopped."
    # Banners went to the logs, not the screen.
    screen = "\n".join(out)
    assert "Starting gunicorn" not in screen and "Listening at" not in screen
    assert "Listening at: http://127.0.0.1:" in (demo.var / "log" / "web.log").read_text()
    assert "Azure emulator listening on https://" in (demo.var / "log" / "emulator.log").read_text()
    for name in SERVICES:
        assert (demo.var / "log" / f"{name}.log").is_file(), name


def test_scenario_starts_a_failure_in_the_running_demo(start_demo):
    demo = start_demo()
    # As the README's tour has it.
    done = subprocess.run([sys.executable, "manage.py", "scenario", "site_down", "hrw-win-dmz", "--minutes", "20"],
                          cwd=ROOT, env=demo_env(demo.var), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "Started site_down on hrw-win-dmz for 20 minutes" in done.stdout
    again = subprocess.run([sys.executable, "manage.py", "scenario", "meteor", "hrw-win-dmz"],
                           cwd=ROOT, env=demo_env(demo.var), capture_output=True, text=True, timeout=120)
    assert again.returncode != 0
    assert "unknown scenario kind 'meteor'" in again.stderr


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_every_process_stops_when_the_demo_is_terminated_or_killed(start_demo, signum):
    demo = start_demo()
    members = tree(demo.proc.pid)
    assert len(members) >= len(SERVICES)
    demo.proc.send_signal(signum)
    code = demo.proc.wait(timeout=STOP_SECONDS)
    assert code == (0 if signum == signal.SIGTERM else -signal.SIGKILL)
    # SIGKILL leaves no clean-up to the demo: the kernel signals each service as its parent dies.
    assert_all_gone(members, STOP_SECONDS)
