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
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from farpoint.ml.contract import validate_parquet
from farpoint.ml.profile import (
    BATCH_ROWS,
    bin_indices,
    raw_numbers,
    stream_batches,
    validity_mask,
    value_hashes,
)

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

__all__ = ["LEAKAGE_MIN_ROWS", "THRESHOLDS", "quality_report"]

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

LEAKAGE_MIN_ROWS = 10
"""Categories (or bins) with fewer rows than this are pooled before computing lambda."""
ID_LIKE_MIN_ROWS = 20
MAX_LABEL_CLASSES = 50
"""An integer label with more distinct values than this is treated as a regression target."""
_ROW_PRIME = 0x100000001B3
_LEAKAGE_ROLES = ("feature",)
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


class _Leakage:
    """Joint counts of (bin or category, label class) for one feature, batch by batch."""

    def __init__(self, name: str, edges: list[Any] | None, classes: int) -> None:
        self.name, self.edges, self.classes = name, edges, classes
        self.joint: dict[Any, Any] = {}
        self.binned: Any = None

    def add(self, arr: pa.Array, codes: np.ndarray, labelled: np.ndarray) -> None:
        import numpy as np
        import pyarrow as pa
        import pyarrow.compute as pc

        k = self.classes
        keep = labelled if not arr.null_count else labelled & validity_mask(arr)
        if self.edges is not None:
            values = raw_numbers(arr)
            if values.dtype.kind == "f":
                keep = keep & ~np.isnan(values)
            idx = bin_indices(self.edges, values[keep])
            counts = np.bincount(idx * k + codes[keep], minlength=(len(self.edges) + 1) * k)
            self.binned = counts if self.binned is None else self.binned + counts
            return
        if pa.types.is_boolean(arr.type):
            idx = arr.fill_null(False).to_numpy(zero_copy_only=False).astype(np.int64)
            dictionary: list[Any] = [False, True]
        elif pa.types.is_dictionary(arr.type):
            idx = raw_numbers(arr.indices)
            dictionary = arr.dictionary.to_pylist()
        else:
            encoded = pc.dictionary_encode(arr)
            idx = encoded.indices.fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)
            dictionary = encoded.dictionary.to_pylist()
        counts = np.bincount(idx[keep] * k + codes[keep], minlength=len(dictionary) * k)
        for i, value in enumerate(dictionary):
            row = counts[i * k : (i + 1) * k]
            if row.any():
                self.joint[value] = row if value not in self.joint else self.joint[value] + row

    def table(self) -> np.ndarray:
        import numpy as np

        if self.edges is not None:
            return np.asarray(self.binned).reshape(-1, self.classes)
        if not self.joint:
            return np.zeros((0, self.classes), dtype=np.int64)
        return np.vstack(list(self.joint.values()))


def _lambda(table: np.ndarray) -> float | None:
    """Goodman-Kruskal lambda of the label given the rows of `table`, rare rows pooled."""
    import numpy as np

    sizes = table.sum(axis=1)
    rare = sizes < LEAKAGE_MIN_ROWS
    if rare.any():
        table = np.vstack([table[~rare], table[rare].sum(axis=0, keepdims=True)])
    total = int(table.sum())
    majority = int(table.sum(axis=0).max()) if total else 0
    if total == 0 or majority == total:
        return None
    return (int(table.max(axis=1).sum()) - majority) / (total - majority)


def _auc_score(table: np.ndarray) -> float | None:
    """max over classes of max(AUC, 1 - AUC), the bins taken in order."""
    import numpy as np

    best: float | None = None
    totals = table.sum(axis=1)
    for c in range(table.shape[1]):
        pos = table[:, c].astype(np.float64)
        neg = totals - pos
        p, n = pos.sum(), neg.sum()
        if p == 0 or n == 0:
            continue
        below = np.concatenate(([0.0], np.cumsum(neg)[:-1]))
        auc = float((pos * (below + 0.5 * neg)).sum() / (p * n))
        score = max(auc, 1 - auc)
        best = score if best is None else max(best, score)
    return best


