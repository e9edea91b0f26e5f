"""Counting rules shared by the agent (which counts) and the server (which reads counts)."""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence

__all__ = ["LATENCY_EDGES_MS", "histogram_quantile", "latency_bucket"]

LATENCY_EDGES_MS: tuple[float, ...] = (
    0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0,
)  # fmt: skip
"""Upper bounds (inclusive) of the latency buckets; bucket len(edges) is everything above."""


def latency_bucket(ms: float) -> int:
    """The bucket index of a latency in milliseconds."""
    return bisect.bisect_left(LATENCY_EDGES_MS, ms)


def histogram_quantile(counts: Sequence[int], q: float) -> float | None:
    """The upper edge of the bucket holding the q-quantile (0 < q <= 1) of a latency
    histogram; inf when it falls in the last, open bucket; None for no observations."""
    total = sum(counts)
    if total == 0:
        return None
    rank = max(1, math.ceil(q * total))
    seen = 0
    for i, n in enumerate(counts):
        seen += n
        if seen >= rank:
            return LATENCY_EDGES_MS[i] if i < len(LATENCY_EDGES_MS) else math.inf
    return math.inf
