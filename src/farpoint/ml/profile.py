"""Profile of a dataset version: per-column statistics and histograms with frozen edges.

The file is streamed twice, batch by batch, so memory stays bounded whatever its size:

1. every column: counts, nulls, distinct values (exact up to `DISTINCT_CAP`, then a
   lower bound; exact through 64-bit hashes for `pii` and `id` columns), finite
   min/max/mean/std (merged batch by batch), categories, and a Bernoulli sample of about
   `QUANTILE_SAMPLE` rows (seeded, so a profile is reproducible) for the quantiles and
   the histogram edges; below that many rows the quantiles are exact;
2. numeric and temporal columns: counts into the edges chosen after pass 1 (then frozen),
   outlier counts and, given a reference profile, counts into the reference's edges;
   while they take at most MEMO_BYTES (64 MiB: a million rows of 8 numeric columns),
   pass 1 keeps these columns' values and pass 2 does not read the file again.

Histogram edges, the drift baseline (`_edges`): between lo = p01 and hi = p99 (min and
max when those are equal); float columns get 20 equal-width bins; integer columns and
dates or timestamps (as integer days or epoch units) get integer edges, one bin per
integer while hi - lo < 20, else 20 bins of width ceil((hi - lo + 1) / 20). Counting
follows `farpoint.core.drift.bin_index`: len(edges) + 1 bins, closed below, with two open
tails, so any later value, on a server or a device, lands in exactly one bin.

Values of `pii` and `id` columns never enter a profile: only counts, distinct and lengths.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from farpoint.core.drift import chi_square, js_distance, psi, psi_verdict
from farpoint.core.errors import ValidationFailed

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

__all__ = [
    "BATCH_ROWS",
    "DISTINCT_CAP",
    "FORMAT",
    "NOISE_P_VALUE",
    "PRIVATE_ROLES",
    "QUANTILE_SAMPLE",
    "ROLES",
    "TOP_CATEGORIES",
    "bin_indices",
    "compare_profiles",
    "count_into_bins",
    "edges_fingerprint",
    "json_value",
    "non_null_numbers",
    "profile_parquet",
    "raw_numbers",
    "stream_batches",
    "type_name",
    "validity_mask",
    "value_counts",
    "value_hashes",
]

FORMAT = 1
BATCH_ROWS = 65_536
DISTINCT_CAP = 10_000
"""Distinct values are counted exactly up to this many, then reported as "at least"."""
TOP_CATEGORIES = 50
MAX_CLASSES = 1_000
"""A label with more distinct values than this gets no class counts (a regression target)."""
QUANTILE_SAMPLE = 100_000
MEMO_BYTES = 64 << 20
"""Numbers kept in memory between the two passes; beyond this, the file is read twice."""
HISTOGRAM_BINS = 20
OUTLIER_IQR = 3.0
"""Tukey's far-out fences: q25 - 3 IQR and q75 + 3 IQR (mean +- 4 std when the IQR is 0)."""
QUANTILES = (
    ("p01", 0.01),
    ("p05", 0.05),
    ("p25", 0.25),
    ("p50", 0.5),
    ("p75", 0.75),
    ("p95", 0.95),
    ("p99", 0.99),
)
NOISE_P_VALUE = 0.05
"""`compare_profiles` calls no shift where the chi-square p-value is at least this."""
PRIVATE_ROLES = frozenset({"pii", "id"})
ROLES = frozenset({"feature", "label", "protected", "pii", "id", "timestamp", "ignored"})
_SEED = 0


_TYPE_NAMES = {
    "double": "float64",
    "float": "float32",
    "halffloat": "float16",
    "large_string": "string",
    "large_utf8": "string",
    "utf8": "string",
}


def type_name(dtype: pa.DataType) -> str:
    """The canonical type string of an Arrow type: `float64` where Arrow says `double`."""
    name = str(dtype)
    return _TYPE_NAMES.get(name, name)


def _kind(dtype: pa.DataType) -> str:
    import pyarrow as pa

    if pa.types.is_boolean(dtype):
        return "boolean"
    if pa.types.is_integer(dtype) or pa.types.is_floating(dtype):
        return "numeric"
    if pa.types.is_string(dtype) or pa.types.is_large_string(dtype):
        return "categorical"
    if pa.types.is_date(dtype) or pa.types.is_timestamp(dtype):
        return "temporal"
    return "other"


