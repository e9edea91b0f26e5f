"""Data contracts: what every version of a dataset must look like.

A contract is a plain dict, `{"columns": {name: rules}, "strict": bool}`, with a YAML form
a data scientist edits (one line per column) and a pandera form (`to_pandera`) that
states the same rules as a `DataFrameSchema`. Rules per column: `type` (a canonical Arrow
type string), `nullable` (default false), `min`/`max` (int64 and float64 columns),
`allowed` (string and int64 columns), `unique`. The rule vocabulary and the YAML form live
in `contract_yaml`, `validate_parquet` in `validation`; their public names are
importable from here as well.

Inference (`infer_contract`), from the first version's profile:
- ranges for numeric feature, label and protected columns: observed [lo, hi] widened by
  10% of the span on each side (10% of |lo|, at least 1, when lo == hi), rounded outward
  to the power of ten just under that margin (integers to at least 1); a non-negative
  column keeps min >= 0; none when NaN or infinities were seen (they fail every range);
- allowed categories for string columns with at most 50 distinct values, each seen five
  times on average (distinct <= 20% of the values), and for an int64 label's classes;
- nullable when a null was seen; `pii` and `id` columns: type, nullability and `unique`
  when every value was distinct, never a value; dates and timestamps: no range (time
  moves on, and a range would fail every later version).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from farpoint.core.errors import ValidationFailed
from farpoint.ml.contract_yaml import (
    CATEGORICAL,
    NUMERIC,
    RULE_KEYS,
    TYPES,
    contract_to_yaml,
    parse_contract,
)
from farpoint.ml.profile import PRIVATE_ROLES
from farpoint.ml.validation import CHECKS, arrow_type, validate_parquet

if TYPE_CHECKING:
    import pandera.pandas as pda

__all__ = [
    "ALLOWED_MAX",
    "ALLOWED_MAX_RATIO",
    "CATEGORICAL",
    "CHECKS",
    "NUMERIC",
    "RANGE_MARGIN",
    "TYPES",
    "contract_diff",
    "contract_to_yaml",
    "infer_contract",
    "parse_contract",
    "schema_diff",
    "to_pandera",
    "validate_parquet",
]

ALLOWED_MAX = 50
ALLOWED_MAX_RATIO = 0.2
RANGE_MARGIN = 0.1


# ---- inference ----------------------------------------------------------------------


def _widen(low: float, high: float, integer: bool) -> tuple[float, float]:
    span = high - low
    margin = RANGE_MARGIN * span if span > 0 else max(RANGE_MARGIN * abs(low), 1.0)
    exponent = math.floor(math.log10(margin))
    if integer:
        exponent = max(exponent, 0)
    step = 10.0**exponent
    lo = math.floor((low - margin) / step) * step
    hi = math.ceil((high + margin) / step) * step
    if low >= 0:
        lo = max(lo, 0.0)
    if integer:
        return int(lo), int(hi)
    digits = max(0, -exponent)
    return round(lo, digits), round(hi, digits)


def infer_contract(
    columns: Sequence[Mapping[str, Any]],
    profile: Mapping[str, Any],
    roles: Mapping[str, str],
) -> dict[str, Any]:
    """A first contract from a version's schema and profile (rules in the module doc)."""
    stats = profile.get("columns", {})
    out: dict[str, dict[str, Any]] = {}
    for column in columns:
        name = column["name"]
        dtype = str(column["dtype"]).replace("double", "float64")
        if dtype not in TYPES:
            raise ValidationFailed(
                f"column {name!r} has type {dtype}, which contracts do not support; "
                f"types: {list(TYPES)}"
            )
        col = stats.get(name, {})
        role = roles.get(name, "feature")
        nulls = col.get("null_count")
        rules: dict[str, Any] = {
            "type": dtype,
            "nullable": bool(nulls) if nulls is not None else bool(column.get("nullable", True)),
        }
        if role in PRIVATE_ROLES:
            count = col.get("count", 0) - (nulls or 0)
            if col.get("distinct_exact") and count > 0 and col.get("distinct") == count:
                rules["unique"] = True
        elif role in ("feature", "label", "protected"):
            rules.update(_inferred_values(dtype, role, col))
        out[name] = rules
    return {"columns": out, "strict": True}


