"""``python -m tests.soak``: the real product as several processes on this machine, with faults.

Starts, against one PostgreSQL database of its own (``hrw_soak``, flushed first) and its own
redis-server on a spare port: the emulator (in-process, real-time clock, optional ``--fault-rate``),
2 web processes (gunicorn), 3 Celery workers (``-n w1@%h`` ...), 2 beats (celery-redbeat lock) and an
SMTP sink (aiosmtpd). Kills the active beat and one worker mid-cycle (optionally stops every worker
for a while and restarts Redis), then prints: beat takeover seconds, polls per interval, rows lost
against the emulator's ground truth, duplicate emails, false status changes, BLIND pages and what
/healthz answered during the gaps. Exits 1 if rows were lost or an email was sent twice.

    python -m tests.soak --minutes 10 --fault-rate 0.1 --stop-workers-for 240 --restart-redis-at 420
    python -m tests.soak --fast --minutes 3     # short poll intervals (10 s) and lock timeout (10 s)
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path
from urllib.parse import urlparse

# --fast: intervals that show a takeover and a recovery within a few minutes (each can be overridden).
FAST = {
    "POLL_WORKERS_SECONDS": "10", "POLL_JOBS_SECONDS": "10", "POLL_LOGS_SECONDS": "10", "STATUS_REFRESH_SECONDS": "5",
    "BEAT_LOCK_TIMEOUT_SECONDS": "10", "CELERY_TASK_SOFT_TIME_LIMIT": "45", "CELERY_TASK_TIME_LIMIT": "60",
    "LASTSEEN_LATE_SECONDS": "60", "LASTSEEN_OFFLINE_SECONDS": "90", "ALERT_GROUP_WAIT_SECONDS": "0",
    # The ping (HybridWorkerPing) also keeps a worker's service "heard": with its production thresholds
    # (300/420 s) a stopped worker would not go down within a short run. Its 1-3 min metric latency is
    # harmless here: a live worker's lastSeen stays fresh.
    "POLL_PING_SECONDS": "30", "PING_LATE_SECONDS": "60", "PING_OFFLINE_SECONDS": "90",
    "ALERT_SEND_SECONDS": "5",
}
DEFAULT_DATABASE = "postgres://postgres@127.0.0.1:5432/hrw_soak"


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m tests.soak", description=__doc__.split("\n\n")[0])
    p.add_argument("--minutes", type=float, default=10.0, help="length of the faulty run (default 10)")
    p.add_argument("--fault-rate", type=float, default=0.0, help="share of emulator answers that fail (e.g. 0.1)")
    p.add_argument("--kill-beat-at", type=float, default=None, help="seconds into the run (default 35%%)")
    p.add_argument("--kill-worker-at", type=float, default=None, help="seconds into the run (default 55%%)")
    p.add_argument("--stop-workers-for", type=float, default=0.0, help="stop every Celery worker this long (issue 12: 240)")
    p.add_argument("--stop-workers-at", type=float, default=None, help="seconds into the run (default 65%%)")
    p.add_argument("--restart-redis-at", type=float, default=None, help="seconds into the run; off by default")
    p.add_argument("--redis-down-seconds", type=float, default=10.0)
    p.add_argument("--scenario-at", type=float, default=10.0, help="agent_stopped on one worker, seconds into the run (-1: none)")
    p.add_argument("--scenario-minutes", type=float, default=2.5)
    p.add_argument("--groups", type=int, default=3)
    p.add_argument("--workers", type=int, default=12)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--fast", action="store_true", help="10 s poll intervals and lock timeout (see FAST)")
    p.add_argument("--database-url", default=os.environ.get("SOAK_DATABASE_URL", DEFAULT_DATABASE),
                   help="a PostgreSQL database the soak owns (flushed at start); default " + DEFAULT_DATABASE)
    p.add_argument("--json", type=Path, default=None, help="also write the figures here")
    p.add_argument("--keep-logs", type=Path, default=None, help="write the processes' logs here (default: a temp dir)")
    return p.parse_args(argv)


def ensure_database(url: str) -> None:
    import psycopg

    parsed = urlparse(url)
    name = parsed.path.lstrip("/")
    admin = parsed._replace(path="/postgres").geturl()
    with psycopg.connect(admin, autocommit=True) as con:
        if not con.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            con.execute(f'CREATE DATABASE "{name}"')  # our own name, from the command line


def main(argv: list[str] | None = None) -> int:
    opts = parse(sys.argv[1:] if argv is None else argv)
    from tests.soak.services import SmtpSink, free_port

    run_dir = opts.keep_logs or Path(tempfile.mkdtemp(prefix="hrw-soak-"))
    run_dir.mkdir(parents=True, exist_ok=True)
    ensure_database(opts.database_url)
    redis_port, web_ports = free_port(), [free_port(), free_port()]
    smtp = SmtpSink()
    env = {
        "DATABASE_URL": opts.database_url, "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
        "HRW_VAR_DIR": str(run_dir / "var"), "EMAIL_HOST": "127.0.0.1", "EMAIL_PORT": str(smtp.port),
        "ALERT_RECIPIENTS": "soak@example.com", "SITE_URL": f"http://127.0.0.1:{web_ports[0]}",
        "CELERY_TASK_DEFAULT_QUEUE": "celery", "TZ": "UTC", "PYTHONUNBUFFERED": "1", "DEBUG": "false",
        "DJANGO_SETTINGS_MODULE": "dashboard.settings",
    }
    os.environ.update(env)
    if opts.fast:
        for key, value in FAST.items():
            os.environ.setdefault(key, value)
    import django

    django.setup()
    from tests.soak.run import Soak, dump, verdict

    soak = Soak(vars(opts), run_dir, dict(os.environ), redis_port, web_ports, smtp, lambda s: print(s, flush=True))
    try:
        result = soak.run()
    finally:
        soak.close()
        smtp.close()
    print(dump(result, opts.json))
    print(f"logs: {run_dir}")
    bad = verdict(result)
    print("FAIL: " + "; ".join(bad) if bad else "OK: 0 rows lost, 0 duplicate emails")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
