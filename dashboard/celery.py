"""The Celery application. Each capability package of ``workers`` keeps its tasks in ``tasks.py``;
``autodiscover_tasks`` imports them when a worker or beat starts."""
import os

from celery import Celery

from dashboard.localstate import prepare

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dashboard.settings")
# The Celery app is the entry point of worker and beat processes (and is imported with the dashboard
# package by every other process): local folders and the development key before settings load.
prepare()

# The capability packages whose ``tasks`` modules hold Celery tasks.
TASK_PACKAGES = ["workers.fleet", "workers.alerting", "workers.latency", "workers.capacity"]

app = Celery("dashboard")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(TASK_PACKAGES)