def _inferred_values(dtype: str, role: str, col: Mapping[str, Any]) -> dict[str, Any]:
    classes = col.get("classes")
    if role == "label" and dtype == "int64" and classes and len(classes) <= ALLOWED_MAX:
        return {"allowed": sorted(c["value"] for c in classes)}
    if dtype in NUMERIC:
        low, high = col.get("min"), col.get("max")
        non_finite = (
            col.get("nan_count", 0) + col.get("posinf_count", 0) + col.get("neginf_count", 0)
        )
        if low is None or high is None or non_finite:
            return {}
        lo, hi = _widen(low, high, dtype == "int64")
        return {"min": lo, "max": hi}
    if dtype == "string" and col.get("distinct_exact") and not col.get("other_count"):
        distinct, values = col.get("distinct", 0), col.get("count", 0) - col.get("null_count", 0)
        top = col.get("top") or []
        if 0 < distinct <= ALLOWED_MAX and distinct <= ALLOWED_MAX_RATIO * values:
            return {"allowed": sorted(t["value"] for t in top)}
    return {}


# ---- pandera ------------------------------------------------------------------------


def to_pandera(contract: Mapping[str, Any], *, unique: bool = True) -> pda.DataFrameSchema:
    """The contract as a pandera schema over Arrow-backed frames (read them with
    `pandas.read_parquet(path, dtype_backend="pyarrow")`); `unique=False` leaves uniqueness
    out, for callers that check it across batches themselves."""
    import pandas as pd
    import pandera.pandas as pda

    columns = {}
    for name, rules in contract["columns"].items():
        checks = []
        low, high = rules.get("min"), rules.get("max")
        if low is not None and high is not None:
            checks.append(pda.Check.in_range(low, high))
        elif low is not None:
            checks.append(pda.Check.ge(low))
        elif high is not None:
            checks.append(pda.Check.le(high))
        if "allowed" in rules:
            checks.append(pda.Check.isin(rules["allowed"]))
        columns[name] = pda.Column(
            pd.ArrowDtype(arrow_type(rules["type"])),
            checks,
            nullable=rules.get("nullable", False),
            unique=unique and bool(rules.get("unique")),
        )
    return pda.DataFrameSchema(columns, strict=bool(contract.get("strict", True)))


# ---- differences --------------------------------------------------------------------


def schema_diff(
    old_columns: Sequence[Mapping[str, Any]], new_columns: Sequence[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """Changes from one version's columns to the next: added, removed, type_changed,
    nullability_changed, reordered; each `{"change", "column", "old", "new"}`."""
    old = {c["name"]: c for c in old_columns}
    new = {c["name"]: c for c in new_columns}
    changes: list[dict[str, Any]] = []
    for name, col in new.items():
        before = old.get(name)
        if before is None:
            changes.append({"change": "added", "column": name, "old": None, "new": col["dtype"]})
            continue
        if before["dtype"] != col["dtype"]:
            changes.append(
                {
                    "change": "type_changed",
                    "column": name,
                    "old": before["dtype"],
                    "new": col["dtype"],
                }
            )
        if bool(before.get("nullable")) != bool(col.get("nullable")):
            changes.append(
                {
                    "change": "nullability_changed",
                    "column": name,
                    "old": bool(before.get("nullable")),
                    "new": bool(col.get("nullable")),
                }
            )
    for name, col in old.items():
        if name not in new:
            changes.append({"change": "removed", "column": name, "old": col["dtype"], "new": None})
    kept_old = [n for n in old if n in new]
    kept_new = [n for n in new if n in old]
    if kept_old != kept_new:
        changes.append({"change": "reordered", "column": None, "old": kept_old, "new": kept_new})
    return changes


def contract_diff(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Rule changes between two contracts: `{"column", "rule", "old", "new"}`; a column
    added or removed has rule None, a change of `strict` has column None."""
    changes: list[dict[str, Any]] = []
    before, after = old["columns"], new["columns"]
    for name in list(before) + [n for n in after if n not in before]:
        a, b = before.get(name), after.get(name)
        if a is None or b is None:
            changes.append({"column": name, "rule": None, "old": a, "new": b})
            continue
        for key in RULE_KEYS:
            if a.get(key) != b.get(key):
                changes.append({"column": name, "rule": key, "old": a.get(key), "new": b.get(key)})
    if bool(old.get("strict", True)) != bool(new.get("strict", True)):
        changes.append(
            {
                "column": None,
                "rule": "strict",
                "old": old.get("strict", True),
                "new": new.get("strict", True),
            }
        )
    return changes
