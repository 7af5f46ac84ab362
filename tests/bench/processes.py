"""Real processes for the bench: a gunicorn web worker and a Celery worker, and their peak RSS."""
from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import CommandError


def measure_rss(figures: dict[str, Any], say: Callable[[str], None], env: dict[str, str], urls: list[str], n: int) -> None:
    """Peak RSS of a real gunicorn worker serving the pages and a real Celery worker polling."""
    from django.contrib.auth import get_user_model
    from django.test import Client

    # A session (a display token opens only the wall and the API, not the pages).
    viewer = Client()
    viewer.force_login(get_user_model().objects.get_or_create(username="bench-viewer")[0])
    session = viewer.cookies[settings.SESSION_COOKIE_NAME].value
    env = dict(env, PYTHONUNBUFFERED="1")
    figures["rss_mb"] = {}
    port = _free_port()
    web = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "dashboard.wsgi:application", "--bind", f"127.0.0.1:{port}",
         "--workers", "1", "--threads", "1", "--timeout", "120"],
        cwd=settings.BASE_DIR, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        _wait_http(f"http://127.0.0.1:{port}/healthz", timeout=60)
        for _ in range(max(3, n // 4)):
            for url in urls:
                req = urllib.request.Request(f"http://127.0.0.1:{port}{url}",
                                             headers={"Cookie": f"{settings.SESSION_COOKIE_NAME}={session}"})
                try:
                    urllib.request.urlopen(req, timeout=120).read()
                except urllib.error.HTTPError:
                    pass
        child = _children(web.pid)
        figures["rss_mb"]["web_worker"] = max((_vmhwm_mb(p) for p in child), default=_vmhwm_mb(web.pid))
    finally:
        web.terminate()
        web.wait(timeout=30)
    say(f"  web (gunicorn worker) peak RSS: {figures['rss_mb']['web_worker']} MB")

    # A Celery worker on its own queue runs one full poll cycle of the emulated fleet.
    from workers.fleet import tasks
    from workers.models import AutomationAccount, PollRun

    queue = f"bench-{os.getpid()}"
    wenv = dict(env, CELERY_TASK_DEFAULT_QUEUE=queue)
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "dashboard", "worker", "--pool", "solo", "-Q", queue,
         "--loglevel", "WARNING", "--without-heartbeat", "--without-gossip", "--without-mingle"],
        cwd=settings.BASE_DIR, env=wenv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        account = AutomationAccount.objects.get(name="bench-emulator")
        before = PollRun.objects.filter(account=account).count()
        groups = account.groups.filter(removed_at__isnull=True).count()
        expected = 1 + groups + 1 + 3  # groups, each group's workers, jobs, heartbeat/perf/events
        t0_monotonic = time.monotonic()
        for name in ("poll_all_workers", "poll_all_jobs", "poll_all_logs"):
            getattr(tasks, name).apply_async(queue=queue)
        deadline = time.monotonic() + 600
        # Fan-out tasks expire after one interval: when one worker cannot poll every group in
        # time the rest are dropped (the next cycle polls them first), so stop waiting once
        # nothing has been recorded for longer than that.
        stall = float(settings.POLL_WORKERS_SECONDS) + 10
        seen, progress_at = 0, time.monotonic()
        while seen < expected:
            if worker.poll() is not None or time.monotonic() > deadline or time.monotonic() - progress_at > stall:
                break
            time.sleep(0.5)  # waiting on another process's writes
            count = PollRun.objects.filter(account=account).count() - before
            if count != seen:
                seen, progress_at = count, time.monotonic()
        done = PollRun.objects.filter(account=account).count() - before
        figures["celery_poll_cycle"] = {"poll_runs": done, "expected": expected,
                                             "seconds": round(progress_at - t0_monotonic, 1)}
        figures["rss_mb"]["celery_worker"] = _vmhwm_mb(worker.pid)
    finally:
        worker.terminate()
        worker.wait(timeout=60)
    say(f"  Celery worker peak RSS: {figures['rss_mb']['celery_worker']} MB "
              f"({figures['celery_poll_cycle']})")


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_http(url: str, *, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            urllib.request.urlopen(url, timeout=5)
            return
        except urllib.error.HTTPError:
            return  # it answers (503 is fine: it is up)
        except OSError:
            if time.monotonic() > deadline:
                raise CommandError(f"{url} did not answer within {timeout} s") from None
            time.sleep(0.2)


def _children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _vmhwm_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None
