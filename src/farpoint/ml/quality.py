"""Quality report of a dataset version: checks with a severity, each explained.

Most checks read the profile and the contract validation; one streaming pass over the
file adds what they cannot tell: whole-row duplicates (a 64-bit hash per row, 8 bytes a
row, sorted at the end; a false duplicate needs a hash collision, about 1e-8 at a million
rows) and, per feature, label counts per histogram bin or category for label leakage.

Label leakage, a single feature that predicts the label almost perfectly, scores in
[0, 1] against `label_leakage`:
- classification label, numeric or temporal feature: over the profile's frozen bins, the
  best of the one-vs-rest ROC AUC (as max(AUC, 1 - AUC), ties within a bin counted half)
  and Goodman-Kruskal's lambda (the share of the majority-class guess's errors that
  knowing the bin removes);
- classification label, string or boolean feature: lambda over the categories, with
  categories of fewer than LEAKAGE_MIN_ROWS rows pooled, so that a near-unique column
  cannot look predictive one row at a time; features with more than `max_categories`
  values are reported as high-cardinality instead, and one distinct value per row as
  id-like;
- numeric label (regression): |Pearson r| for numeric features.

The leakage pass lives in `farpoint.ml.leakage`; `DuplicateRows` and `report_checks` let
one read of the file feed this report and other accumulators at once
(`farpoint.ml.registration`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from farpoint.ml.columns import BATCH_ROWS, stream_batches
from farpoint.ml.hashes import value_hashes
from farpoint.ml.leakage import LeakagePass, id_like, label_classes
from farpoint.ml.validation import validate_parquet

if TYPE_CHECKING:
    import numpy as np

__all__ = [
    "THRESHOLDS",
    "DuplicateRows",
    "label_of",
    "quality_limits",
    "quality_report",
    "report_checks",
]

THRESHOLDS: dict[str, float] = {
    # share of missing values (null or NaN) above which a column is flagged (warning)
    "missing_share": 0.05,
    # the same for the label (error): a training row without a label is no training row
    "label_missing_share": 0.0,
    # share of whole-row duplicates above which the version is flagged (warning)
    "duplicate_share": 0.01,
    # share of the rarest class below which the label is flagged as imbalanced (warning)
    "minority_share": 0.05,
    # leakage score (AUC-based, lambda or |r|) from which a feature is flagged (error)
    "label_leakage": 0.99,
    # distinct values per non-missing value from which a feature looks like an id (warning)
    "id_like_ratio": 0.99,
    # categories above which a string feature is too fine-grained to learn from (warning)
    "max_categories": 1000,
    # share of values beyond the profile's outlier fences above which to warn
    "outlier_share": 0.01,
}
"""Default thresholds; `quality_report(thresholds=...)` overrides any of them."""
_ROW_PRIME = 0x100000001B3
_CHECKED_ROLES = ("feature", "protected", "label")


def _check(
    check: str,
    column: str | None,
    severity: str,
    passed: bool,
    value: float,
    threshold: float,
    detail: str,
) -> dict[str, Any]:
    return {
        "check": check,
        "column": column,
        "severity": severity,
        "passed": passed,
        "value": value,
        "threshold": threshold,
        "detail": detail,
    }


class DuplicateRows:
    """Whole-row duplicates through a 64-bit hash per row, combined from the columns'
    `value_hashes` in a fixed column order; 8 bytes a row, sorted at the end."""

    def __init__(self) -> None:
        self.parts: list[np.ndarray] = []

    def add(self, rows: int, column_hashes: Sequence[np.ndarray]) -> None:
        """One batch of `rows` rows, given each column's value hashes in column order."""
        import numpy as np

        row = np.zeros(rows, dtype=np.uint64)
        for hashes in column_hashes:
            row = (row * np.uint64(_ROW_PRIME)) ^ hashes
        self.parts.append(row)

    def count(self) -> int:
        """Rows that repeat an earlier row exactly."""
        import numpy as np

        every = np.sort(np.concatenate(self.parts)) if self.parts else np.zeros(0, np.uint64)
        self.parts = []
        return int(np.count_nonzero(every[1:] == every[:-1]))


def label_of(roles: Mapping[str, str], profile: Mapping[str, Any]) -> str | None:
    """The label column, if the roles name one the profile has."""
    for name, role in roles.items():
        if role == "label" and name in profile["columns"]:
            return name
    return None


def _data_pass(
    path: Path,
    columns: list[str],
    roles: Mapping[str, str],
    profile: Mapping[str, Any],
    label: str | None,
    limits: Mapping[str, float],
    batch_size: int,
) -> tuple[int, dict[str, float | None]]:
    """Duplicate rows, and a leakage score per candidate feature."""
    leakage = LeakagePass(columns, roles, profile, label, limits)
    duplicates = DuplicateRows()
    for batch in stream_batches(path, columns, batch_size, leakage.dictionary):
        duplicates.add(batch.num_rows, [value_hashes(arr) for arr in batch.columns])
        leakage.add(batch)
    return duplicates.count(), leakage.scores()


