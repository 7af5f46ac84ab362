"""Dev-only speed tools, kept out of the product's apps.

    python -m tests.bench [options]                 # speed figures at fleet scale (``make bench``)
    python -m tests.bench alert-latency [options]   # outage-to-email latency, in real time
"""
from __future__ import annotations

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dashboard.settings")
    import django

    django.setup()
    argv = sys.argv[1:]
    if argv[:1] == ["alert-latency"]:
        from tests.bench.alert_latency import Command

        argv, name = argv[1:], "alert-latency"
    else:
        from tests.bench.command import Command  # type: ignore[assignment]

        name = "bench"
    Command().run_from_argv(["python -m tests.bench", name, *argv])


if __name__ == "__main__":
    main()
