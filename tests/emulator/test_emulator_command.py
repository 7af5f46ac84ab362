"""``manage.py azure_emulator`` as a user runs it: a child process, a connection file, the real SDK."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from azure.identity import ClientSecretCredential
from azure.mgmt.automation import AutomationClient
from azure.monitor.query import LogsQueryClient

MANAGE = Path(__file__).resolve().parents[2] / "manage.py"
KEYS = {"arm_endpoint", "logs_endpoint", "authority_host", "ca_bundle", "tenant_id", "client_id", "client_secret",
        "subscription_id", "resource_group", "automation_account", "workspace_id"}


def wait_for(path: Path, proc: subprocess.Popen, deadline_s: float = 120) -> None:
    deadline = time.monotonic() + deadline_s
    while not path.exists():
        assert proc.poll() is None, proc.stderr.read().decode()
        assert time.monotonic() < deadline, "the emulator did not write its connection file"
        time.sleep(0.1)  # polling another process's file: there is no event to wait on


@pytest.mark.slow
def test_the_command_serves_a_fleet_described_by_its_connection_file(tmp_path):
    conn_file = tmp_path / "conn.json"
    log = tmp_path / "requests.log"
    proc = subprocess.Popen(
        [sys.executable, str(MANAGE), "azure_emulator", "--port", "0", "--seed", "7", "--groups", "8",
         "--workers", "60", "--history-days", "0.5", "--page-size", "7", "--connection-file", str(conn_file),
         "--request-log", str(log)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    try:
        wait_for(conn_file, proc)
        c = json.loads(conn_file.read_text())
        assert KEYS <= set(c)
        cred = ClientSecretCredential(c["tenant_id"], c["client_id"], c["client_secret"],
                                      authority=c["authority_host"], disable_instance_discovery=True,
                                      connection_verify=c["ca_bundle"])
        arm = AutomationClient(cred, c["subscription_id"], base_url=c["arm_endpoint"], connection_verify=c["ca_bundle"])
        rg, acct = c["resource_group"], c["automation_account"]
        groups = [g.name for g in arm.hybrid_runbook_worker_group.list_by_automation_account(rg, acct)]
        workers = [w for g in groups for w in arm.hybrid_runbook_workers.list_by_hybrid_runbook_worker_group(rg, acct, g)]
        jobs = list(arm.job.list_by_automation_account(rg, acct))
        logs = LogsQueryClient(cred, endpoint=c["logs_endpoint"], audience=c["logs_audience"],
                               connection_verify=c["ca_bundle"])
        hb = logs.query_workspace(c["workspace_id"], "Heartbeat | summarize arg_max(TimeGenerated, *) by Computer",
                                  timespan=timedelta(hours=1))
        assert len(groups) == 8
        assert len(workers) == 60
        assert jobs
        assert len(hb.tables[0].rows) >= 55  # every worker not stopped by a scenario right now
        logged = [json.loads(line) for line in log.read_text().splitlines()]
        assert any(entry.get("kql", "").startswith("Heartbeat") for entry in logged)
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0
    assert b"Azure emulator listening on https://127.0.0.1:" in out


def test_the_command_rejects_bad_options(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(MANAGE), "azure_emulator", "--workers", "2", "--groups", "5",
         "--connection-file", str(tmp_path / "c.json")],
        capture_output=True, timeout=120,
    )
    assert proc.returncode != 0
    assert b"--workers must be at least --groups" in proc.stderr
