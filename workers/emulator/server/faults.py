"""Fault injection: the queue of faults asked for on the control route, and the random fault rate.

``take_fault`` decides which fault (if any) the next request on a route gets; the request handler
(``plumbing.RequestBase._maybe_fault``) turns it into a 429, 503, 504, slow, partial, malformed,
reset or HTML reply.
"""
from __future__ import annotations

import math
import random
import threading
import time
from collections import deque
from dataclasses import dataclass

from workers.emulator.server.config import EmulatorConfig

# "403": a missing role assignment (ARM's AuthorizationFailed / Log Analytics' InsufficientAccessError);
# queued only, never one of the random kinds.
FAULT_KINDS = ("429", "503", "504", "slow", "partial", "malformed", "reset", "html", "403")
FAULT_ROUTES = ("arm", "logs", "any")


@dataclass
class Fault:
    kind: str
    route: str
    remaining: int


class FaultQueue:
    """Faults queued for the next requests, then the configured random rate."""

    config: EmulatorConfig
    faults: deque[Fault]
    fault_lock: threading.Lock
    fault_rng: random.Random

    def inject_fault(self, kind: str, count: int = 1, route: str = "any") -> Fault:
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; expected one of {', '.join(FAULT_KINDS)}")
        if route not in FAULT_ROUTES:
            raise ValueError(f"unknown fault route {route!r}; expected one of {', '.join(FAULT_ROUTES)}")
        if not isinstance(count, int) or isinstance(count, bool) or not 1 <= count <= 10_000:
            raise ValueError("count must be an integer between 1 and 10000")
        fault = Fault(kind, route, count)
        with self.fault_lock:
            self.faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        with self.fault_lock:
            self.faults.clear()

    def take_fault(self, route: str) -> str | None:
        """The fault to apply to this request, if any (queued first, then the random rate)."""
        with self.fault_lock:
            for fault in self.faults:
                if fault.route not in ("any", route):
                    continue
                if fault.kind == "partial" and route != "logs":
                    continue
                fault.remaining -= 1
                if fault.remaining <= 0:
                    self.faults.remove(fault)
                return fault.kind
            if self.config.fault_rate > 0 and self.fault_rng.random() < self.config.fault_rate:
                kinds = [k for k in self.config.random_fault_kinds if k != "partial" or route == "logs"]
                return self.fault_rng.choice(kinds) if kinds else None
        return None


class ReadBucket:
    """ARM's token bucket for reads (per subscription and principal; the emulator has one of each).

    Real time (monotonic), even under a manual simulation clock: throttling is about request rate.
    ``take`` answers (granted, tokens left, seconds until the next token).
    """

    def __init__(self, capacity: int, refill_per_second: float) -> None:
        self.capacity = float(capacity)
        self.refill = max(0.001, float(refill_per_second))
        self._tokens = self.capacity
        self._ts = time.monotonic()
        self._lock = threading.Lock()
        self.granted = 0
        self.throttled = 0

    def take(self) -> tuple[bool, int, int]:
        with self._lock:
            now = time.monotonic()
            self._tokens = min(self.capacity, self._tokens + (now - self._ts) * self.refill)
            self._ts = now
            if self._tokens >= 1.0:
                self._tokens -= 1.0
                self.granted += 1
                return True, int(self._tokens), 0
            self.throttled += 1
            # ARM's Retry-After is whole seconds.
            return False, 0, max(1, math.ceil((1.0 - self._tokens) / self.refill))
