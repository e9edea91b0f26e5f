"""Counting rules: histograms that add up exactly, quantiles and accuracy from counts."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from farpoint.core.telemetry import (
    LATENCY_BUCKETS,
    LATENCY_EDGES_MS,
    accuracy,
    correct_count,
    histogram_quantile,
    latency_bucket,
    sum_histograms,
)

latencies = st.lists(st.floats(min_value=0.0, max_value=5000.0), max_size=200)


def _histogram(values: list[float]) -> list[int]:
    counts = [0] * LATENCY_BUCKETS
    for v in values:
        counts[latency_bucket(v)] += 1
    return counts


def test_bucket_edges_are_inclusive_upper_bounds() -> None:
    assert latency_bucket(0.0) == 0
    assert latency_bucket(0.1) == 0 and latency_bucket(0.1001) == 1
    assert latency_bucket(2500.0) == len(LATENCY_EDGES_MS) - 1
    assert latency_bucket(2500.1) == len(LATENCY_EDGES_MS) == LATENCY_BUCKETS - 1


@given(st.lists(latencies, max_size=8))
def test_summed_histograms_are_the_histogram_of_all_observations(parts: list[list[float]]) -> None:
    merged = sum_histograms(_histogram(p) for p in parts)
    assert merged == _histogram([v for p in parts for v in p])


@given(latencies.filter(bool), st.sampled_from([0.5, 0.9, 0.95, 0.99, 1.0]))
def test_a_histogram_quantile_bounds_the_exact_quantile_from_above(
    values: list[float], q: float
) -> None:
    bound = histogram_quantile(_histogram(values), q)
    exact = float(np.quantile(values, q, method="inverted_cdf"))
    assert bound is not None and exact <= bound
    if bound != math.inf:
        # and the bucket below would not hold it: the bound is the tightest edge
        i = LATENCY_EDGES_MS.index(bound)
        assert i == 0 or exact > LATENCY_EDGES_MS[i - 1]


def test_quantiles_of_nothing_and_above_the_last_edge() -> None:
    assert histogram_quantile([0] * LATENCY_BUCKETS, 0.5) is None
    assert histogram_quantile(_histogram([9999.0]), 0.5) == math.inf
    assert sum_histograms([[], []]) == [0] * LATENCY_BUCKETS


def test_histograms_over_other_edges_are_refused() -> None:
    with pytest.raises(ValueError, match="expected 15"):
        sum_histograms([[1, 2, 3]])


def test_accuracy_from_confusion_cells() -> None:
    cells = [("1", "1", 30), ("0", "0", 50), ("1", "0", 15), ("0", "1", 5)]
    assert correct_count(cells) == (100, 80)
    assert accuracy(cells) == pytest.approx(0.8)
    assert accuracy([]) is None
