"""How every browser test and the soak start Chromium: Debian's build, headless, nothing phoning home."""
from __future__ import annotations

import os
from typing import Any

CHROMIUM = os.environ.get("HRW_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    # performance.memory with exact figures, and window.gc() for the soak's samples.
    "--enable-precise-memory-info",
    "--js-flags=--expose-gc",
]


def launch_chromium(playwright: Any) -> Any:
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
