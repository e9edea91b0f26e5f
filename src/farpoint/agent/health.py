"""The health window after a switch: what is counted, and when a release is judged.

Pure rules over plain numbers (docs/fleet-delivery.md, "Safe activation on the device",
step 4), plus the thread-safe counter each loaded release carries. The window counts
what the device itself did with the release: inference failures (not the caller's bad
input, a 4xx), requests, single-request latency, and agent restarts.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from dataclasses import dataclass
from typing import Literal

from .payloads import HealthPolicy

__all__ = [
    "InferenceCounter",
    "Verdict",
    "WindowCounts",
    "judge",
    "nearest_rank",
    "window_end",
]

_LATENCY_SAMPLES = 4096
"""Latencies kept per release for the window's p95 (the most recent ones)."""


def nearest_rank(values: list[float], q: float) -> float | None:
    """The q-th percentile by nearest rank (numpy's "inverted_cdf"); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(round(q * len(ordered) / 100.0, 9))))
    return ordered[rank - 1]


@dataclass(frozen=True)
class WindowCounts:
    """What happened to a release since it was switched to."""

    requests: int
    """Predict requests that reached the model (failed or not); bad input is not one."""
    failures: int
    """Requests the model failed to answer (an inference error, not the caller's)."""
    latency_p95_ms: float | None
    crashes: int
    """Agent restarts inside the window."""


class InferenceCounter:
    """Requests, inference failures and latencies of one loaded release, across threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests = 0
        self._failures = 0
        self._latencies_ms: deque[float] = deque(maxlen=_LATENCY_SAMPLES)

    def record(self, latency_s: float, failed: bool) -> None:
        with self._lock:
            self._requests += 1
            if failed:
                self._failures += 1
            else:
                self._latencies_ms.append(latency_s * 1000.0)

    def counts(self, crashes: int = 0) -> WindowCounts:
        with self._lock:
            latencies = list(self._latencies_ms)
            requests, failures = self._requests, self._failures
        return WindowCounts(requests, failures, nearest_rank(latencies, 95), crashes)


@dataclass(frozen=True)
class Verdict:
    state: Literal["watching", "healthy", "unhealthy"]
    reason: str | None = None


def window_end(switched_at: float, window_s: float) -> float:
    return switched_at + max(0.0, window_s)


def judge(policy: HealthPolicy, counts: WindowCounts, now: float, ends_at: float) -> Verdict:
    """Unhealthy as soon as a limit is crossed; healthy once the window is over without one.

    Error rate and latency are judged only once `min_requests` requests arrived (a p95 of
    three requests says little); restarts are judged always. A window that ends with
    fewer requests than that is healthy: nothing went wrong that the device could see.
    """
    if counts.crashes > policy["max_crashes"]:
        return Verdict(
            "unhealthy",
            f"the agent restarted {counts.crashes} times in the health window "
            f"(at most {policy['max_crashes']} allowed)",
        )
    if counts.requests >= policy["min_requests"]:
        rate = counts.failures / counts.requests
        if rate > policy["max_error_rate"]:
            return Verdict(
                "unhealthy",
                f"{counts.failures} of {counts.requests} predict requests failed in the health "
                f"window: error rate {rate:.3f} is over the limit of {policy['max_error_rate']}",
            )
        limit = policy["max_latency_p95_ms"]
        p95 = counts.latency_p95_ms
        if limit is not None and p95 is not None and p95 > limit:
            return Verdict(
                "unhealthy",
                f"latency p95 of {p95:.3f} ms over {counts.requests} predict requests in the "
                f"health window is over the limit of {limit} ms",
            )
    if now >= ends_at:
        return Verdict("healthy")
    return Verdict("watching")
