"""What the emulator server holds besides the simulation: credentials and tokens, TLS, faults, log.

``EmulatorState`` is everything a request handler reads from the server; ``https.EmulatorServer``
adds the listening socket and its thread on top.
"""
from __future__ import annotations

import json
import random
import secrets
import ssl
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trustme

from workers.emulator.server.config import JOB_FILTER_MODES, EmulatorConfig
from workers.emulator.server.faults import Fault, FaultQueue, ReadBucket
from workers.emulator.server.formats import arm_dt
from workers.emulator.simulation import FleetSimulation, SimWorker


@dataclass
class TokenStore:
    """Bearer tokens issued by the token route, each with its expiry (epoch seconds)."""

    tokens: dict[str, float] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def issue(self, lifetime: int) -> str:
        token = secrets.token_urlsafe(32)
        with self.lock:
            now = time.time()
            self.tokens = {t: exp for t, exp in self.tokens.items() if exp > now}
            self.tokens[token] = now + lifetime
        return token

    def valid(self, token: str) -> bool:
        with self.lock:
            exp = self.tokens.get(token)
        return exp is not None and exp > time.time()


class EmulatorState(FaultQueue):
    """The simulation, the config with its credentials, issued tokens, the TLS identity and request log."""

    port: int  # set by ``EmulatorServer`` once its socket is bound

    def __init__(self, sim: FleetSimulation, *, config: EmulatorConfig | None = None,
                 pki_dir: Path | None = None) -> None:
        self.sim = sim
        self.config = config or EmulatorConfig()
        cfg = self.config
        rng = random.Random(sim.seed * 7919 + 1)
        cfg.tenant_id = cfg.tenant_id or str(uuid.UUID(int=rng.getrandbits(128), version=4))
        cfg.client_id = cfg.client_id or str(uuid.UUID(int=rng.getrandbits(128), version=4))
        cfg.client_secret = cfg.client_secret or secrets.token_urlsafe(24)
        self.auth = TokenStore()
        self._registered: dict[int, str] = {}
        self.faults: deque[Fault] = deque()
        self.fault_lock = threading.Lock()
        self.fault_rng = random.Random(cfg.fault_seed or sim.seed)
        self.read_bucket: ReadBucket | None = None
        self.configure_arm_throttle(cfg.arm_bucket, cfg.arm_refill)
        self.set_job_filters(cfg.job_filters)
        self.log_lock = threading.Lock()
        self._log_file = open(cfg.request_log, "a", encoding="utf-8") if cfg.request_log else None  # noqa: SIM115

        self.ca = trustme.CA()
        cert = self.ca.issue_cert("127.0.0.1", "localhost")
        self.pki_dir = Path(pki_dir) if pki_dir else None
        self.ssl_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        cert.configure_cert(self.ssl_context)
        self.ca_bundle: Path | None = None
        if self.pki_dir:
            self.pki_dir.mkdir(parents=True, exist_ok=True)
            self.ca_bundle = self.pki_dir / "ca.pem"
            self.ca.cert_pem.write_to_path(str(self.ca_bundle))

    def configure_arm_throttle(self, bucket: int, refill_per_second: float = 25.0) -> None:
        """Turn ARM's read token bucket on (``bucket`` tokens, refilled per second) or off (0); a new,
        full bucket."""
        if bucket < 0 or refill_per_second <= 0:
            raise ValueError("the ARM bucket must be >= 0 tokens and its refill rate > 0 per second")
        self.config.arm_bucket, self.config.arm_refill = int(bucket), float(refill_per_second)
        self.read_bucket = ReadBucket(bucket, refill_per_second) if bucket > 0 else None

    def set_job_filters(self, mode: str) -> None:
        """"strict": the jobs list refuses lastModifiedTime/runOn filters with a 400; "lenient": accepts them."""
        if mode not in JOB_FILTER_MODES:
            raise ValueError(f"job filter mode must be one of {', '.join(JOB_FILTER_MODES)}")
        self.config.job_filters = mode

    @property
    def throttled_count(self) -> int:
        """429s the ARM read bucket has answered so far."""
        return self.read_bucket.throttled if self.read_bucket is not None else 0

    @property
    def arm_prefix(self) -> str:
        s = self.sim
        return (f"/subscriptions/{s.subscription_id}/resourceGroups/{s.resource_group}/providers/"
                f"Microsoft.Automation/automationAccounts/{s.automation_account}")

    def registered_text(self, worker: SimWorker) -> str:
        """Registration times never change: format each once (worker lists of 10,000 stay fast)."""
        text = self._registered.get(worker.index)
        if text is None:
            text = self._registered[worker.index] = arm_dt(worker.registered) or ""
        return text

    def log(self, entry: dict[str, Any]) -> None:
        if not self._log_file:
            return
        line = json.dumps(entry, default=str)
        with self.log_lock:
            if self._log_file:
                self._log_file.write(line + "\n")
                self._log_file.flush()
