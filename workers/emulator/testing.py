"""An importable way to run the emulator in-process (tests, the demo, the bench).

    with running_emulator(tmpdir=tmp_path, start=datetime(2026, 11, 20, 12, tzinfo=UTC)) as emu:
        conn = emu.connection            # what a client needs (same keys as the connection file)
        emu.clock.advance(300)           # manual clock
        emu.start_scenario("agent_stopped", "hrw-win-03", 30)
        emu.inject_fault("429", count=2, route="arm")
        emu.requests()                   # the parsed request log
"""
from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from workers.emulator.server import EmulatorConfig, EmulatorServer, Fault
from workers.emulator.simulation import FleetSimulation, Scenario, SimClock

__all__ = ["EmulatorHandle", "running_emulator", "build_emulator"]


@dataclass
class EmulatorHandle:
    """A running emulator: its URL, connection settings, simulation and clock, and control helpers."""

    server: EmulatorServer
    connection_file: Path
    request_log: Path

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def connection(self) -> dict[str, str]:
        return self.server.connection()

    @property
    def ca_bundle(self) -> str:
        return str(self.server.ca_bundle)

    @property
    def simulation(self) -> FleetSimulation:
        return self.server.sim

    @property
    def clock(self) -> SimClock:
        return self.server.sim.clock

    def start_scenario(self, kind: str, target: str, minutes: float) -> Scenario:
        return self.simulation.start_scenario(kind, target, minutes)

    def inject_fault(self, kind: str, count: int = 1, route: str = "any") -> Fault:
        return self.server.inject_fault(kind, count, route)

    def clear_faults(self) -> None:
        self.server.clear_faults()

    def requests(self) -> list[dict[str, Any]]:
        """Every request received so far, one dict per request-log line."""
        if not self.request_log.exists():
            return []
        lines = self.request_log.read_text(encoding="utf-8").splitlines()
        return [json.loads(line) for line in lines if line.strip()]

    def close(self) -> None:
        self.server.close()
        self.server.sim.close()


def build_emulator(
    *,
    seed: int = 7,
    groups: int = 4,
    workers: int = 20,
    history_days: float = 0,
    page_size: int = 100,
    directory: Path,
    realtime: bool = False,
    scenarios: bool = True,
    start: datetime | None = None,
    port: int = 0,
    fault_rate: float = 0.0,
    retry_after: float = 1.0,
    slow_seconds: float = 2.0,
    max_rows: int = 500_000,
    query_timeout: float = 180.0,
    request_log: Path | None = None,
    log_requests: bool = True,
    connection_file: Path | None = None,
    pki_dir: Path | None = None,
) -> EmulatorHandle:
    """Build and start an emulator; the caller must ``close()`` the handle."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    clock = SimClock(start, realtime=realtime)
    sim = FleetSimulation(seed=seed, groups=groups, workers=workers, history_days=history_days, clock=clock,
                          scenarios=scenarios)
    log_path = Path(request_log) if request_log else directory / "requests.jsonl"
    config = EmulatorConfig(page_size=page_size, fault_rate=fault_rate, retry_after=retry_after,
                            slow_seconds=slow_seconds, max_rows=max_rows, query_timeout=query_timeout,
                            request_log=log_path if log_requests else None)
    try:
        server = EmulatorServer(sim, config=config, port=port, pki_dir=pki_dir or directory / "pki")
    except BaseException:
        sim.close()
        raise
    server.start()
    conn_path = server.write_connection_file(Path(connection_file) if connection_file else directory / "emulator.json")
    return EmulatorHandle(server=server, connection_file=conn_path, request_log=log_path)


@contextmanager
def running_emulator(
    *,
    seed: int = 7,
    groups: int = 4,
    workers: int = 20,
    history_days: float = 0,
    page_size: int = 100,
    tmpdir: Path | str,
    realtime: bool = False,
    scenarios: bool = True,
    start: datetime | None = None,
    **options: Any,
) -> Iterator[EmulatorHandle]:
    """Run an emulator for the duration of the ``with`` block (manual clock unless ``realtime``)."""
    handle = build_emulator(seed=seed, groups=groups, workers=workers, history_days=history_days,
                            page_size=page_size, directory=Path(tmpdir), realtime=realtime,
                            scenarios=scenarios, start=start, **options)
    try:
        yield handle
    finally:
        handle.close()
