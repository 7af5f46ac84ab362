"""The emulator server's settings: paging, faults, query limits, credentials, request log."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

LOGS_AUDIENCE = "https://api.loganalytics.io"


@dataclass
class EmulatorConfig:
    page_size: int = 100
    fault_rate: float = 0.0
    random_fault_kinds: tuple[str, ...] = ("429", "503", "504", "slow", "partial", "reset")
    retry_after: float = 1.0
    slow_seconds: float = 2.0
    max_rows: int = 500_000
    query_timeout: float = 180.0  # Log Analytics' default server timeout; Prefer: wait=N lowers it
    tenant_id: str = ""
    client_id: str = ""
    client_secret: str = ""
    token_lifetime: int = 3599
    request_log: Path | None = None
    fault_seed: int = 0