def validity_mask(arr: pa.Array) -> np.ndarray:
    """The validity bitmap of `arr` as a numpy bool array."""
    import numpy as np
    import pyarrow as pa

    if pa.types.is_dictionary(arr.type):
        arr = arr.indices
    bitmap = arr.buffers()[0] if len(arr) else None
    if bitmap is None:
        return np.full(len(arr), arr.null_count == 0)
    bits = np.frombuffer(bitmap, dtype=np.uint8)
    return np.unpackbits(bits, count=arr.offset + len(arr), bitorder="little")[arr.offset :].view(
        bool
    )


def raw_numbers(arr: pa.Array) -> np.ndarray:
    """Every slot of a numeric or temporal array as numpy (null slots hold arbitrary
    numbers: mask them with `validity_mask`); dates and timestamps as integers since the
    epoch. Read straight from the Arrow buffer, without a copy where the type allows."""
    import numpy as np
    import pyarrow as pa

    dtype = arr.type
    if pa.types.is_null(dtype) or len(arr) == arr.null_count:
        return np.zeros(len(arr), dtype=np.int64)
    if pa.types.is_date32(dtype):
        np_dtype: Any = np.int32
    elif pa.types.is_date64(dtype) or pa.types.is_timestamp(dtype):
        np_dtype = np.int64
    elif pa.types.is_integer(dtype) or pa.types.is_floating(dtype):
        np_dtype = dtype.to_pandas_dtype()
    else:
        raise TypeError(f"not a numeric or temporal column: {dtype}")
    values = np.frombuffer(arr.buffers()[1], dtype=np_dtype, count=arr.offset + len(arr))[
        arr.offset :
    ]
    return values.astype(np.int64) if np_dtype is np.int32 else values


def non_null_numbers(arr: pa.Array) -> np.ndarray:
    """The non-null values of a numeric or temporal array as numpy (see `raw_numbers`)."""
    values = raw_numbers(arr)
    # A boolean mask beats drop_null's filter kernel tenfold on a batch with a few nulls.
    return values[validity_mask(arr)] if arr.null_count else values


class _Binner:
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
    return _Binner(edges).index(values)


def count_into_bins(edges: Sequence[float], values: Any) -> list[int]:
    """Counts of `values` (numpy, pyarrow or a list) into the bins of frozen `edges`.

    The same rule as `farpoint.core.drift.bin_index`: bin i holds edges[i-1] <= x <
    edges[i], with open tails; nulls and NaN are skipped.
    """
    import numpy as np
    import pyarrow as pa

    binner = _Binner(edges)
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if not isinstance(values, np.ndarray):
        values = non_null_numbers(values if isinstance(values, pa.Array) else pa.array(values))
    return [int(c) for c in binner.count(values)]


_M1, _M2, _GOLDEN = 0xBF58476D1CE4E5B9, 0x94D049BB133111EB, 0x9E3779B97F4A7C15
_NULL_HASH = 0x5BD1E9955BD1E995
_STRING_CHUNK_BYTES = 1 << 22


def _mix(z: np.ndarray) -> np.ndarray:
    import numpy as np

    # splitmix64's finaliser: every input bit moves about half of the output bits.
    z = z ^ (z >> np.uint64(30))
    z = z * np.uint64(_M1)
    z = z ^ (z >> np.uint64(27))
    z = z * np.uint64(_M2)
    mixed: np.ndarray = z ^ (z >> np.uint64(31))
    return mixed


_SHORT_STRING = 64
_SMALL_KEYS = _SHORT_STRING * 256
_small_key_cache: list[np.ndarray] = []


def _small_key_mix() -> np.ndarray:
    """`_mix` of every (position < 64, byte) key, looked up instead of computed: the
    same hash, three times faster on short strings."""
    import numpy as np

    if not _small_key_cache:
        _small_key_cache.append(_mix(np.arange(_SMALL_KEYS, dtype=np.uint64) + np.uint64(_GOLDEN)))
    return _small_key_cache[0]


def _string_hashes(arr: pa.Array) -> np.ndarray:
    import numpy as np
    import pyarrow as pa

    large = pa.types.is_large_string(arr.type)
    offsets = np.frombuffer(
        arr.buffers()[1],
        dtype=np.int64 if large else np.int32,
        count=len(arr) + 1,
        offset=arr.offset * (8 if large else 4),
    ).astype(np.int64)
    data_buffer = arr.buffers()[2]
    data = np.frombuffer(data_buffer, dtype=np.uint8) if data_buffer else np.zeros(0, np.uint8)
    lengths = np.diff(offsets)
    out = np.empty(len(arr), dtype=np.uint64)
    # Each byte is mixed with its position and the results are summed per string
    # (tabulation-style hashing numpy computes without a Python loop over the values);
    # chunks of rows bound the temporaries when strings are long.
    start = 0
    while start < len(arr):
        stop = int(np.searchsorted(offsets, offsets[start] + _STRING_CHUNK_BYTES, "right"))
        stop = min(len(arr), max(stop - 1, start + 1))
        lens = lengths[start:stop]
        longest = int(lens.max()) if lens.size else 0
        if longest <= _SHORT_STRING:
            sums = _short_sums(data, offsets[start:stop], lens, longest)
        else:
            sums = _long_sums(data, offsets[start : stop + 1], lens)
        out[start:stop] = _mix(sums ^ (lens.astype(np.uint64) * np.uint64(_GOLDEN)))
        start = stop
    return out


