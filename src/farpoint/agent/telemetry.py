"""Heartbeat figures: uptime, CPU, memory, disk, and per-model inference counters."""

from __future__ import annotations

import math
import os
import shutil
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any

__all__ = ["CpuMeter", "InferenceStats", "disk_free_bytes", "percentile", "rss_bytes"]

_LATENCY_WINDOW = 2048


def rss_bytes() -> int:
    """Resident set size now (from /proc), or the peak where /proc is missing."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def disk_free_bytes(path: Path) -> int:
    return shutil.disk_usage(path).free


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    # the smallest value with at least q% of the values at or below it
    rank = max(1, min(len(ordered), math.ceil(round(q * len(ordered) / 100.0, 9))))
    return ordered[rank - 1]


class CpuMeter:
    """The process's CPU use between two readings, in percent of one core."""

    def __init__(self) -> None:
        self._last_cpu = self._cpu()
        self._last_wall = time.monotonic()

    @staticmethod
    def _cpu() -> float:
        t = os.times()
        return t.user + t.system

    def read(self) -> float:
        cpu, wall = self._cpu(), time.monotonic()
        elapsed = wall - self._last_wall
        used = cpu - self._last_cpu
        self._last_cpu, self._last_wall = cpu, wall
        return round(100.0 * used / elapsed, 2) if elapsed > 0 else 0.0


class _ModelStats:
    def __init__(self) -> None:
        self.requests = 0
        self.rows = 0
        self.errors = 0
        self.latencies_ms: deque[float] = deque(maxlen=_LATENCY_WINDOW)


class InferenceStats:
    """Counters the local API updates and the heartbeat reads, shared across threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._models: dict[str, _ModelStats] = {}

    def record(self, model: str, rows: int, latency_s: float | None, error: bool) -> None:
        with self._lock:
            stats = self._models.setdefault(model, _ModelStats())
            stats.requests += 1
            if error:
                stats.errors += 1
            else:
                stats.rows += rows
            if latency_s is not None:
                stats.latencies_ms.append(latency_s * 1000.0)

    def snapshot(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            out: dict[str, dict[str, Any]] = {}
            for name, s in self._models.items():
                window = list(s.latencies_ms)
                out[name] = {
                    "requests": s.requests,
                    "inferences": s.rows,
                    "errors": s.errors,
                    "latency_p50_ms": percentile(window, 50),
                    "latency_p95_ms": percentile(window, 95),
                }
            return out
