"""Issue 13, "Done when", second bullet, run small: ``python -m tests.estate`` polls a 300-worker
estate in 3 Automation accounts (3 emulators, each its own subscription and ARM read bucket) with the
production poll intervals, but with each emulator's bucket far below what our own throttle assumes
(3 reads, refilled 0.5/s, against Azure's 250 and 25/s), so ARM really answers 429s and our client
must honour Retry-After and the remaining-reads header. The figures must show: 429s happened, no
group, worker, job or utilization sample lost against the emulators' ground truth, and no group's
newest successful worker poll older than one interval beyond its schedule for longer than one
interval. The jobs and Log Analytics polls run every 30 s (production: 60 s) so the drain after the
run is short; the worker polls keep their production 30 s. About 3 to 4 minutes on a busy 2-core
machine; the full run is ``python -m tests.estate --minutes 30``.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlparse

import pytest

from tests.fixtures.services import need_service

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis]

ROOT = Path(__file__).resolve().parent.parent.parent


def _estate_database() -> str:
    """A database of the run's own beside the test database (the harness flushes it)."""
    url = os.environ.get("DATABASE_URL", "")
    need_service("PostgreSQL", url.startswith("postgres"), "DATABASE_URL is not a PostgreSQL URL")
    parsed = urlparse(url)
    return parsed._replace(path=f"{parsed.path.rstrip('/')}_estate").geturl()


def test_a_throttled_estate_in_three_accounts_loses_no_row_and_keeps_every_group_fresh(tmp_path):
    need_service("redis-server", shutil.which("redis-server") is not None, "the redis-server binary is not installed")
    out = tmp_path / "figures.json"
    cmd = [sys.executable, "-m", "tests.estate", "--workers", "300", "--groups", "15", "--accounts", "3",
           "--minutes", "1", "--arm-bucket", "3", "--arm-refill", "0.5", "--celery-workers", "1",
           "--concurrency", "2", "--database-url", _estate_database(), "--json", str(out),
           "--keep-logs", str(tmp_path / "logs")]
    # The harness bounds each of its own waits; this is the outer deadline.
    env = dict(os.environ, POLL_JOBS_SECONDS="30", POLL_LOGS_SECONDS="30")
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert out.exists(), proc.stdout[-3000:] + proc.stderr[-3000:]
    figures = json.loads(out.read_text())

    assert figures["accounts"] == 3 and figures["workers"] == 300, figures
    # ARM throttled for real, and our client saw it.
    assert figures["arm"]["emulator_429s"] > 0, figures["arm"]
    assert figures["arm"]["ours_hrw_arm_throttled_total"] > 0, figures["arm"]
    # Nothing lost against the ground truth; jobs and samples compared after a poll past the run.
    for name, rows in figures["rows"].items():
        assert rows["groups_expected"] == 5 and rows["workers_expected"] == 100, (name, rows)
        assert rows["jobs_expected"] is not None and rows["samples_expected"] > 0, (name, rows)
        for kind in ("groups", "workers", "jobs", "samples"):
            assert rows[f"{kind}_lost"] == 0, (name, kind, rows)
    assert figures["rows_lost"] == 0
    # Polling kept up under the throttle: every group polled, none stale longer than one interval.
    stale = figures["staleness"]
    assert stale["groups"] == 15 and stale["never_polled_count"] == 0, stale
    assert stale["longest_stale_seconds"] <= stale["interval_seconds"], stale
    assert figures["polls"]["workers"]["ok"] > 0 and figures["polls"]["jobs"]["ok"] > 0, figures["polls"]
    assert proc.returncode == 0, proc.stdout[-3000:]
