"""``python -m tests.estate``: issue 13's estate, polled for real under ARM's token bucket.

Starts, against one PostgreSQL database of its own (``hrw_estate``, flushed first) and its own
redis-server on a spare port: one emulator per Automation account (each in a process of its own,
real-time clock; each its own subscription and principal, so its own ARM read bucket,
``--arm-bucket``/``--arm-refill``, Azure's 250 and 25/s by default), Celery workers and one beat
with the production poll intervals, and an SMTP sink. Polls for ``--minutes``, drains, then prints: rows lost against the emulators' ground
truth (groups, workers, jobs, utilization samples), the longest time any group was stale, the 429s
(each emulator's count and our ``hrw_arm_throttled_total``), ARM reads per hour per subscription,
poll runs per kind, CPU seconds per process and the load average. Exits 1 if a row was lost or a
group was stale longer than one poll interval.

    python -m tests.estate --minutes 30                       # 10,000 workers, 500 groups, 3 accounts
    python -m tests.estate --workers 300 --groups 15 --minutes 2 --arm-bucket 4 --arm-refill 1
"""
from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
from pathlib import Path

DEFAULT_DATABASE = "postgres://postgres@127.0.0.1:5432/hrw_estate"


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m tests.estate", description=__doc__.split("\n\n")[0])
    p.add_argument("--minutes", type=float, default=30.0, help="length of the measured run (default 30)")
    p.add_argument("--workers", type=int, default=10_000, help="hybrid workers in all (default 10,000)")
    p.add_argument("--accounts", type=int, default=3, help="Automation accounts, at most 4,000 workers each (default 3)")
    p.add_argument("--groups", type=int, default=500, help="hybrid worker groups in all, incl. one System group "
                                                          "per account (default 500)")
    p.add_argument("--arm-bucket", type=int, default=250, help="each emulator's ARM read bucket (Azure: 250)")
    p.add_argument("--arm-refill", type=float, default=25.0, help="its refill per second (Azure: 25)")
    p.add_argument("--scenarios", action="store_true", help="the emulator's default failure scenarios (off by default: "
                                                            "a static fleet makes the ground truth exact)")
    p.add_argument("--celery-workers", type=int, default=2, help="Celery worker processes (default 2)")
    p.add_argument("--concurrency", type=int, default=10, help="prefork pool size of each (default 10: the Log "
                   "Analytics, jobs and ping polls of 3 big accounts take tens of seconds each and must not "
                   "hold every slot)")
    p.add_argument("--product-nice", type=int, default=0, help="run Celery at this nice value (e.g. 5) so the "
                   "emulators, standing in for Azure, are not starved on a shared machine")
    p.add_argument("--sample-every", type=float, default=10.0, help="seconds between stale-group samples (default 10)")
    p.add_argument("--startup-timeout", type=float, default=600.0, help="seconds to wait for every group's first poll")
    p.add_argument("--drain-factor", type=float, default=3.0, help="wait at most this many poll intervals (+120 s) "
                   "for the jobs and perf polls after the run")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--database-url", default=os.environ.get("ESTATE_DATABASE_URL", DEFAULT_DATABASE),
                   help="a PostgreSQL database the run owns (flushed at start); default " + DEFAULT_DATABASE)
    p.add_argument("--json", type=Path, default=None, help="also write the figures here")
    p.add_argument("--keep-logs", type=Path, default=None, help="write the processes' logs here (default: a temp dir)")
    opts = p.parse_args(argv)
    if opts.accounts < 1 or opts.groups < opts.accounts or opts.workers < opts.groups:
        p.error("need at least one group per account and one worker per group")
    return opts


def summary(result: dict) -> list[str]:
    st, arm = result["staleness"], result["arm"]
    lines = [f"estate: {result['workers']} workers, {result['groups']} groups, {result['accounts']} accounts, "
             f"{result['minutes']:g} min, scenarios {'on' if result['scenarios'] else 'off'}; {result['celery']}",
             f"ARM bucket: emulator {result['arm_bucket']['emulator']} per subscription; ours {result['arm_bucket']['ours']}",
             f"rows lost: {result['rows_lost']}  "
             + "; ".join(f"{n}: groups {r['groups_lost']}/{r['groups_expected']}, workers {r['workers_lost']}/"
                         f"{r['workers_expected']}, jobs {r.get('jobs_lost')}/{r.get('jobs_expected')}, samples "
                         f"{r.get('samples_lost')}/{r.get('samples_expected')}" for n, r in result["rows"].items()),
             f"stale: longest {st['longest_stale_seconds']:g} s over 2x{st['interval_seconds']:g} s (product flag after "
             f"{st['product_flags_after_seconds']:g} s: longest {st['longest_flagged_seconds']:g} s); oldest good poll "
             f"{st['max_age_seconds']:g} s; sampled max stale groups {st['sampled']['max_stale_groups']}",
             f"429s: emulators {arm['emulator_429s']} ({arm['emulator_429s_in_run']} in the run), ours "
             f"hrw_arm_throttled_total {arm['ours_hrw_arm_throttled_total']}",
             "ARM reads/hour per subscription: " + ", ".join(f"{s['account']} {s['reads_per_hour']}" for s in arm["per_subscription"]),
             "polls: " + ", ".join(f"{k} {v['ok']} ok/{v['failed']} failed" for k, v in sorted(result["polls"].items())),
             "CPU s: " + ", ".join(f"{k} {v}" for k, v in result["cpu_seconds"].items()),
             f"load average: {result['load_average']}"]
    return lines


def main(argv: list[str] | None = None) -> int:
    opts = parse(sys.argv[1:] if argv is None else argv)
    # SIGTERM (and SIGINT, even when started in the background) end the run through the cleanup below.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    signal.signal(signal.SIGINT, signal.default_int_handler)
    from tests.soak.__main__ import ensure_database
    from tests.soak.services import SmtpSink, free_port

    run_dir = opts.keep_logs or Path(tempfile.mkdtemp(prefix="hrw-estate-"))
    run_dir.mkdir(parents=True, exist_ok=True)
    ensure_database(opts.database_url)
    redis_port = free_port()
    smtp = SmtpSink()
    env = {
        "DATABASE_URL": opts.database_url, "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
        "HRW_VAR_DIR": str(run_dir / "var"), "EMAIL_HOST": "127.0.0.1", "EMAIL_PORT": str(smtp.port),
        "ALERT_RECIPIENTS": "estate@example.com", "CELERY_TASK_DEFAULT_QUEUE": "celery", "TZ": "UTC",
        "PYTHONUNBUFFERED": "1", "DEBUG": "false", "DJANGO_SETTINGS_MODULE": "dashboard.settings",
    }
    os.environ.update(env)
    import django

    django.setup()
    from tests.estate.run import Estate, verdict
    from tests.soak.run import dump

    estate = Estate(vars(opts), run_dir, dict(os.environ), redis_port, smtp, lambda s: print(s, flush=True))
    try:
        result = estate.run()
    finally:
        estate.close()
        smtp.close()
    print(dump(result, opts.json))
    print("\n".join(summary(result)))
    print(f"logs: {run_dir}")
    bad = verdict(result)
    print("FAIL: " + "; ".join(bad) if bad else "OK: 0 rows lost, no group stale longer than one interval")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