def quality_limits(thresholds: Mapping[str, float] | None) -> dict[str, float]:
    """THRESHOLDS with `thresholds` applied; ValueError names unknown ones."""
    unknown = set(thresholds or {}) - set(THRESHOLDS)
    if unknown:
        raise ValueError(f"unknown thresholds {sorted(unknown)}; known: {sorted(THRESHOLDS)}")
    return {**THRESHOLDS, **(thresholds or {})}


def quality_report(
    path: Path,
    *,
    columns: Sequence[Mapping[str, Any]],
    roles: Mapping[str, str],
    profile: Mapping[str, Any],
    contract: Mapping[str, Any] | None = None,
    validation: Mapping[str, Any] | None = None,
    thresholds: Mapping[str, float] | None = None,
    batch_size: int = BATCH_ROWS,
) -> dict[str, Any]:
    """The quality report of a version: `{"checks", "errors", "warnings", "passed"}`.

    `profile` comes from `profile_parquet` on the same file; with a contract and no
    `validation`, the file is validated here.
    """
    limits = quality_limits(thresholds)
    if contract is not None and validation is None:
        validation = validate_parquet(path, contract, batch_size=batch_size)
    names = [c["name"] for c in columns]
    label = label_of(roles, profile)
    duplicates, leakage = _data_pass(path, names, roles, profile, label, limits, batch_size)
    return report_checks(names, roles, profile, contract, validation, limits, duplicates, leakage)


def report_checks(
    names: Sequence[str],
    roles: Mapping[str, str],
    profile: Mapping[str, Any],
    contract: Mapping[str, Any] | None,
    validation: Mapping[str, Any] | None,
    limits: Mapping[str, float],
    duplicates: int,
    leakage: Mapping[str, float | None],
) -> dict[str, Any]:
    """The report from what the data pass found (duplicate rows, leakage scores)."""
    stats = profile["columns"]
    label = label_of(roles, profile)
    rows = int(profile["row_count"])

    checks = [_duplicates(duplicates, rows, limits)]
    if label is not None:
        checks.extend(_class_balance(label, stats[label], limits))
    for name in names:
        col, role = stats.get(name), roles.get(name, "feature")
        if col is None or role == "ignored":
            continue
        checks.append(_missing(name, col, role, limits))
        if role in _CHECKED_ROLES and not col.get("private"):
            checks.append(_constant(name, col))
        if role == "feature":
            checks.extend(_cardinality(name, col, limits))
        if role in ("feature", "protected") and col.get("outliers") is not None:
            checks.append(_outliers(name, col, limits))
        if name in leakage:
            checks.append(_leakage(name, label, leakage[name], limits))
    if contract is not None and validation is not None:
        checks.extend(_contract_checks(contract, validation))
    failed = [c for c in checks if not c["passed"]]
    errors = sum(1 for c in failed if c["severity"] == "error")
    warnings = sum(1 for c in failed if c["severity"] == "warning")
    return {"checks": checks, "errors": errors, "warnings": warnings, "passed": errors == 0}


def _duplicates(duplicates: int, rows: int, limits: Mapping[str, float]) -> dict[str, Any]:
    share = duplicates / rows if rows else 0.0
    limit = limits["duplicate_share"]
    return _check(
        "duplicates",
        None,
        "warning",
        share <= limit,
        share,
        limit,
        f"{duplicates} of {rows} rows repeat an earlier row exactly ({share:.2%})",
    )


def _class_balance(
    label: str, col: Mapping[str, Any], limits: Mapping[str, float]
) -> list[dict[str, Any]]:
    classes = label_classes(col)
    if not classes:
        return []
    counts = {_class_name(c["value"]): c["count"] for c in col["classes"]}
    total = sum(counts.values())
    limit = limits["minority_share"]
    if len(counts) < 2:
        return [
            _check(
                "class_balance",
                label,
                "error",
                False,
                0.0,
                limit,
                f"label {label!r} has a single class ({next(iter(counts))}): nothing to learn",
            )
        ]
    rarest = min(counts, key=lambda k: counts[k])
    share = counts[rarest] / total
    return [
        _check(
            "class_balance",
            label,
            "warning",
            share >= limit,
            share,
            limit,
            f"the rarest class of {label!r}, {rarest}, holds {counts[rarest]} of {total} "
            f"labelled rows ({share:.2%})",
        )
    ]


