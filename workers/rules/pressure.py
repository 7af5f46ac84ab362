"""Pure rules about CPU/memory pressure: the limits, when a reading counts, and when an alert opens.

Microsoft's guide expects job delays and timeouts on a machine below the minimum hardware. The limits
are ONE pair of settings, ``CAPACITY_CPU_PRESSURE_PCT`` and ``CAPACITY_MEM_PRESSURE_PCT``
(``PressureLimits.from_settings``): the diagnosis on the worker page and in emails, the pressure
alerts and the capacity findings all judge with them.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

# Utilization older than this says nothing about the machine now.
UTILIZATION_RECENT = timedelta(minutes=15)


@dataclass(frozen=True)
class PressureLimits:
    """CPU and memory percentages at or above which a reading counts as pressure."""

    cpu_pct: float
    mem_pct: float

    @classmethod
    def from_settings(cls, settings: Any = None) -> PressureLimits:
        """Read CAPACITY_CPU_PRESSURE_PCT / CAPACITY_MEM_PRESSURE_PCT from Django settings (or any object)."""
        if settings is None:
            from django.conf import settings as django_settings

            settings = django_settings
        return cls(cpu_pct=float(settings.CAPACITY_CPU_PRESSURE_PCT), mem_pct=float(settings.CAPACITY_MEM_PRESSURE_PCT))

    def of(self, metric: str) -> float:
        """The limit of ``"cpu"`` or ``"mem"``."""
        return {"cpu": self.cpu_pct, "mem": self.mem_pct}[metric]

    def cpu_high(self, cpu_pct: float | None) -> bool:
        return cpu_pct is not None and cpu_pct >= self.cpu_pct

    def mem_high(self, mem_pct: float | None) -> bool:
        return mem_pct is not None and mem_pct >= self.mem_pct

    def high(self, cpu_pct: float | None, mem_pct: float | None) -> bool:
        """Either reading at or above its limit."""
        return self.cpu_high(cpu_pct) or self.mem_high(mem_pct)


def is_recent(utilization_at: datetime | None, *, now: datetime) -> bool:
    """Whether a utilization sample taken at ``utilization_at`` still says something about ``now``."""
    return utilization_at is not None and now - utilization_at <= UTILIZATION_RECENT


def pressure_alert_open(*, samples: int, high: int, is_open: bool, share: float, clear_share: float, min_samples: int) -> bool:
    """Whether a worker's pressure alert should be open after one evaluation of its window.

    ``high`` of ``samples`` one-minute readings crossed a threshold. Opens at ``share`` or more;
    once open it stays open until the share falls below ``clear_share`` (hysteresis, so a worker
    hovering at the threshold gives one alert, not one per minute). Too few samples decide nothing:
    the current state is kept (a gap in Log Analytics data is not a recovery).
    """
    if samples < max(1, min_samples):
        return is_open
    ratio = high / samples
    return ratio >= clear_share if is_open else ratio >= share
