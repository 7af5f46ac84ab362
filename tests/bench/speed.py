"""Emulator speed figures through the real SDK clients (called by the bench command, or by hand).

    from tests.bench.speed import measure
    measure(workers=10_000, groups=200)

Starts the emulator as its own process (``manage.py azure_emulator``, as the demo runs it, so the server
and the client do not share one interpreter lock; ``in_process=True`` runs it in a thread instead), with a
manual clock and no faults, authenticates with a real
``ClientSecretCredential``, lists every group and every worker of every group (all nextLink pages)
through ``AutomationClient``, and runs one latest-heartbeat ``arg_max`` query over every computer through
``LogsQueryClient``. The SDK is used directly here on purpose: this measures the emulator, not our adapter.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from workers.emulator.testing import running_emulator

MANAGE_PY = Path(__file__).resolve().parents[2] / "manage.py"
START = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


@contextmanager
def emulator_process(*, workers: int, groups: int, page_size: int, history_days: float, seed: int,
                     directory: Path, startup_timeout: float = 300.0) -> Iterator[tuple[dict[str, str], Path, int]]:
    """Run ``manage.py azure_emulator`` in a child process; yields (connection dict, request log path)."""
    conn_file = directory / "emulator.json"
    log_file = directory / "requests.jsonl"
    cmd = [sys.executable, str(MANAGE_PY), "azure_emulator", "--port", "0", "--seed", str(seed),
           "--groups", str(groups), "--workers", str(workers), "--history-days", str(history_days),
           "--page-size", str(page_size), "--no-scenarios", "--manual-clock", "--start", START.isoformat(),
           "--connection-file", str(conn_file), "--request-log", str(log_file)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=os.environ.copy())
    try:
        deadline = time.monotonic() + startup_timeout
        while not conn_file.exists():
            if proc.poll() is not None:
                raise RuntimeError(f"the emulator exited: {proc.stderr.read().decode() if proc.stderr else ''}")
            if time.monotonic() > deadline:
                raise RuntimeError("the emulator did not start in time")
            time.sleep(0.05)  # waiting for another process to write a file; no event to wait on
        yield json.loads(conn_file.read_text()), log_file, proc.pid
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

HEARTBEAT_QUERY = (
    "Heartbeat | summarize arg_max(TimeGenerated, Category, OSType, Version, ComputerIP, _ResourceId) by Computer"
)


def measure(workers: int = 10_000, groups: int = 200, *, page_size: int = 100, history_minutes: int = 30,
            seed: int = 7, tmpdir: str | Path | None = None, in_process: bool = False) -> dict[str, Any]:
    """Timings in seconds: start-up, token, listing every worker, one heartbeat query (and their counts)."""
    from azure.identity import ClientSecretCredential
    from azure.mgmt.automation import AutomationClient
    from azure.monitor.query import LogsQueryClient, LogsQueryStatus

    with tempfile.TemporaryDirectory(dir=tmpdir) as directory:
        t0 = time.perf_counter()
        with _emulator(in_process, workers=workers, groups=groups, page_size=page_size,
                       history_days=history_minutes / 1440, seed=seed, directory=Path(directory)) as (c, log, pid):
            startup = time.perf_counter() - t0
            cred = ClientSecretCredential(c["tenant_id"], c["client_id"], c["client_secret"],
                                          authority=c["authority_host"], disable_instance_discovery=True,
                                          connection_verify=c["ca_bundle"])
            t = time.perf_counter()
            cred.get_token("https://management.azure.com/.default")
            cred.get_token(c["logs_audience"] + "/.default")
            token = time.perf_counter() - t
            arm = AutomationClient(cred, c["subscription_id"], base_url=c["arm_endpoint"],
                                   connection_verify=c["ca_bundle"], retry_total=0)
            logs = LogsQueryClient(cred, endpoint=c["logs_endpoint"], audience=c["logs_audience"],
                                   connection_verify=c["ca_bundle"], retry_total=0)
            rg, acct = c["resource_group"], c["automation_account"]

            t, cpu = time.perf_counter(), _cpu(pid)
            group_names = [g.name for g in arm.hybrid_runbook_worker_group.list_by_automation_account(rg, acct)]
            listed = 0
            for name in group_names:
                for _worker in arm.hybrid_runbook_workers.list_by_hybrid_runbook_worker_group(rg, acct, name):
                    listed += 1
            list_seconds = time.perf_counter() - t
            list_cpu = _cpu(pid) - cpu

            t, cpu = time.perf_counter(), _cpu(pid)
            result = logs.query_workspace(c["workspace_id"], HEARTBEAT_QUERY, timespan=timedelta(hours=1))
            query_seconds = time.perf_counter() - t
            query_cpu = _cpu(pid) - cpu
            if result.status != LogsQueryStatus.SUCCESS:
                raise RuntimeError(f"heartbeat query did not succeed: {result.status}")
            heartbeat_rows = len(result.tables[0].rows)
            requests = sum(1 for line in log.read_text().splitlines() if line.strip()) if log.exists() else 0
            arm.close()
            logs.close()
            cred.close()
    return {
        "emulator": "thread" if in_process else "process",
        "workers": workers,
        "groups": groups,
        "page_size": page_size,
        "startup_seconds": round(startup, 3),
        "token_seconds": round(token, 3),
        "list_workers_seconds": round(list_seconds, 3),
        "list_workers_cpu_seconds": round(list_cpu, 3),
        "workers_listed": listed,
        "groups_listed": len(group_names),
        "heartbeat_query_seconds": round(query_seconds, 3),
        "heartbeat_query_cpu_seconds": round(query_cpu, 3),
        "load_average_1min": round(os.getloadavg()[0], 2),
        "cpus": os.cpu_count(),
        "heartbeat_rows": heartbeat_rows,
        "requests": requests,
    }


def _cpu(pid: int | None) -> float:
    """CPU seconds used so far by this process plus, if given, the emulator child (Linux /proc).

    Wall times on a shared machine depend on everyone else's load; CPU seconds spent by the client and
    the server together are what the same work costs on an idle machine with one core for it.
    """
    total = time.process_time()
    if pid is not None:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, IndexError, ValueError):
            pass
    return total


@contextmanager
def _emulator(in_process: bool, *, workers: int, groups: int, page_size: int, history_days: float, seed: int,
              directory: Path) -> Iterator[tuple[dict[str, str], Path, int | None]]:
    if in_process:
        with running_emulator(seed=seed, groups=groups, workers=workers, history_days=history_days,
                              page_size=page_size, tmpdir=directory, start=START, scenarios=False) as emu:
            yield emu.connection, emu.request_log, None
    else:
        with emulator_process(workers=workers, groups=groups, page_size=page_size, history_days=history_days,
                              seed=seed, directory=directory) as pair:
            yield pair


if __name__ == "__main__":  # pragma: no cover - manual run
    w = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    g = int(sys.argv[2]) if len(sys.argv) > 2 else 200
    print(json.dumps(measure(workers=w, groups=g), indent=2))
