"""Counting rules shared by the agent (which counts) and the server (which reads counts).

Latency is counted in fixed buckets (`LATENCY_EDGES_MS`), so histograms from any number
of devices and windows add up exactly; quantiles are read from the summed histogram.
Ground truth the application posts is counted as confusion cells (true label, predicted
label, count), overall and per group of each protected attribute; accuracy per group is
computed from those counts alone.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Sequence

__all__ = [
    "LATENCY_BUCKETS",
    "LATENCY_EDGES_MS",
    "accuracy",
    "correct_count",
    "histogram_quantile",
    "latency_bucket",
    "sum_histograms",
]

LATENCY_EDGES_MS: tuple[float, ...] = (
    0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0,
)  # fmt: skip
"""Upper bounds (inclusive) of the latency buckets; bucket len(edges) is everything above."""

LATENCY_BUCKETS = len(LATENCY_EDGES_MS) + 1
"""How many counts a latency histogram holds."""


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


def sum_histograms(histograms: Iterable[Sequence[int]]) -> list[int]:
    """Bucket-wise sum of latency histograms; an empty list stands for "no observation".

    ValueError for a histogram that is neither empty nor LATENCY_BUCKETS long: counts
    over other edges cannot be added to these.
    """
    total = [0] * LATENCY_BUCKETS
    for h in histograms:
        if not h:
            continue
        if len(h) != LATENCY_BUCKETS:
            raise ValueError(
                f"a latency histogram has {len(h)} buckets; expected {LATENCY_BUCKETS}"
            )
        for i, n in enumerate(h):
            total[i] += n
    return total


def correct_count(cells: Iterable[tuple[str, str, int]]) -> tuple[int, int]:
    """(all, correct) of confusion cells (true label, predicted label, count)."""
    seen = right = 0
    for label, predicted, n in cells:
        seen += n
        if label == predicted:
            right += n
    return seen, right


def accuracy(cells: Iterable[tuple[str, str, int]]) -> float | None:
    """Share of predictions whose label was right, from confusion cells; None for none."""
    seen, right = correct_count(cells)
    return right / seen if seen else None