def _short_sums(data: np.ndarray, starts: np.ndarray, lens: np.ndarray, longest: int) -> np.ndarray:
    """Per-string sums of mixed (position, byte) keys, one vectorised step per position."""
    import numpy as np

    table = _small_key_mix()
    sums = np.zeros(lens.size, dtype=np.uint64)
    last = max(0, data.size - 1)
    for j in range(longest):
        live = lens > j
        key = data[np.minimum(starts + j, last)].astype(np.int64) | (j << 8)
        sums += np.where(live, table[key], np.uint64(0))
    return sums


def _long_sums(data: np.ndarray, offsets: np.ndarray, lens: np.ndarray) -> np.ndarray:
    """The same sums as `_short_sums`, one vectorised step over all bytes at once."""
    import numpy as np

    first, last = offsets[0], offsets[-1]
    rel = offsets[:-1] - first
    position = np.arange(last - first, dtype=np.int64) - np.repeat(rel, lens)
    keys = (position.astype(np.uint64) << np.uint64(8)) | data[first:last].astype(np.uint64)
    mixed = _small_key_mix()[np.minimum(keys, np.uint64(_SMALL_KEYS - 1))]
    long_keys = keys >= np.uint64(_SMALL_KEYS)
    if long_keys.any():
        mixed[long_keys] = _mix(keys[long_keys] + np.uint64(_GOLDEN))
    sums = np.zeros(lens.size, dtype=np.uint64)
    nonempty = lens > 0
    if mixed.size:
        sums[nonempty] = np.add.reduceat(mixed, rel[nonempty])
    return sums


def value_hashes(arr: pa.Array) -> np.ndarray:
    """A 64-bit hash per value (uint64), equal values giving equal hashes; nulls share
    one hash. Used for exact distinct counts, `unique` checks and duplicate rows."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    if pa.types.is_dictionary(arr.type):
        if not len(arr.dictionary):
            return np.full(len(arr), _NULL_HASH, dtype=np.uint64)
        # Each distinct value is hashed once, then spread by the indices.
        hashes: np.ndarray = value_hashes(arr.dictionary)[raw_numbers(arr.indices)]
        if arr.null_count:
            hashes[~validity_mask(arr)] = np.uint64(_NULL_HASH)
        return hashes
    kind = _kind(arr.type)
    if kind == "categorical":
        hashes = _string_hashes(arr)
    elif kind in ("numeric", "temporal", "boolean"):
        if kind == "boolean":
            values = (arr.fill_null(False) if arr.null_count else arr).to_numpy(
                zero_copy_only=False
            )
        else:
            values = raw_numbers(arr)
        if values.dtype.kind == "f":
            # -0.0 == 0.0 and every NaN is the same missing number.
            values = np.where(np.isnan(values), np.nan, values + 0.0).astype(np.float64)
            bits = values.view(np.uint64)
        else:
            bits = values.astype(np.int64).view(np.uint64)
        hashes = _mix(bits + np.uint64(_GOLDEN))
    else:
        return value_hashes(pc.cast(arr, pa.string()))
    if arr.null_count:
        hashes[~validity_mask(arr)] = np.uint64(_NULL_HASH)
    return hashes


class _Distinct:
    """Distinct non-null values, exact up to DISTINCT_CAP, then a lower bound."""

    def __init__(self) -> None:
        self.known: pa.Array | None = None
        self.lower_bound: int | None = None

    def add(self, arr: pa.Array) -> None:
        import pyarrow as pa
        import pyarrow.compute as pc

        if self.lower_bound is not None:
            return
        if pa.types.is_timestamp(arr.type) or pa.types.is_date64(arr.type):
            arr = arr.cast(pa.int64())  # hashing timestamps is 20 times slower than integers
        batch = pc.unique(arr.drop_null() if arr.null_count else arr)
        self.known = (
            batch if self.known is None else pc.unique(pa.concat_arrays([self.known, batch]))
        )
        if len(self.known) > DISTINCT_CAP:
            self.lower_bound, self.known = len(self.known), None

    def distinct(self) -> tuple[int, bool]:
        if self.lower_bound is not None:
            return self.lower_bound, False
        return (0 if self.known is None else len(self.known)), True


class _ExactDistinct:
    """Exact distinct count through 64-bit hashes: 8 bytes a row, no values kept."""

    def __init__(self) -> None:
        self.parts: list[np.ndarray] = []

    def add(self, arr: pa.Array) -> None:
        hashes = value_hashes(arr)
        self.parts.append(hashes[validity_mask(arr)] if arr.null_count else hashes)

    def distinct(self) -> tuple[int, bool]:
        import numpy as np

        if not self.parts:
            return 0, True
        hashes = np.concatenate(self.parts)
        self.parts = []
        if not hashes.size:
            return 0, True
        # Sorting beats np.unique's hash table on a million uint64 by a factor of five.
        hashes.sort()
        return 1 + int(np.count_nonzero(hashes[1:] != hashes[:-1])), True


def value_counts(arr: pa.Array) -> pa.Table:
    """`(value, count)` of the non-null values of one batch; a dictionary-encoded batch
    (see `stream_batches`) is counted from its indices without touching the strings."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    if pa.types.is_dictionary(arr.type):
        indices = non_null_numbers(arr.indices)
        counts = np.bincount(indices, minlength=len(arr.dictionary))
        used = np.flatnonzero(counts)
        return pa.table({"value": arr.dictionary.take(pa.array(used)), "count": counts[used]})
    counted = pc.value_counts(arr.drop_null() if arr.null_count else arr)
    return pa.table({"value": counted.field("values"), "count": counted.field("counts")})


