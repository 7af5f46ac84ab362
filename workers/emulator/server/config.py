"""The emulator server's settings: paging, faults, query limits, credentials, request log, job filter
mode, ARM read throttling."""
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
    # "lenient": every filter of the odata grammar is served. "strict": like real Azure may, the
    # jobs list answers 400 (ARM error body) to lastModifiedTime and runOn filters.
    job_filters: str = "lenient"
    # ARM's read token bucket per subscription and principal: 0 = off (the demo), else the burst
    # (Azure: 250) refilled at arm_refill per second (Azure: 25); empty -> 429 with Retry-After.
    arm_bucket: int = 0
    arm_refill: float = 25.0


JOB_FILTER_MODES = ("lenient", "strict")
