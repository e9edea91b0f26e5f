"""Pass-1 accumulators of a profile (`farpoint.ml.profile`): one `ColumnStats` per column
takes the file's batches one after the other and keeps counts, distinct values, moments,
lengths and the quantile sample; never more than a bounded amount of memory."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from farpoint.ml.columns import (
    column_kind,
    json_value,
    raw_numbers,
    validity_mask,
    value_counts,
)
from farpoint.ml.hashes import value_hashes

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

__all__ = ["ColumnStats", "ExactDistinct", "NumbersMemo", "ValueCounts"]


class _Distinct:
    """Distinct non-null values, exact up to `cap`, then a lower bound."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
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
        if len(self.known) > self.cap:
            self.lower_bound, self.known = len(self.known), None

    def distinct(self) -> tuple[int, bool]:
        if self.lower_bound is not None:
            return self.lower_bound, False
        return (0 if self.known is None else len(self.known)), True


class ExactDistinct:
    """Exact distinct count through 64-bit hashes: 8 bytes a row, no values kept. The
    sorted hashes stay available (`sorted_hashes`) for a `unique` check of the column."""

    def __init__(self) -> None:
        self.parts: list[np.ndarray] = []
        self.sorted: np.ndarray | None = None

    def add(self, arr: pa.Array, hashes: np.ndarray | None = None) -> None:
        """Count `arr`'s values; `hashes`, when given, are its `value_hashes`."""
        if hashes is None:
            hashes = value_hashes(arr)
        self.parts.append(hashes[validity_mask(arr)] if arr.null_count else hashes)

    def sorted_hashes(self) -> np.ndarray:
        """The hashes of every non-null value, sorted."""
        import numpy as np

        if self.sorted is None:
            hashes = np.concatenate(self.parts) if self.parts else np.zeros(0, np.uint64)
            self.parts = []
            # A sort, then neighbour comparisons: no hash table of a million uint64 to build.
            hashes.sort()
            self.sorted = hashes
        return self.sorted

    def distinct(self) -> tuple[int, bool]:
        import numpy as np

        hashes = self.sorted_hashes()
        if not hashes.size:
            return 0, True
        return 1 + int(np.count_nonzero(hashes[1:] != hashes[:-1])), True


def _length_stats(table: pa.Table) -> tuple[int | None, int | None, int]:
    """(min, max, sum) of the character lengths of a (value, count) table's rows."""
    import pyarrow.compute as pc

    lengths = pc.utf8_length(table["value"])
    bounds = pc.min_max(lengths).as_py()
    total = pc.sum(pc.multiply(lengths.cast("int64"), table["count"])).as_py() or 0
    return bounds["min"], bounds["max"], total


class ValueCounts:
    """Counts per value, exact while at most `cap` values were seen; after that only
    the then most frequent `cap` values keep counting."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
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
        if self.lower_bound is None and batch.num_rows > self.cap:
            self.lower_bound = batch.num_rows
            self.table = self._sorted().slice(0, self.cap)

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


class NumbersMemo:
    """Pass-1 numbers kept for pass 2 while they fit in a budget, so that a file of up
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


class ColumnStats:
    """Pass-1 accumulator of one column; `private` columns (roles pii and id) keep no value."""

    def __init__(
        self,
        name: str,
        dtype: pa.DataType,
        role: str,
        *,
        private: bool,
        distinct_cap: int,
        memo: NumbersMemo | None = None,
    ) -> None:
        self.name, self.memo = name, memo
        self.dtype, self.role, self.kind = dtype, role, column_kind(dtype)
        self.private = private
        self.count = self.nulls = 0
        self.distinct: _Distinct | ExactDistinct | ValueCounts | None = None
        if self.private:
            self.distinct = ExactDistinct()
        elif self.kind == "categorical" or role == "label":
            self.distinct = ValueCounts(distinct_cap)
        elif self.kind in ("numeric", "temporal"):
            self.distinct = _Distinct(distinct_cap)
        self.n = 0
        self.mean = self.m2 = 0.0
        self.low: Any = None
        self.high: Any = None
        self.nan = self.posinf = self.neginf = self.zeros = self.trues = 0
        self.len_min: int | None = None
        self.len_max: int | None = None
        self.len_sum = 0
        self.samples: list[np.ndarray] = []

    def add(
        self, arr: pa.Array, sample: np.ndarray | None, hashes: np.ndarray | None = None
    ) -> None:
        """Take one batch; `sample` picks the quantile sample's rows, `hashes` are the
        batch's `value_hashes` when the caller has them already."""
        self.count += len(arr)
        self.nulls += arr.null_count
        counts = None
        if isinstance(self.distinct, ValueCounts):
            counts = value_counts(arr)
            self.distinct.add(counts)
        elif isinstance(self.distinct, ExactDistinct):
            self.distinct.add(arr, hashes)
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
