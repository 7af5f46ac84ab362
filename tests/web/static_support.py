"""``collectstatic`` once per test process into a private folder (compressing plotly takes ~20 s), for
the tests that check hashed names, compression and caching (tests/web, tests/browser)."""
from __future__ import annotations

import functools
import tempfile
from io import StringIO
from pathlib import Path

from django.core.management import call_command
from django.test import override_settings


@functools.cache
def collected_static_root() -> Path:
    root = Path(tempfile.mkdtemp(prefix="hrw-static-"))
    with override_settings(STATIC_ROOT=root):
        call_command("collectstatic", interactive=False, verbosity=0, stdout=StringIO())
    return root