def _length_stats(table: pa.Table) -> tuple[int | None, int | None, int]:
    """(min, max, sum) of the character lengths of a (value, count) table's rows."""
    import pyarrow.compute as pc

    lengths = pc.utf8_length(table["value"])
    bounds = pc.min_max(lengths).as_py()
    total = pc.sum(pc.multiply(lengths.cast("int64"), table["count"])).as_py() or 0
    return bounds["min"], bounds["max"], total


class _ValueCounts:
    """Counts per value, exact while at most DISTINCT_CAP values were seen; after that only
    the then most frequent DISTINCT_CAP values keep counting."""

    def __init__(self) -> None:
        self.table: pa.Table | None = None
        self.lower_bound: int | None = None

    def add(self, batch: pa.Table) -> None:
        import pyarrow as pa
        import pyarrow.compute as pc

        if self.table is not None and self.lower_bound is not None:
            batch = batch.filter(pc.is_in(batch["value"], value_set=self.table["value"]))
        if self.table is not None:
            merged = (
                pa.concat_tables([self.table, batch])
                .group_by("value")
                .aggregate([("count", "sum")])
            )
            batch = pa.table({"value": merged["value"], "count": merged["count_sum"]})
        self.table = batch
        if self.lower_bound is None and batch.num_rows > DISTINCT_CAP:
            self.lower_bound = batch.num_rows
            self.table = self._sorted().slice(0, DISTINCT_CAP)

    def _sorted(self) -> pa.Table:
        assert self.table is not None
        return self.table.sort_by([("count", "descending"), ("value", "ascending")])

    def distinct(self) -> tuple[int, bool]:
        if self.lower_bound is not None:
            return self.lower_bound, False
        return (0 if self.table is None else self.table.num_rows), True

    def top(self, limit: int) -> list[dict[str, Any]]:
        if self.table is None:
            return []
        return [
            {"value": json_value(row["value"]), "count": row["count"]}
            for row in self._sorted().slice(0, limit).to_pylist()
        ]


def json_value(value: Any) -> Any:
    """A value as JSON takes it: dates as ISO strings, NaN and infinities as strings."""
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


class _Memo:
    """Pass-1 numbers kept for pass 2 while they fit in MEMO_BYTES, so that a file of up
    to about a million rows is read once; past that, pass 2 reads the file again."""

    def __init__(self, budget: int) -> None:
        self.left = budget
        self.values: dict[str, list[np.ndarray]] | None = {}

    def keep(self, name: str, values: np.ndarray) -> None:
        if self.values is None:
            return
        self.left -= values.nbytes
        if self.left < 0:
            self.values = None
        else:
            self.values.setdefault(name, []).append(values)