def _class_name(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def _missing(
    name: str, col: Mapping[str, Any], role: str, limits: Mapping[str, float]
) -> dict[str, Any]:
    missing = col["null_count"] + col.get("nan_count", 0)
    share = missing / col["count"] if col["count"] else 0.0
    is_label = role == "label"
    limit = limits["label_missing_share" if is_label else "missing_share"]
    what = "labels" if is_label else "values"
    return _check(
        "missing_values",
        name,
        "error" if is_label else "warning",
        share <= limit,
        share,
        limit,
        f"{missing} of {col['count']} {what} of {name!r} are missing ({share:.2%})",
    )


def _constant(name: str, col: Mapping[str, Any]) -> dict[str, Any]:
    distinct = col.get("distinct", 0)
    if distinct == 0:
        detail = f"{name!r} has no values at all"
    elif distinct == 1:
        detail = f"{name!r} holds a single value: it carries no information"
    else:
        more = "" if col.get("distinct_exact") else "at least "
        detail = f"{name!r} holds {more}{distinct} distinct values"
    return _check("constant_column", name, "warning", distinct > 1, distinct, 1, detail)


def _cardinality(
    name: str, col: Mapping[str, Any], limits: Mapping[str, float]
) -> list[dict[str, Any]]:
    out = []
    values = col["count"] - col["null_count"]
    distinct = col.get("distinct", 0)
    some = f"{distinct if col.get('distinct_exact') else f'at least {distinct}'} distinct values"
    if col["kind"] == "categorical":
        limit = limits["max_categories"]
        passed = distinct <= limit
        out.append(
            _check(
                "high_cardinality",
                name,
                "warning",
                passed,
                distinct,
                limit,
                f"{name!r} has {some}"
                + (
                    ""
                    if passed
                    else f"; over {limit:g} categories are too many to learn "
                    "from: free text or an identifier?"
                ),
            )
        )
    if col["kind"] == "categorical" or col["dtype"] == "int64":
        ratio = distinct / values if values else 0.0
        flagged = id_like(col, limits)
        out.append(
            _check(
                "id_like",
                name,
                "warning",
                not flagged,
                ratio,
                limits["id_like_ratio"],
                f"{name!r} has {some} in {values} rows"
                + (
                    ": it looks like an identifier; give it the role id (or pii)" if flagged else ""
                ),
            )
        )
    return out


def _outliers(name: str, col: Mapping[str, Any], limits: Mapping[str, float]) -> dict[str, Any]:
    fences = col["outliers"]
    values = col["count"] - col["null_count"] - col.get("nan_count", 0)
    share = fences["count"] / values if values else 0.0
    limit = limits["outlier_share"]
    passed = share <= limit
    return _check(
        "outliers",
        name,
        "info" if passed else "warning",
        passed,
        share,
        limit,
        f"{fences['count']} values of {name!r} ({share:.2%}) lie outside "
        f"[{fences['low_fence']:.6g}, {fences['high_fence']:.6g}]",
    )


def _leakage(
    name: str, label: str | None, score: float | None, limits: Mapping[str, float]
) -> dict[str, Any]:
    limit = limits["label_leakage"]
    if score is None:
        return _check(
            "label_leakage",
            name,
            "error",
            True,
            0.0,
            limit,
            f"{name!r} could not be scored against {label!r} (no variation)",
        )
    passed = score < limit
    detail = f"{name!r} alone predicts {label!r} with a score of {score:.4f}" + (
        "" if passed else ": a copy of the label, or information from after the outcome?"
    )
    return _check("label_leakage", name, "error", passed, score, limit, detail)


_CONTRACT_CHECKS = {"in_range": "out_of_range", "isin": "unseen_categories"}


def _contract_checks(
    contract: Mapping[str, Any], validation: Mapping[str, Any]
) -> list[dict[str, Any]]:
    failed = {(f["column"], f["check"]): f for f in validation["failures"]}
    unreadable = {c for c, check in failed if check in ("missing_column", "type")}
    out = []
    for name, rules in contract["columns"].items():
        if name in unreadable:
            continue
        for check, quality, applies in (
            ("in_range", "out_of_range", "min" in rules or "max" in rules),
            ("isin", "unseen_categories", "allowed" in rules),
        ):
            if not applies:
                continue
            failure = failed.pop((name, check), None)
            count = failure["failure_count"] if failure else 0
            detail = (
                f"{failure['detail']}: {count} row{'s' if count != 1 else ''}"
                if failure
                else f"every value of {name!r} is within the contract"
            )
            out.append(_check(quality, name, "error", count == 0, count, 0, detail))
    for failure in failed.values():
        count = failure["failure_count"]
        out.append(
            _check(
                _CONTRACT_CHECKS.get(failure["check"], "contract"),
                failure["column"],
                "error",
                False,
                count,
                0,
                f"{failure['check']}: {failure['detail']}",
            )
        )
    if not failed:
        out.append(
            _check(
                "contract",
                None,
                "error",
                True,
                0,
                0,
                "columns, types, nullability and uniqueness match the contract",
            )
        )
    return out