class _Correlation:
    """Streaming Pearson correlation of a feature with a numeric label (Chan's merge)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.n = 0
        self.mx = self.my = self.cxy = self.m2x = self.m2y = 0.0

    def add(self, arr: pa.Array, label: np.ndarray, labelled: np.ndarray) -> None:
        import numpy as np

        x = raw_numbers(arr).astype(np.float64)
        keep = labelled & np.isfinite(x)
        if arr.null_count:
            keep &= validity_mask(arr)
        x, y = x[keep], label[keep]
        n_b = x.size
        if not n_b:
            return
        mx, my = float(x.mean()), float(y.mean())
        dx, dy = x - mx, y - my
        n = self.n + n_b
        ddx, ddy = mx - self.mx, my - self.my
        self.cxy += float((dx * dy).sum()) + ddx * ddy * self.n * n_b / n
        self.m2x += float((dx * dx).sum()) + ddx * ddx * self.n * n_b / n
        self.m2y += float((dy * dy).sum()) + ddy * ddy * self.n * n_b / n
        self.mx += ddx * n_b / n
        self.my += ddy * n_b / n
        self.n = n

    def score(self) -> float | None:
        if self.m2x <= 0 or self.m2y <= 0:
            return None
        return abs(self.cxy / math.sqrt(self.m2x * self.m2y))


def _label_of(roles: Mapping[str, str], profile: Mapping[str, Any]) -> str | None:
    for name, role in roles.items():
        if role == "label" and name in profile["columns"]:
            return name
    return None


def _classes(label: Mapping[str, Any]) -> list[Any] | None:
    classes = label.get("classes")
    if not classes:
        return None
    if label["kind"] == "numeric" and (
        label["dtype"] != "int64" or len(classes) > MAX_LABEL_CLASSES
    ):
        return None
    return [c["value"] for c in classes]


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
    import numpy as np
    import pyarrow as pa

    stats = profile["columns"]
    classes = _classes(stats[label]) if label else None
    regression = label is not None and classes is None and stats[label]["kind"] == "numeric"
    leak: dict[str, _Leakage] = {}
    corr: dict[str, _Correlation] = {}
    for name in columns:
        col = stats.get(name, {})
        if roles.get(name, "feature") not in _LEAKAGE_ROLES or name == label or not label:
            continue
        hist = col.get("histogram")
        if "distinct" in col and _id_like(col, limits):
            continue  # reported as id-like instead: one row per value predicts anything
        if classes is not None and hist:
            leak[name] = _Leakage(name, hist["edges"], len(classes))
        elif classes is not None and col.get("kind") in ("categorical", "boolean"):
            if _categories_ok(col, limits):
                leak[name] = _Leakage(name, None, len(classes))
        elif regression and col.get("kind") == "numeric" and not col.get("private"):
            corr[name] = _Correlation(name)
    class_set = (
        pa.array(classes, type=pa.bool_() if isinstance(classes[0], bool) else None)
        if classes
        else None
    )
    hashes = []
    # Strings with few values are read as dictionary codes: hashing and counting them
    # then touches each distinct string once per batch.
    encoded = [
        n
        for n in columns
        if stats.get(n, {}).get("kind") == "categorical"
        and stats[n].get("distinct_exact")
        and not stats[n].get("private")
    ]
    for batch in stream_batches(path, columns, batch_size, encoded):
        row = np.zeros(batch.num_rows, dtype=np.uint64)
        for arr in batch.columns:
            row = (row * np.uint64(_ROW_PRIME)) ^ value_hashes(arr)
        hashes.append(row)
        if label is None or not (leak or corr):
            continue
        target = batch.column(label)
        if class_set is not None:
            codes, labelled = _label_codes(target, class_set)
            for name, counter in leak.items():
                counter.add(batch.column(name), codes, labelled)
        else:
            y = raw_numbers(target).astype(np.float64)
            labelled = np.isfinite(y)
            if target.null_count:
                labelled &= validity_mask(target)
            for name, correlation in corr.items():
                correlation.add(batch.column(name), y, labelled)
    every = np.sort(np.concatenate(hashes)) if hashes else np.zeros(0, np.uint64)
    duplicates = int(np.count_nonzero(every[1:] == every[:-1]))
    scores: dict[str, float | None] = {}
    for name, counter in leak.items():
        table = counter.table()
        candidates = [_lambda(table)]
        if counter.edges is not None:
            candidates.append(_auc_score(table))
        known = [s for s in candidates if s is not None]
        scores[name] = max(known) if known else None
    for name, correlation in corr.items():
        scores[name] = correlation.score()
    return duplicates, scores


def _label_codes(target: pa.Array, classes: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """Each row's class index, and whether the row has a known label."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    if pa.types.is_dictionary(target.type):
        if not len(target.dictionary):
            return np.zeros(len(target), dtype=np.int64), np.zeros(len(target), dtype=bool)
        known = pc.index_in(target.dictionary, value_set=classes).fill_null(-1)
        codes = known.to_numpy(zero_copy_only=False).astype(np.int64)[raw_numbers(target.indices)]
        labelled = codes >= 0
        if target.null_count:
            labelled &= validity_mask(target)
        return np.maximum(codes, 0), labelled
    found = pc.index_in(target, value_set=classes)
    labelled = validity_mask(found) if found.null_count else np.ones(len(found), dtype=bool)
    return found.fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64), labelled


def _categories_ok(col: Mapping[str, Any], limits: Mapping[str, float]) -> bool:
    if col.get("private") or not col.get("distinct_exact"):
        return False
    if col.get("distinct", 0) > limits["max_categories"]:
        return False
    return not _id_like(col, limits)


def _id_like(col: Mapping[str, Any], limits: Mapping[str, float]) -> bool:
    """A string or integer column with (nearly) one value per row; continuous numbers
    are all distinct by nature and are not identifiers for that."""
    values = col["count"] - col["null_count"]
    return (
        (col.get("kind") == "categorical" or col.get("dtype") == "int64")
        and bool(col.get("distinct_exact"))
        and values >= ID_LIKE_MIN_ROWS
        and col.get("distinct", 0) >= limits["id_like_ratio"] * values
    )


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
    unknown = set(thresholds or {}) - set(THRESHOLDS)
    if unknown:
        raise ValueError(f"unknown thresholds {sorted(unknown)}; known: {sorted(THRESHOLDS)}")
    limits = {**THRESHOLDS, **(thresholds or {})}
    if contract is not None and validation is None:
        validation = validate_parquet(path, contract, batch_size=batch_size)
    names = [c["name"] for c in columns]
    stats = profile["columns"]
    label = _label_of(roles, profile)
    duplicates, leakage = _data_pass(path, names, roles, profile, label, limits, batch_size)
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
    classes = _classes(col)
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
        flagged = _id_like(col, limits)
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