class _Column:
    """Pass-1 accumulator of one column."""

    def __init__(self, name: str, dtype: pa.DataType, role: str, memo: _Memo | None = None) -> None:
        self.name, self.memo = name, memo
        self.dtype, self.role, self.kind = dtype, role, _kind(dtype)
        self.private = role in PRIVATE_ROLES
        self.count = self.nulls = 0
        self.distinct: _Distinct | _ExactDistinct | _ValueCounts | None = None
        if self.private:
            self.distinct = _ExactDistinct()
        elif self.kind == "categorical" or role == "label":
            self.distinct = _ValueCounts()
        elif self.kind in ("numeric", "temporal"):
            self.distinct = _Distinct()
        self.n = 0
        self.mean = self.m2 = 0.0
        self.low: Any = None
        self.high: Any = None
        self.nan = self.posinf = self.neginf = self.zeros = self.trues = 0
        self.len_min: int | None = None
        self.len_max: int | None = None
        self.len_sum = 0
        self.samples: list[np.ndarray] = []

    def add(self, arr: pa.Array, sample: np.ndarray | None) -> None:
        self.count += len(arr)
        self.nulls += arr.null_count
        counts = None
        if isinstance(self.distinct, _ValueCounts):
            counts = value_counts(arr)
            self.distinct.add(counts)
        elif self.distinct is not None:
            self.distinct.add(arr)
        if self.kind == "boolean":
            import pyarrow.compute as pc

            self.trues += pc.sum(arr).as_py() or 0
        elif self.kind == "categorical":
            self._add_lengths(arr, counts)
        elif self.kind in ("numeric", "temporal") and not self.private:
            self._add_numbers(arr, sample)

    def _add_lengths(self, arr: pa.Array, counts: pa.Table | None) -> None:
        import pyarrow.compute as pc

        if counts is not None:
            stats = _length_stats(counts)
        else:
            lengths = pc.utf8_length(arr)
            bounds = pc.min_max(lengths).as_py()
            stats = (bounds["min"], bounds["max"], pc.sum(lengths).as_py() or 0)
        low, high, total = stats
        if low is None or high is None:
            return
        self.len_min = low if self.len_min is None else min(self.len_min, low)
        self.len_max = high if self.len_max is None else max(self.len_max, high)
        self.len_sum += total

    def lengths(self) -> dict[str, Any]:
        non_null = self.count - self.nulls
        return {
            "min": self.len_min,
            "max": self.len_max,
            "mean": self.len_sum / non_null if non_null else None,
        }

    def _add_numbers(self, arr: pa.Array, sample: np.ndarray | None) -> None:
        import numpy as np

        raw = raw_numbers(arr)
        valid = validity_mask(arr) if arr.null_count else None
        v = raw if valid is None else raw[valid]
        if self.memo is not None:
            self.memo.keep(self.name, v)
        picked = raw if sample is None else raw[sample]
        if valid is not None:
            picked = picked[valid if sample is None else valid[sample]]
        if v.dtype.kind == "f":
            finite = np.isfinite(v)
            if not finite.all():
                self.nan += int(np.isnan(v).sum())
                self.posinf += int((v == np.inf).sum())
                self.neginf += int((v == -np.inf).sum())
                v = v[finite]
                picked = picked[np.isfinite(picked)]
        self.samples.append(picked)
        if not v.size:
            return
        low, high = v.min().item(), v.max().item()
        self.low = low if self.low is None else min(self.low, low)
        self.high = high if self.high is None else max(self.high, high)
        if self.kind == "temporal":
            return
        self.zeros += int(np.count_nonzero(v == 0))
        vf = v.astype(np.float64, copy=False)
        # Chan et al.'s pairwise update: batch means and squared deviations merge without
        # the cancellation of a running sum of squares.
        mean_b = float(vf.mean())
        m2_b = float(np.square(vf - mean_b).sum())
        n_a, n_b = self.n, int(v.size)
        delta = mean_b - self.mean
        self.n = n_a + n_b
        self.mean += delta * n_b / self.n
        self.m2 += m2_b + delta * delta * n_a * n_b / self.n


def _round_edge(x: float) -> float:
    return float(f"{x:.12g}")


def _edges(low: float, high: float, integer: bool) -> list[float] | list[int]:
    """Frozen histogram edges for values mostly within [low, high] (see module doc)."""
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


def edges_fingerprint(profile: Mapping[str, Any]) -> str:
    """sha256 over every column's histogram edges: counts made against one profile's
    edges are only comparable with that profile."""
    edges = {
        name: col["histogram"]["edges"]
        for name, col in profile.get("columns", {}).items()
        if col.get("histogram")
    }
    return hashlib.sha256(json.dumps(edges, sort_keys=True).encode()).hexdigest()


