"""The demo run's I/O: an SMTP sink that keeps bodies, the demo's HTTP pages and API (a logged-in
session), the emulator's control API, and the process tree the demo starts (to prove none is left)."""
from __future__ import annotations

import csv
import email
import email.policy
import io
import json
import os
import re
import time
from pathlib import Path
from typing import Any

import requests

from tests.demo_run.checks import Email
from tests.soak.services import SmtpSink


class BodySink(SmtpSink):
    """The soak's aiosmtpd sink, also keeping each email's plain-text body."""

    def __init__(self) -> None:
        self.bodies: list[Email] = []
        super().__init__()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd hook
        message = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        subject = " ".join(str(message["Subject"]).split())
        part = message.get_body(preferencelist=("plain",))
        text = part.get_content() if part is not None else ""
        with self._lock:
            self.bodies.append(Email(time.time(), subject, str(text)))
        return await super().handle_DATA(server, session, envelope)

    def mails(self) -> list[Email]:
        with self._lock:
            return list(self.bodies)


class Site:
    """A session logged in to the demo with the login it printed (var/demo-login.json)."""

    def __init__(self, base: str, var: Path) -> None:
        self.base = base.rstrip("/")
        login = json.loads((var / "demo-login.json").read_text())
        self.http = requests.Session()
        page = self.http.get(f"{self.base}/login/", timeout=60)
        page.raise_for_status()
        found = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
        if not found:
            raise RuntimeError("no CSRF token on the login page")
        done = self.http.post(f"{self.base}/login/", timeout=60, headers={"Referer": f"{self.base}/login/"},
                              data={"csrfmiddlewaretoken": found[1], "username": login["username"],
                                    "password": login["password"], "next": "/"})
        if done.status_code != 200 or "/login/" in done.url:
            raise RuntimeError(f"login failed: HTTP {done.status_code} at {done.url}")

    def json(self, path: str) -> Any:
        r = self.http.get(f"{self.base}{path}", timeout=120)
        r.raise_for_status()
        return r.json()

    def csv(self, path: str) -> list[dict[str, str]]:
        r = self.http.get(f"{self.base}{path}", timeout=120)
        r.raise_for_status()
        return list(csv.DictReader(io.StringIO(r.text)))


class Emulator:
    """The emulator's control API, found through the demo's connection file (var/emulator.json)."""

    def __init__(self, connection_file: Path) -> None:
        conn = json.loads(connection_file.read_text())
        ca = Path(conn.get("ca_bundle") or "")
        self.verify: str | bool = str(ca if ca.is_absolute() else connection_file.parent / ca) if conn.get("ca_bundle") else True
        self.base = str(conn["arm_endpoint"]).rstrip("/")
        token = requests.post(f"{conn['authority_host'].rstrip('/')}/{conn['tenant_id']}/oauth2/v2.0/token", timeout=60,
                              verify=self.verify, data={"grant_type": "client_credentials", "client_id": conn["client_id"],
                                                        "client_secret": conn["client_secret"]})
        token.raise_for_status()
        self.token = token.json()["access_token"]

    def scenarios(self) -> dict[str, Any]:
        r = requests.get(f"{self.base}/_emulator/scenarios", timeout=60, verify=self.verify,
                         headers={"Authorization": f"Bearer {self.token}"})
        r.raise_for_status()
        return dict(r.json())


def _proc_stat(pid: int) -> tuple[int, int] | None:
    """(ppid, process group) of a live process, None when it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw.rsplit(")", 1)[1].split()
    return int(fields[1]), int(fields[2])


def _all_pids() -> list[int]:
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def descendants(root: int) -> dict[int, int]:
    """Every live descendant of ``root``: pid -> process group."""
    table = {pid: st for pid in _all_pids() if (st := _proc_stat(pid)) is not None}
    found: dict[int, int] = {}
    frontier = [root]
    while frontier:
        parent = frontier.pop()
        for pid, (ppid, pgid) in table.items():
            if ppid == parent and pid not in found:
                found[pid] = pgid
                frontier.append(pid)
    return found


def leftovers(pids: set[int], groups: set[int]) -> list[int]:
    """Processes still alive that were seen as the demo's descendants or belong to their groups."""
    out = []
    for pid in _all_pids():
        st = _proc_stat(pid)
        if st is not None and (pid in pids or st[1] in groups):
            out.append(pid)
    return sorted(out)


def cpu_seconds(pids: list[int]) -> float:
    """CPU time (user + system, also of reaped children) of the live ``pids``: a figure the machine's
    other load does not inflate, unlike the wall time."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += sum(int(x) for x in fields[11:15])  # utime stime cutime cstime
    return total / tick


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())
