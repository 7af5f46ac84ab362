"""Celery finds every task by autodiscovery over the capability packages (no import guards)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from django.conf import settings

ROOT = Path(__file__).resolve().parent.parent
# A fresh interpreter: in this one, other tests have imported task modules already.
LIST_TASKS = """
import json, django
django.setup()
from dashboard.celery import app
app.loader.import_default_modules()
print(json.dumps(sorted(name for name in app.tasks if not name.startswith("celery."))))
"""


def test_every_beat_entry_names_a_task_that_autodiscovery_finds():
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="dashboard.settings")
    out = subprocess.run([sys.executable, "-c", LIST_TASKS], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=120, check=True).stdout
    found = set(json.loads(out.strip().splitlines()[-1]))
    scheduled = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert scheduled - found == set()
    assert {"workers.latency.tasks.rollup_job_latency", "workers.alerting.tasks.process_alert_outbox"} <= found