def stream_batches(
    path: Path, columns: Sequence[str], batch_size: int, dictionary: Sequence[str] = ()
) -> Iterator[pa.RecordBatch]:
    """Record batches of `columns`, streamed; the `dictionary` columns arrive
    dictionary-encoded (Parquet stores low-cardinality strings that way, and decoding
    them to strings costs five times more than reading the codes)."""
    import pyarrow.parquet as pq

    with pq.ParquetFile(path, read_dictionary=list(dictionary) or None) as f:
        yield from f.iter_batches(batch_size=batch_size, columns=list(columns))


def profile_parquet(
    path: Path,
    roles: Mapping[str, str],
    *,
    reference: Mapping[str, Any] | None = None,
    batch_size: int = BATCH_ROWS,
) -> dict[str, Any]:
    """The JSON-ready profile of a canonical Parquet file (format 1, see module doc).

    With `reference` (an earlier profile), numeric and temporal columns are also counted
    into the reference's frozen edges, under `"reference"`, which `compare_profiles` uses.
    """
    import numpy as np
    import pyarrow.parquet as pq

    schema = pq.read_schema(path)
    row_count = pq.read_metadata(path).num_rows
    for name, role in roles.items():
        if name not in schema.names:
            raise ValidationFailed(f"role given for column {name!r}, which the data does not have")
        if role not in ROLES:
            raise ValidationFailed(
                f"unknown role {role!r} for column {name!r}; roles: {sorted(ROLES)}"
            )
    memo = _Memo(MEMO_BYTES)
    cols = {f.name: _Column(f.name, f.type, roles.get(f.name, "feature"), memo) for f in schema}

    rate = QUANTILE_SAMPLE / row_count if row_count > QUANTILE_SAMPLE else None
    rng = np.random.default_rng(_SEED)
    dictionary = [n for n, c in cols.items() if c.kind == "categorical" and not c.private]
    for batch in stream_batches(path, schema.names, batch_size, dictionary):
        sample = None if rate is None else np.flatnonzero(rng.random(batch.num_rows) < rate)
        for name, arr in zip(batch.schema.names, batch.columns, strict=True):
            cols[name].add(arr, sample)

    edges: dict[str, list[Any]] = {}
    quantiles: dict[str, dict[str, float]] = {}
    for name, col in cols.items():
        if col.samples:
            sample_values = np.concatenate(col.samples)
            if sample_values.size:
                qs = np.quantile(sample_values, [q for _, q in QUANTILES])
                quantiles[name] = {k: float(v) for (k, _), v in zip(QUANTILES, qs, strict=True)}
                low: Any = quantiles[name]["p01"]
                high: Any = quantiles[name]["p99"]
                if low == high:
                    low, high = col.low, col.high
                integer = col.kind == "temporal" or sample_values.dtype.kind in "iu"
                edges[name] = _edges(low, high, integer)
            col.samples = []

    ref_edges = _reference_edges(reference, cols) if reference is not None else {}
    counts, outliers, ref_counts = _count_pass(
        path, cols, edges, quantiles, ref_edges, batch_size, memo.values
    )
    memo.values = None

    profile: dict[str, Any] = {
        "format": FORMAT,
        "row_count": row_count,
        "quantile_method": "exact" if rate is None else f"bernoulli sample of ~{QUANTILE_SAMPLE}",
        "columns": {
            name: _describe(
                col, quantiles.get(name), edges.get(name), counts.get(name), outliers.get(name)
            )
            for name, col in cols.items()
        },
    }
    profile["edges_sha256"] = edges_fingerprint(profile)
    if reference is not None:
        profile["reference"] = {"edges_sha256": edges_fingerprint(reference), "counts": ref_counts}
    return profile


