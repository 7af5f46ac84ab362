"""A seedable, deterministic simulation of a Hybrid Runbook Worker fleet.

The emulator's HTTP layer (``workers.emulator.server``) answers Azure's routes from this object.
Everything the simulation emits is a pure function of the seed, the scenarios and the clock:

* per-minute CPU and memory come from a counter-based hash of (seed, worker, minute), so the value of
  one minute does not depend on how generation was chunked, and a job can ask for the pressure of a
  worker at any minute;
* data is generated lazily up to ``clock.now()`` whenever a request arrives (``ensure``), and
  ``history_days`` of history is backfilled at start;
* Heartbeat/Perf/Event rows carry an ingestion time and only become visible to queries after it
  (20 s to 3 min, like Log Analytics).

Ground truth that Azure does not expose (which worker ran a job, scenario windows) is kept here and
served only on the emulator's own control routes.

Modules, from the bottom up: ``clock`` (simulated time), ``noise`` (deterministic hashes), ``fleet``
(groups and workers), ``scenarios`` (failure modes and what they silence), ``utilisation`` (CPU,
memory, pressure), ``signals`` (Heartbeat/Perf/Event rows), ``jobs`` (arrivals and outcomes) and
``engine`` (``FleetSimulation``: all of it on one clock, with the history backfill).
"""
from __future__ import annotations

from workers.emulator.simulation.clock import EPOCH, SimClock
from workers.emulator.simulation.engine import FleetSimulation
from workers.emulator.simulation.fleet import (
    HEARTBEAT_SECONDS,
    LAST_SEEN_SECONDS,
    SimGroup,
    SimulationError,
    SimWorker,
)
from workers.emulator.simulation.jobs import JOB_LIMIT_EXCEPTION, RUNBOOKS, SimJob
from workers.emulator.simulation.scenarios import SCENARIO_KINDS, Scenario
from workers.emulator.simulation.signals import TLS_DESCRIPTION
from workers.emulator.simulation.utilisation import CPU_PRESSURE_PCT, MEM_PRESSURE_PCT

__all__ = [
    "CPU_PRESSURE_PCT",
    "EPOCH",
    "HEARTBEAT_SECONDS",
    "JOB_LIMIT_EXCEPTION",
    "LAST_SEEN_SECONDS",
    "MEM_PRESSURE_PCT",
    "RUNBOOKS",
    "SCENARIO_KINDS",
    "TLS_DESCRIPTION",
    "FleetSimulation",
    "Scenario",
    "SimClock",
    "SimGroup",
    "SimJob",
    "SimWorker",
    "SimulationError",
]
