"""Deterministic noise: counter-based hashes keyed by integers, so generation can be chunked freely.

The value for (seed, salt, worker, minute) is the same whichever chunk computes it, and the scalar
twins return bit-for-bit the numbers of the numpy versions, so a job can look up one worker's
pressure at one minute without generating anything.
"""
from __future__ import annotations

import math
import uuid
from typing import TypeVar

import numpy as np

_M1 = np.uint64(0x9E3779B97F4A7C15)
_M2 = np.uint64(0xBF58476D1CE4E5B9)
_M3 = np.uint64(0x94D049BB133111EB)

# ``mix`` works element-wise: on a uint64 array, or on one uint64 scalar (the key in ``uniform``).
_U64 = TypeVar("_U64", np.ndarray, np.uint64)


def mix(x: _U64) -> _U64:
    """splitmix64 finaliser on a uint64 array (wrapping arithmetic is intended)."""
    with np.errstate(over="ignore"):
        z = x + _M1
        z = (z ^ (z >> np.uint64(30))) * _M2
        z = (z ^ (z >> np.uint64(27))) * _M3
        return z ^ (z >> np.uint64(31))


def uniform(seed: int, salt: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Uniform [0, 1) numbers keyed by (seed, salt, a, b): chunking-independent noise."""
    with np.errstate(over="ignore"):
        key = mix(np.uint64(seed & 0xFFFFFFFF) * np.uint64(1_000_003) + np.uint64(salt))
        x = mix(key ^ (a.astype(np.uint64) * np.uint64(0x100000001B3)))
        x = mix(x ^ b.astype(np.uint64))
    return (x >> np.uint64(11)).astype(np.float64) * (1.0 / 9007199254740992.0)


def normal(seed: int, salt: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    u1 = np.maximum(uniform(seed, salt, a, b), 1e-12)
    u2 = uniform(seed, salt + 7919, a, b)
    return np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * math.pi * u2)


_MASK = (1 << 64) - 1


def mix_int(x: int) -> int:
    """The same splitmix64 finaliser as ``mix``, on one Python int (bit-for-bit equal)."""
    z = (x + 0x9E3779B97F4A7C15) & _MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
    return z ^ (z >> 31)


def uniform_int(seed: int, salt: int, a: int, b: int) -> float:
    """Scalar twin of ``uniform`` (same numbers), for per-job lookups without numpy overhead."""
    key = mix_int(((seed & 0xFFFFFFFF) * 1_000_003 + salt) & _MASK)
    x = mix_int(key ^ ((a * 0x100000001B3) & _MASK))
    x = mix_int(x ^ (b & _MASK))
    return (x >> 11) * (1.0 / 9007199254740992.0)


def normal_int(seed: int, salt: int, a: int, b: int) -> float:
    u1 = max(uniform_int(seed, salt, a, b), 1e-12)
    u2 = uniform_int(seed, salt + 7919, a, b)
    return math.sqrt(-2.0 * math.log(u1)) * math.cos(2.0 * math.pi * u2)


class Rand:
    """A tiny deterministic stream (splitmix64) keyed by integers: cheap to create once per job."""

    def __init__(self, *key: int) -> None:
        state = 0x2545F4914F6CDD1D
        for k in key:
            state = mix_int(state ^ (k & _MASK))
        self._state = state

    def _next(self) -> int:
        self._state = (self._state + 0x9E3779B97F4A7C15) & _MASK
        return mix_int(self._state)

    def random(self) -> float:
        return (self._next() >> 11) * (1.0 / 9007199254740992.0)

    def uniform(self, low: float, high: float) -> float:
        return low + (high - low) * self.random()

    def integers(self, low: int, high: int) -> int:
        return low + int(self.random() * (high - low))

    def normal(self) -> float:
        u1 = max(self.random(), 1e-12)
        return math.sqrt(-2.0 * math.log(u1)) * math.cos(2.0 * math.pi * self.random())

    def lognormal(self, mu: float, sigma: float) -> float:
        return math.exp(mu + sigma * self.normal())

    def poisson(self, lam: float) -> int:
        limit, k, p = math.exp(-lam), 0, self.random()
        while p > limit:
            k += 1
            p *= self.random()
        return k

    def guid(self) -> str:
        return str(uuid.UUID(int=(self._next() << 64) | self._next(), version=4))



def guid(rng: np.random.Generator) -> str:
    return str(uuid.UUID(bytes=rng.bytes(16), version=4))