def _reference_edges(reference: Mapping[str, Any], cols: dict[str, _Column]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, ref in reference.get("columns", {}).items():
        col = cols.get(name)
        hist = ref.get("histogram")
        if col is None or not hist or col.private or col.kind not in ("numeric", "temporal"):
            continue
        if hist.get("unit") == _unit(col.dtype):
            out[name] = hist["edges"]
    return out


def _count_pass(
    path: Path,
    cols: dict[str, _Column],
    edges: dict[str, list[Any]],
    quantiles: dict[str, dict[str, float]],
    ref_edges: dict[str, Any],
    batch_size: int,
    kept: dict[str, list[np.ndarray]] | None,
) -> tuple[dict[str, list[int]], dict[str, dict[str, Any]], dict[str, list[int]]]:
    import numpy as np

    fences: dict[str, tuple[float, float]] = {}
    for name, q in quantiles.items():
        col = cols[name]
        if col.kind != "numeric":
            continue
        iqr = q["p75"] - q["p25"]
        if iqr > 0:
            fences[name] = (q["p25"] - OUTLIER_IQR * iqr, q["p75"] + OUTLIER_IQR * iqr)
        elif col.n > 1:
            std = math.sqrt(col.m2 / (col.n - 1))
            fences[name] = (col.mean - 4 * std, col.mean + 4 * std)
    counts = {name: np.zeros(len(e) + 1, dtype=np.int64) for name, e in edges.items()}
    refs = {name: np.zeros(len(e) + 1, dtype=np.int64) for name, e in ref_edges.items()}
    beyond = dict.fromkeys(fences, 0)
    needed = sorted(set(counts) | set(refs))
    own = {name: _Binner(e) for name, e in edges.items()}
    theirs = {name: _Binner(e) for name, e in ref_edges.items()}

    def count(name: str, v: np.ndarray) -> None:
        if v.dtype.kind == "f":
            v = v[~np.isnan(v)]
        if name in own:
            counts[name] += own[name].count(v)
        if name in theirs:
            refs[name] += theirs[name].count(v)
        if name in fences:
            low, high = fences[name]
            beyond[name] += int(np.count_nonzero((v < low) | (v > high)))

    if kept is not None:
        for name in needed:
            for v in kept.get(name, []):
                count(name, v)
    elif needed:
        for batch in stream_batches(path, needed, batch_size):
            for name, arr in zip(batch.schema.names, batch.columns, strict=True):
                count(name, non_null_numbers(arr))
    outliers = {
        name: {"low_fence": low, "high_fence": high, "count": beyond[name]}
        for name, (low, high) in fences.items()
    }
    return (
        {k: v.tolist() for k, v in counts.items()},
        outliers,
        {k: v.tolist() for k, v in refs.items()},
    )


def _unit(dtype: pa.DataType) -> str | None:
    import pyarrow as pa

    if pa.types.is_date32(dtype):
        return "days since 1970-01-01"
    if pa.types.is_date64(dtype):
        return "ms since 1970-01-01"
    if pa.types.is_timestamp(dtype):
        return f"{dtype.unit} since 1970-01-01"
    return None


def _epoch_iso(value: int, dtype: pa.DataType) -> str:
    import pyarrow as pa

    if pa.types.is_date32(dtype):
        return (dt.date(1970, 1, 1) + dt.timedelta(days=value)).isoformat()
    per_second = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}[
        "ms" if pa.types.is_date64(dtype) else dtype.unit
    ]
    seconds, rest = divmod(value, per_second)
    tz = dt.UTC if getattr(dtype, "tz", None) else None
    moment = dt.datetime(1970, 1, 1, tzinfo=tz) + dt.timedelta(
        seconds=seconds, microseconds=rest * 1_000_000 // per_second
    )
    return moment.isoformat()


def _describe(
    col: _Column,
    quantiles: dict[str, float] | None,
    edges: list[Any] | None,
    counts: list[int] | None,
    outliers: dict[str, Any] | None,
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "dtype": type_name(col.dtype),
        "role": col.role,
        "kind": col.kind,
        "count": col.count,
        "null_count": col.nulls,
        "null_rate": col.nulls / col.count if col.count else 0.0,
    }
    if col.distinct is not None:
        out["distinct"], out["distinct_exact"] = col.distinct.distinct()
    elif col.kind == "boolean":
        out["distinct"] = int(col.trues > 0) + int(col.count - col.nulls - col.trues > 0)
        out["distinct_exact"] = True
    if col.private:
        out["private"] = True
    if col.kind == "boolean":
        out["true_count"] = col.trues
        out["false_count"] = col.count - col.nulls - col.trues
    elif col.kind == "categorical":
        out["length"] = col.lengths()
        if not col.private and isinstance(col.distinct, _ValueCounts):
            top = col.distinct.top(TOP_CATEGORIES)
            out["top"] = top
            out["other_count"] = col.count - col.nulls - sum(t["count"] for t in top)
    elif col.kind in ("numeric", "temporal") and not col.private:
        _describe_numbers(col, out, quantiles, edges, counts, outliers)
    if col.role == "label" and isinstance(col.distinct, _ValueCounts):
        distinct, exact = col.distinct.distinct()
        few = exact and distinct <= MAX_CLASSES
        out["classes"] = col.distinct.top(MAX_CLASSES) if few else None
    return out


