"""What registering a version computes from its rows, in as few reads of the file as the
results allow: the profile, the contract validation and the quality report, exactly as
`profile_parquet`, `validate_parquet` and `quality_report` make them one by one.

1. One read of every column feeds the profile's first pass, the whole-row duplicate
   hashes and, when the contract is known beforehand, the contract checks. Each column's
   value hashes are computed once per batch and shared (exact distinct counts of private
   columns, `unique` checks, row hashes).
2. The profile is finished (its histograms count from the numbers pass 1 kept, or read
   the numeric columns again past `MEMO_BYTES`) and the contract inferred if there was
   none.
3. One more read, of only the columns they need, feeds the leakage counts and the
   checks of an inferred contract (whose `unique` columns are private ones: their
   sorted hashes come from the profile).

Batches are the same `batch_size` rows as in the one-by-one functions, so merged
statistics and examples' row numbers are the same too.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from farpoint.ml.column_stats import ExactDistinct
from farpoint.ml.columns import stream_batches
from farpoint.ml.hashes import value_hashes
from farpoint.ml.leakage import LeakagePass
from farpoint.ml.profile import BATCH_ROWS, Profiler, profile_parquet
from farpoint.ml.quality import (
    DuplicateRows,
    label_of,
    quality_limits,
    quality_report,
    report_checks,
)
from farpoint.ml.validation import Validator, validate_parquet

__all__ = ["RowsReport", "analyze_rows"]


@dataclasses.dataclass(frozen=True)
class RowsReport:
    profile: dict[str, Any]
    contract: dict[str, Any]
    validation: dict[str, Any]
    quality: dict[str, Any]


def analyze_rows(
    path: Path,
    *,
    columns: Sequence[Mapping[str, Any]],
    roles: Mapping[str, str],
    contract: Mapping[str, Any] | None,
    infer: Callable[[dict[str, Any]], dict[str, Any]],
    batch_size: int = BATCH_ROWS,
) -> RowsReport:
    """Profile, validate against `contract` (or against `infer(profile)` when None) and
    judge quality, as `profile_parquet`, `validate_parquet` and `quality_report` would."""
    profiler = Profiler(path, roles, batch_size=batch_size)
    schema = profiler.schema
    names = list(dict.fromkeys(c["name"] for c in columns))
    if not set(names) <= set(schema.names):
        # A column the file lacks: let quality_report raise what it raises.
        profile = profile_parquet(path, roles, batch_size=batch_size)
        known = dict(contract) if contract is not None else infer(profile)
        validation = validate_parquet(path, known, batch_size=batch_size)
        quality = quality_report(
            path,
            columns=columns,
            roles=roles,
            profile=profile,
            contract=known,
            validation=validation,
            batch_size=batch_size,
        )
        return RowsReport(profile, known, validation, quality)

    validator = Validator(schema, profiler.row_count, contract) if contract is not None else None
    duplicates = DuplicateRows()
    offset = 0
    # Only the profile's dictionary columns: it measures the lengths of the other strings.
    for batch in stream_batches(path, profiler.columns, batch_size, profiler.dictionary):
        hashes = {
            n: value_hashes(a) for n, a in zip(batch.schema.names, batch.columns, strict=True)
        }
        profiler.add(batch, hashes)
        duplicates.add(batch.num_rows, [hashes[n] for n in names])
        if validator is not None:
            validator.add(batch, offset, hashes)
        offset += batch.num_rows
    profile = profiler.finish()

    if contract is None:
        known = infer(profile)
        validator = Validator(schema, profiler.row_count, known)
        _reuse_hashes(validator, profiler)
        stats = profile["columns"]
        validator.skip_null_free({n for n in stats if stats[n]["null_count"] == 0})
        check = validator.columns
    else:
        assert validator is not None
        known = dict(contract)
        check = []
    limits = quality_limits(None)
    leakage = LeakagePass(names, roles, profile, label_of(roles, profile), limits)
    second = list(dict.fromkeys([*check, *leakage.columns]))
    if second:
        encoded = sorted(set(validator.dictionary) | set(leakage.dictionary))
        offset = 0
        for batch in stream_batches(path, second, batch_size, encoded):
            if check:
                validator.add(batch, offset)
            leakage.add(batch)
            offset += batch.num_rows
    validation = validator.finish(path, batch_size)
    quality = report_checks(
        names, roles, profile, known, validation, limits, duplicates.count(), leakage.scores()
    )
    return RowsReport(profile, known, validation, quality)


def _reuse_hashes(validator: Validator, profiler: Profiler) -> None:
    """`unique` columns the profile hashed already (private ones) take its sorted hashes."""
    for name, unique in validator.uniques.items():
        counter = profiler.cols[name].distinct
        if isinstance(counter, ExactDistinct):
            unique.use_sorted(counter.sorted_hashes())
    for stats in profiler.cols.values():
        if isinstance(stats.distinct, ExactDistinct):
            stats.distinct.sorted = None  # the profile is made: keep only what uniques use
