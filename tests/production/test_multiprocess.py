"""More than one of everything (issue 14 item 2): the soak harness (``python -m tests.soak``) runs the
real product as 2 gunicorn web processes, 3 Celery workers and 2 beats (celery-redbeat lock) on
PostgreSQL and a private Redis, kills the beat holding the lock and one worker mid-cycle, and its
figures must show: the standby dispatched the next poll within one poll interval plus the lock
timeout (plus the standby's retry tick), no job or utilization sample lost against the emulator's
ground truth, no email sent twice, and the run's own failure (the Hybrid Worker service stopped on one
worker) paged exactly once with its cause. About 4 minutes on 2 cores.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlparse

import pytest

from tests.fixtures.services import need_service

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis]

ROOT = Path(__file__).resolve().parent.parent.parent
POLL_SECONDS, LOCK_TIMEOUT = 10, 10  # what --fast sets; passed explicitly below
RUN_MINUTES = 2.5


def _soak_database() -> str:
    """A database of the soak's own beside the test database (the harness flushes it)."""
    url = os.environ.get("DATABASE_URL", "")
    need_service("PostgreSQL", url.startswith("postgres"), "DATABASE_URL is not a PostgreSQL URL")
    parsed = urlparse(url)
    return parsed._replace(path=f"{parsed.path.rstrip('/')}_soak").geturl()


def test_a_killed_beat_and_worker_lose_no_row_and_send_no_email_twice(tmp_path):
    import shutil

    need_service("redis-server", shutil.which("redis-server") is not None, "the redis-server binary is not installed")
    out = tmp_path / "figures.json"
    env = dict(os.environ, POLL_WORKERS_SECONDS=str(POLL_SECONDS), POLL_JOBS_SECONDS=str(POLL_SECONDS),
               POLL_LOGS_SECONDS=str(POLL_SECONDS), BEAT_LOCK_TIMEOUT_SECONDS=str(LOCK_TIMEOUT))
    cmd = [sys.executable, "-m", "tests.soak", "--fast", "--minutes", str(RUN_MINUTES), "--kill-beat-at", "50",
           "--kill-worker-at", "80", "--scenario-minutes", "4", "--database-url", _soak_database(), "--json", str(out),
           "--keep-logs", str(tmp_path / "logs")]
    # The harness bounds each of its own waits; this is the outer deadline.
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert out.exists(), proc.stdout[-3000:] + proc.stderr[-3000:]
    figures = json.loads(out.read_text())

    # A successful jobs and Perf poll after the last fault was compared with the emulator's ground truth
    # (a 2.5-minute run of a small fleet creates only a handful of jobs, sometimes none).
    assert figures["rows"]["jobs_expected"] is not None and figures["rows"]["samples_expected"] > 0, figures["rows"]
    assert figures["rows"]["jobs_lost"] == 0, figures["rows"]
    assert figures["rows"]["samples_lost"] == 0, figures["rows"]
    # No email twice, and the run's own failure (the Hybrid Worker service stopped on one V2 worker)
    # paged exactly once, naming its cause, whichever of the three workers and two beats sent it.
    assert figures["email"]["duplicates"] == 0, figures["email"]
    assert figures["scenario"]["down_emails"] == 1, figures["scenario"]
    assert figures["scenario"]["cause_named"], figures["scenario"]
    assert figures["status"]["false_status_changes"] == 0, figures["status"]
    assert figures["blind"]["outside_gaps"] == 0, figures["blind"]
    max_loop = max(1, LOCK_TIMEOUT // 5)
    bound = POLL_SECONDS + LOCK_TIMEOUT + max_loop + 2  # + the dispatch-to-PollRun latency
    assert figures["beat"]["takeover_seconds"] is not None, figures["beat"]
    assert figures["beat"]["takeover_seconds"] <= bound, figures["beat"]
    # One beat dispatches at a time: about one poll cycle per interval (two beats both dispatching: ~2).
    assert figures["polls_per_interval"]["cycles_per_interval"] <= 1.2, figures["polls_per_interval"]
    assert proc.returncode == 0, proc.stdout[-3000:]