def _describe_numbers(
    col: _Column,
    out: dict[str, Any],
    quantiles: dict[str, float] | None,
    edges: list[Any] | None,
    counts: list[int] | None,
    outliers: dict[str, Any] | None,
) -> None:
    if col.kind == "temporal":
        out["min"] = None if col.low is None else _epoch_iso(int(col.low), col.dtype)
        out["max"] = None if col.high is None else _epoch_iso(int(col.high), col.dtype)
    else:
        out.update(
            min=col.low,
            max=col.high,
            mean=col.mean if col.n else None,
            std=math.sqrt(col.m2 / (col.n - 1)) if col.n > 1 else None,
            zeros=col.zeros,
            nan_count=col.nan,
            posinf_count=col.posinf,
            neginf_count=col.neginf,
            quantiles=quantiles,
            outliers=outliers,
        )
    out["histogram"] = (
        {"edges": edges, "counts": counts, "unit": _unit(col.dtype)} if edges is not None else None
    )


def _category_counts(col: Mapping[str, Any]) -> dict[Any, int] | None:
    if col.get("kind") == "boolean":
        return {False: col["false_count"], True: col["true_count"]}
    if "top" in col:
        counts = {json.dumps(t["value"]): t["count"] for t in col["top"]}
        if col.get("other_count"):
            counts["\0other"] = col["other_count"]
        return counts
    return None


def compare_profiles(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """Per-column comparison of two profiles: presence, dtype, null rate, mean shift in
    units of the old std, PSI / JS distance / chi-square and a verdict (PSI < 0.1 none,
    0.1 to 0.2 moderate, >= 0.2 significant; none where the chi-square p-value is at
    least NOISE_P_VALUE, as small versions differ by chance).

    Numeric and temporal distributions are compared over the OLD profile's frozen bins,
    so `new` must have been made with `profile_parquet(..., reference=old)`; categorical
    and boolean ones over the union of both profiles' categories (exact while each lists
    all its categories, i.e. up to TOP_CATEGORIES; otherwise the rest pool in "other").
    """
    old_cols, new_cols = old.get("columns", {}), new.get("columns", {})
    ref = new.get("reference") or {}
    ref_counts = ref.get("counts", {}) if ref.get("edges_sha256") == edges_fingerprint(old) else {}
    out: dict[str, Any] = {}
    for name in list(old_cols) + [n for n in new_cols if n not in old_cols]:
        a, b = old_cols.get(name), new_cols.get(name)
        entry: dict[str, Any] = {"in_old": a is not None, "in_new": b is not None}
        if a is None or b is None:
            entry["verdict"] = "added" if a is None else "removed"
            out[name] = entry
            continue
        entry.update(
            dtype_old=a["dtype"],
            dtype_new=b["dtype"],
            dtype_changed=a["dtype"] != b["dtype"],
            null_rate_old=a["null_rate"],
            null_rate_new=b["null_rate"],
            null_rate_change=b["null_rate"] - a["null_rate"],
            mean_shift_std=(
                (b["mean"] - a["mean"]) / a["std"]
                if a.get("std") and b.get("mean") is not None and a.get("mean") is not None
                else None
            ),
        )
        expected: list[int] | None = None
        actual: list[int] | None = None
        basis = None
        a_hist, b_hist = a.get("histogram"), b.get("histogram")
        if a_hist and name in ref_counts:
            expected, actual, basis = a_hist["counts"], ref_counts[name], "reference_bins"
        elif a_hist and b_hist and a_hist["edges"] == b_hist["edges"]:
            expected, actual, basis = a_hist["counts"], b_hist["counts"], "same_bins"
        else:
            ca, cb = _category_counts(a), _category_counts(b)
            if ca is not None and cb is not None:
                keys = list(ca) + [k for k in cb if k not in ca]
                expected, actual = [ca.get(k, 0) for k in keys], [cb.get(k, 0) for k in keys]
                basis = "categories"
        entry.update(psi=None, js_distance=None, chi_square_p=None, basis=basis)
        if expected and actual and sum(expected) > 0 and sum(actual) > 0:
            entry["psi"] = psi(expected, actual)
            entry["js_distance"] = js_distance(expected, actual)
            entry["chi_square_p"] = chi_square(expected, actual)[1]
        if entry["dtype_changed"]:
            entry["verdict"] = "type_changed"
        elif entry["psi"] is not None:
            # PSI grows with sampling noise on small versions; a difference the chi-square
            # test cannot tell from noise is not called a shift.
            noise = entry["chi_square_p"] >= NOISE_P_VALUE
            entry["verdict"] = "none" if noise else psi_verdict(entry["psi"])
        else:
            entry["verdict"] = "not_compared"
        out[name] = entry
    summary = {
        verdict: [n for n, e in out.items() if e["verdict"] == verdict]
        for verdict in ("significant", "moderate", "added", "removed", "type_changed")
    }
    return {"format": FORMAT, "columns": out, "summary": summary}
