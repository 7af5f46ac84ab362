"""``python manage.py analyze_capacity [--window 24h|7d|30d]``: compute the correlation findings and the
group capacity now, in the foreground (the same service the beat task calls), and print a summary."""
from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from workers.capacity.correlation import WINDOWS, compute_findings


class Command(BaseCommand):
    help = "Compute CPU/memory-vs-delay findings and group capacity for one window or all of them."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--window", choices=list(WINDOWS), help="Only this window (default: all).")

    def handle(self, *args, **options) -> None:
        now = timezone.now()
        windows = [options["window"]] if options["window"] else list(WINDOWS)
        for key in windows:
            try:
                run = compute_findings(key, now)
            except ValueError as exc:
                raise CommandError(str(exc)) from exc
            flagged = run.findings.filter(flagged=True).count()
            self.stdout.write(
                f"{key}: {run.groups_examined} groups, {run.pairs_examined} pairs examined, {flagged} finding(s), {run.duration_ms} ms"
            )
