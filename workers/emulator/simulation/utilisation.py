"""Machine utilisation: per-minute CPU and memory of every worker, and the pressure that slows jobs.

Each worker has a daily profile plus counter-based noise, so any minute can be asked for at any time;
healthy profiles stay clipped below the pressure thresholds, the under_spec scenario pushes above them.
"""
from __future__ import annotations

import math

import numpy as np

from workers.emulator.simulation.noise import normal, normal_int
from workers.emulator.simulation.scenarios import ScenarioSchedule

# Pressure above which a machine slows its jobs down. Healthy workers are generated so that they never
# reach it; the under_spec machine crosses it regularly.
CPU_PRESSURE_PCT = 85.0
MEM_PRESSURE_PCT = 90.0


class UtilisationModel(ScenarioSchedule):
    """CPU/memory profiles of the fleet and the utilisation and pressure they give at any minute."""

    cpu_base: np.ndarray
    cpu_amp: np.ndarray
    cpu_sd: np.ndarray
    mem_base: np.ndarray
    mem_amp: np.ndarray
    mem_sd: np.ndarray
    total_mb: np.ndarray
    hb_phase: np.ndarray
    is_windows: np.ndarray
    is_v1: np.ndarray

    def _build_profiles(self) -> None:
        """Per-worker CPU/memory profile: healthy machines stay well below the pressure thresholds."""
        n = len(self.workers)
        rng = np.random.default_rng([self.seed, 11])
        self.cpu_base = rng.uniform(8.0, 38.0, n)
        self.cpu_amp = rng.uniform(3.0, 9.0, n)
        self.cpu_sd = rng.uniform(1.5, 4.0, n)
        self.mem_base = rng.uniform(35.0, 62.0, n)
        self.mem_amp = rng.uniform(1.0, 4.0, n)
        self.mem_sd = rng.uniform(0.5, 2.0, n)
        self.total_mb = np.array([w.total_mb for w in self.workers], dtype=np.float64)
        self.hb_phase = np.array([w.hb_phase for w in self.workers], dtype=np.int64)
        self.is_windows = np.array([w.os_type == "Windows" for w in self.workers], dtype=bool)
        self.is_v1 = np.array([w.worker_type == "HybridV1" for w in self.workers], dtype=bool)

    def utilisation(self, widx: np.ndarray, minute: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(CPU %, memory %) of workers ``widx`` in epoch minutes ``minute``; pure and chunking-independent."""
        widx = np.asarray(widx, dtype=np.int64)
        minute = np.asarray(minute, dtype=np.int64)
        hour = (minute % 1440) / 60.0
        daily = np.cos(2 * math.pi * (hour - 14.0) / 24.0)  # peak mid-afternoon UTC
        cpu = self.cpu_base[widx] + self.cpu_amp[widx] * daily + self.cpu_sd[widx] * normal(self.seed, 1, widx, minute)
        mem = self.mem_base[widx] + self.mem_amp[widx] * daily + self.mem_sd[widx] * normal(self.seed, 2, widx, minute)
        cpu = np.clip(cpu, 0.5, 78.0)
        mem = np.clip(mem, 10.0, 82.0)
        us = self._under_spec_mask(widx, minute * 60)
        if us.any():
            n1 = normal(self.seed, 3, widx[us], minute[us])
            n2 = normal(self.seed, 4, widx[us], minute[us])
            cpu[us] = np.clip(78.0 + 14.0 * daily[us] + 7.0 * n1, 40.0, 100.0)
            mem[us] = np.clip(88.0 + 5.0 * daily[us] + 3.0 * n2, 60.0, 99.5)
        return cpu, mem

    def pressure(self, widx: np.ndarray, minute: np.ndarray) -> np.ndarray:
        """0 below the thresholds; grows linearly above them (CPU > 85 %, memory > 90 %)."""
        cpu, mem = self.utilisation(widx, minute)
        return np.maximum(0.0, (cpu - CPU_PRESSURE_PCT) / 15.0) + np.maximum(0.0, (mem - MEM_PRESSURE_PCT) / 10.0)

    def _pressure_at(self, widx: int, t: float) -> float:
        """Scalar twin of ``pressure`` for one worker and minute (same formula, same noise)."""
        minute = int(t // 60)
        # Healthy profiles are clipped below the thresholds, so only under_spec minutes can have pressure.
        if not any(s.kind == "under_spec" and s.t0 <= minute * 60 < s.t1
                   for s in self._scenarios_by_worker.get(widx, ())):
            return 0.0
        daily = math.cos(2 * math.pi * ((minute % 1440) / 60.0 - 14.0) / 24.0)
        cpu = min(100.0, max(40.0, 78.0 + 14.0 * daily + 7.0 * normal_int(self.seed, 3, widx, minute)))
        mem = min(99.5, max(60.0, 88.0 + 5.0 * daily + 3.0 * normal_int(self.seed, 4, widx, minute)))
        return max(0.0, (cpu - CPU_PRESSURE_PCT) / 15.0) + max(0.0, (mem - MEM_PRESSURE_PCT) / 10.0)
