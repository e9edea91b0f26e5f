"""Profile of a dataset version: per-column statistics and histograms with frozen edges.

The file is streamed twice, batch by batch, so memory stays bounded whatever its size:

1. every column: counts, nulls, distinct values (exact up to `DISTINCT_CAP`, then a
   lower bound; exact through 64-bit hashes for `pii` and `id` columns), finite
   min/max/mean/std (merged batch by batch), categories, and a Bernoulli sample of about
   `QUANTILE_SAMPLE` rows (seeded, so a profile is reproducible) for the quantiles and
   the histogram edges; below that many rows the quantiles are exact;
2. numeric and temporal columns: counts into the edges chosen after pass 1 (then frozen),
   outlier counts and, given a reference profile, counts into the reference's edges;
   while they take at most MEMO_BYTES (16 MiB: 250,000 rows of 8 numeric columns),
   pass 1 keeps these columns' values and pass 2 does not read the file again.

Histogram edges, the drift baseline (`farpoint.ml.binning.histogram_edges`): between
lo = p01 and hi = p99 (min and max when those are equal); float columns get 20
equal-width bins; integer columns and
dates or timestamps (as integer days or epoch units) get integer edges, one bin per
integer while hi - lo < 20, else 20 bins of width ceil((hi - lo + 1) / 20). Counting
follows `farpoint.core.drift.bin_index`: len(edges) + 1 bins, closed below, with two open
tails, so any later value, on a server or a device, lands in exactly one bin.

Values of `pii` and `id` columns never enter a profile: only counts, distinct and lengths.

The pieces live beside this module: `columns` (reading Arrow batches), `hashes` (64-bit
value hashes), `binning` (edges and counting), `column_stats` (the pass-1 accumulators)
and `profile_compare` (`compare_profiles`); the names callers use are importable from here.
`Profiler` lets one read of the file feed a profile and other accumulators at once
(`farpoint.ml.registration`).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from farpoint.core.errors import ValidationFailed
from farpoint.ml.binning import Binner, count_into_bins, histogram_edges
from farpoint.ml.column_stats import ColumnStats, NumbersMemo, ValueCounts
from farpoint.ml.columns import BATCH_ROWS, non_null_numbers, stream_batches, type_name
from farpoint.ml.hashes import value_hashes
from farpoint.ml.profile_compare import FORMAT, compare_profiles, edges_fingerprint

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

__all__ = [
    "BATCH_ROWS",
    "DISTINCT_CAP",
    "PRIVATE_ROLES",
    "QUANTILE_SAMPLE",
    "ROLES",
    "TOP_CATEGORIES",
    "Profiler",
    "compare_profiles",
    "count_into_bins",
    "profile_parquet",
    "type_name",
    "value_hashes",
]

DISTINCT_CAP = 10_000
"""Distinct values are counted exactly up to this many, then reported as "at least"."""
TOP_CATEGORIES = 50
MAX_CLASSES = 1_000
"""A label with more distinct values than this gets no class counts (a regression target)."""
QUANTILE_SAMPLE = 100_000
MEMO_BYTES = 16 << 20
"""Numbers kept in memory between the two passes (two million); beyond this, the numeric
columns are read again. Reading a few Parquet columns again is cheap next to holding them:
benchmarks/ingest.py prints the peak memory and time this budget gives."""
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
PRIVATE_ROLES = frozenset({"pii", "id"})
ROLES = frozenset({"feature", "label", "protected", "pii", "id", "timestamp", "ignored"})
_SEED = 0


class Profiler:
    """A profile built from batches the caller streams (`columns` in file order,
    `dictionary` columns dictionary-encoded, `batch_size` rows): `add` each batch, then
    `finish`. `profile_parquet` is the same with its own read of the file."""

    def __init__(
        self,
        path: Path,
        roles: Mapping[str, str],
        *,
        reference: Mapping[str, Any] | None = None,
        batch_size: int = BATCH_ROWS,
    ) -> None:
        import numpy as np
        import pyarrow.parquet as pq

        schema = pq.read_schema(path)
        for name, role in roles.items():
            if name not in schema.names:
                raise ValidationFailed(
                    f"role given for column {name!r}, which the data does not have"
                )
            if role not in ROLES:
                raise ValidationFailed(
                    f"unknown role {role!r} for column {name!r}; roles: {sorted(ROLES)}"
                )
        self.path, self.schema = path, schema
        self.reference, self.batch_size = reference, batch_size
        self.row_count = pq.read_metadata(path).num_rows
        self.memo = NumbersMemo(MEMO_BYTES)
        self.cols: dict[str, ColumnStats] = {}
        for field in schema:
            role = roles.get(field.name, "feature")
            self.cols[field.name] = ColumnStats(
                field.name,
                field.type,
                role,
                private=role in PRIVATE_ROLES,
                distinct_cap=DISTINCT_CAP,
                memo=self.memo,
            )
        self.columns = list(schema.names)
        self.dictionary = [
            n for n, c in self.cols.items() if c.kind == "categorical" and not c.private
        ]
        sample = QUANTILE_SAMPLE
        self.rate = sample / self.row_count if self.row_count > sample else None
        self.quantile_method = "exact" if self.rate is None else f"bernoulli sample of ~{sample}"
        self.rng = np.random.default_rng(_SEED)

    def add(self, batch: pa.RecordBatch, hashes: Mapping[str, np.ndarray] | None = None) -> None:
        """Pass 1 over one batch; `hashes` holds `value_hashes` of some of its columns."""
        import numpy as np

        rate = self.rate
        sample = None if rate is None else np.flatnonzero(self.rng.random(batch.num_rows) < rate)
        known = hashes or {}
        for name, arr in zip(batch.schema.names, batch.columns, strict=True):
            self.cols[name].add(arr, sample, known.get(name))

    def finish(self) -> dict[str, Any]:
        """The profile (pass 2 reads the file again only when pass 1's numbers did not
        fit in MEMO_BYTES)."""
        import numpy as np

        cols = self.cols
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
                    edges[name] = histogram_edges(low, high, integer)
                col.samples = []

        reference = self.reference
        ref_edges = _reference_edges(reference, cols) if reference is not None else {}
        counts, outliers, ref_counts = _count_pass(
            self.path, cols, edges, quantiles, ref_edges, self.batch_size, self.memo.values
        )
        self.memo.values = None

        profile: dict[str, Any] = {
            "format": FORMAT,
            "row_count": self.row_count,
            "quantile_method": self.quantile_method,
            "columns": {
                name: _describe(
                    col, quantiles.get(name), edges.get(name), counts.get(name), outliers.get(name)
                )
                for name, col in cols.items()
            },
        }
        profile["edges_sha256"] = edges_fingerprint(profile)
        if reference is not None:
            profile["reference"] = {
                "edges_sha256": edges_fingerprint(reference),
                "counts": ref_counts,
            }
        return profile


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
    profiler = Profiler(path, roles, reference=reference, batch_size=batch_size)
    for batch in stream_batches(path, profiler.columns, batch_size, profiler.dictionary):
        profiler.add(batch)
    return profiler.finish()


def _reference_edges(reference: Mapping[str, Any], cols: dict[str, ColumnStats]) -> dict[str, Any]:
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
    cols: dict[str, ColumnStats],
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
    own = {name: Binner(e) for name, e in edges.items()}
    theirs = {name: Binner(e) for name, e in ref_edges.items()}

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
    col: ColumnStats,
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
        if not col.private and isinstance(col.distinct, ValueCounts):
            top = col.distinct.top(TOP_CATEGORIES)
            out["top"] = top
            out["other_count"] = col.count - col.nulls - sum(t["count"] for t in top)
    elif col.kind in ("numeric", "temporal") and not col.private:
        _describe_numbers(col, out, quantiles, edges, counts, outliers)
    if col.role == "label" and isinstance(col.distinct, ValueCounts):
        distinct, exact = col.distinct.distinct()
        few = exact and distinct <= MAX_CLASSES
        out["classes"] = col.distinct.top(MAX_CLASSES) if few else None
    return out


def _describe_numbers(
    col: ColumnStats,
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
