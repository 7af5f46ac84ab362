"""``manage.py rollup [--hours N]``: recompute the hourly rollups of the last N hours now.

The same services as the ``rollup_recent`` task; idempotent, so it can run beside the beat.
"""
from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.utils import timezone

from workers.fleet.rollups import rollup_utilization
from workers.latency.rollups import rollup_jobs


class Command(BaseCommand):
    help = "Recompute hourly utilization (and job) rollups for the last N hours."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--hours", type=int, default=24, help="How many hours back (default 24, at least 1).")

    def handle(self, *args: Any, **options: Any) -> None:
        hours = max(1, options["hours"])
        until = timezone.now()
        since = until - timedelta(hours=hours)
        rows = rollup_utilization(since, until)
        self.stdout.write(f"utilization: {rows} worker-hours over the last {hours} h")
        result = rollup_jobs(since, until)
        self.stdout.write(f"jobs: {result.hourly_rows} hourly rows over the last {hours} h")
