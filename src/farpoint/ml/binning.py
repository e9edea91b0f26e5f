"""Histograms with frozen edges: the edges a profile chooses (see `farpoint.ml.profile`)
and the counting rule of `farpoint.core.drift.bin_index` (len(edges) + 1 bins, closed
below, two open tails), computed with numpy."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from farpoint.ml.columns import non_null_numbers

if TYPE_CHECKING:
    import numpy as np

__all__ = ["HISTOGRAM_BINS", "Binner", "bin_indices", "count_into_bins", "histogram_edges"]

HISTOGRAM_BINS = 20


class Binner:
    """Bin indices by the `bin_index` rule. Equal-width edges (every rule in this module
    makes them) are found with arithmetic, exact on integers and corrected by one compare
    each way on floats; several times faster than a binary search per value."""

    def __init__(self, edges: Sequence[float]) -> None:
        import numpy as np

        self.edges = np.asarray(edges)
        if self.edges.ndim != 1 or not self.edges.size or self.edges.dtype.kind not in "iuf":
            raise ValueError("bin edges must be a non-empty list of numbers")
        steps = np.diff(self.edges)
        if steps.size and bool((steps <= 0).any()):
            raise ValueError("bin edges must be strictly increasing")
        self.width: int | None = None
        self.step: float | None = None
        if steps.size and self.edges.dtype.kind in "iu" and bool((steps == steps[0]).all()):
            self.width = int(steps[0])
        if steps.size:
            step = (float(self.edges[-1]) - float(self.edges[0])) / steps.size
            drift = np.abs(self.edges - (float(self.edges[0]) + step * np.arange(self.edges.size)))
            if step > 0 and bool((drift <= step * 1e-6).all()):
                self.step = step
                # Lower bound of each bin, NaN past the last one (never compares true).
                self.bounds = np.concatenate(([-np.inf], self.edges.astype(np.float64), [np.nan]))

    def index(self, values: np.ndarray) -> np.ndarray:
        import numpy as np

        last = self.edges.size
        if self.width is not None and values.dtype.kind in "iu":
            first, top = int(self.edges[0]), int(self.edges[-1])
            # Clipping first keeps the subtraction away from int64 overflow.
            clipped = np.clip(values, first - self.width, top).astype(np.int64, copy=False)
            found: np.ndarray = (clipped - first) // self.width + 1
            return found
        if self.step is not None:
            v = values.astype(np.float64, copy=False)
            guess = np.clip((v - float(self.edges[0])) / self.step, -1.0, last - 1.0)
            idx = np.floor(guess).astype(np.int64) + 1
            idx -= v < self.bounds[idx]
            idx += v >= self.bounds[idx + 1]
            return idx
        return np.searchsorted(self.edges, values, side="right")

    def count(self, values: np.ndarray) -> np.ndarray:
        import numpy as np

        if values.dtype.kind == "f":
            values = values[~np.isnan(values)]
        return np.bincount(self.index(values), minlength=self.edges.size + 1)


def bin_indices(edges: Sequence[float], values: np.ndarray) -> np.ndarray:
    """The bin of each value (numpy, NaN-free) over frozen `edges`, by `count_into_bins`'s rule."""
    return Binner(edges).index(values)


def count_into_bins(edges: Sequence[float], values: Any) -> list[int]:
    """Counts of `values` (numpy, pyarrow or a list) into the bins of frozen `edges`.

    The same rule as `farpoint.core.drift.bin_index`: bin i holds edges[i-1] <= x <
    edges[i], with open tails; nulls and NaN are skipped.
    """
    import numpy as np
    import pyarrow as pa

    binner = Binner(edges)
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if not isinstance(values, np.ndarray):
        values = non_null_numbers(values if isinstance(values, pa.Array) else pa.array(values))
    return [int(c) for c in binner.count(values)]


def _round_edge(x: float) -> float:
    return float(f"{x:.12g}")


def histogram_edges(low: float, high: float, integer: bool) -> list[float] | list[int]:
    """Frozen histogram edges for values mostly within [low, high] (the rule is in
    `farpoint.ml.profile`'s module doc)."""
    if integer:
        lo, hi = math.floor(low), math.ceil(high)
        if hi - lo < HISTOGRAM_BINS:
            return list(range(lo, hi + 2))
        width = math.ceil((hi - lo + 1) / HISTOGRAM_BINS)
        return [lo + k * width for k in range(HISTOGRAM_BINS + 1)]
    if low == high:
        return [low, math.nextafter(low, math.inf)]
    step = (high - low) / HISTOGRAM_BINS
    edges = [_round_edge(low + k * step) for k in range(HISTOGRAM_BINS)] + [high]
    return sorted(set(edges))
