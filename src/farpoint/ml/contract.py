"""Data contracts: what every version of a dataset must look like.

A contract is a plain dict, `{"columns": {name: rules}, "strict": bool}`, with a YAML form
a data scientist edits (one line per column) and a pandera form (`to_pandera`) that
states the same rules as a `DataFrameSchema`. Rules per column: `type` (a canonical Arrow
type string), `nullable` (default false), `min`/`max` (int64 and float64 columns),
`allowed` (string and int64 columns), `unique`.

`validate_parquet` streams a version batch by batch. Its default engine runs the rules
as vectorised Arrow/numpy checks: pandera builds a DataFrame of every failure, which on a
badly failing million-row file takes seconds per batch. The "pandera" engine runs the
`to_pandera` schema on each batch instead; the tests hold both to the same failure counts.
Uniqueness spans batches in both, through 64-bit value hashes (8 bytes a row).

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
from pathlib import Path
from typing import TYPE_CHECKING, Any

from farpoint.core.errors import ValidationFailed
from farpoint.ml.profile import (
    BATCH_ROWS,
    PRIVATE_ROLES,
    json_value,
    raw_numbers,
    stream_batches,
    type_name,
    validity_mask,
    value_hashes,
)

if TYPE_CHECKING:
    import numpy as np
    import pandera.pandas as pda
    import pyarrow as pa

__all__ = [
    "ALLOWED_MAX",
    "ALLOWED_MAX_RATIO",
    "CHECKS",
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

TYPES = (
    "bool",
    "int64",
    "float64",
    "string",
    "date32[day]",
    "timestamp[us]",
    "timestamp[us, tz=UTC]",
)
NUMERIC = ("int64", "float64")
CATEGORICAL = ("string", "int64")
ALLOWED_MAX = 50
ALLOWED_MAX_RATIO = 0.2
RANGE_MARGIN = 0.1
CHECKS = ("missing_column", "extra_column", "type", "nullable", "in_range", "isin", "unique")
"""Failure kinds of `validate_parquet`, in the order they are reported per column."""

_KEYS = ("type", "nullable", "min", "max", "allowed", "unique")
_TOP_KEYS = ("columns", "strict")
_HOW_TO_SET = "edit and upload with `farpoint dataset contract set`"


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


# ---- YAML ---------------------------------------------------------------------------


def _flow(value: Any) -> str:
    """One YAML flow scalar or collection, on one line, quoted where YAML needs it."""
    import yaml

    text: str = yaml.safe_dump(
        [value], default_flow_style=True, sort_keys=False, width=2**30, allow_unicode=True
    )
    return text.strip()[1:-1]


def contract_to_yaml(
    contract: Mapping[str, Any], *, dataset: str | None = None, source: str | None = None
) -> str:
    """The YAML a data scientist edits: a header comment and one line per column."""
    if dataset and source:
        header = f"# Contract of dataset {dataset} (inferred from {source}; {_HOW_TO_SET})"
    elif dataset:
        header = f"# Contract of dataset {dataset} ({_HOW_TO_SET})"
    else:
        header = f"# Data contract ({_HOW_TO_SET})"
    lines = [
        header,
        "# Per column: type, nullable, min/max (int64, float64), allowed (string, int64),",
        "# unique. Every new version of the dataset is validated against these rules.",
        "columns:",
    ]
    for name, rules in contract["columns"].items():
        ordered = {k: rules[k] for k in _KEYS if k in rules}
        lines.append(f"  {_flow(name)}: {_flow(ordered)}")
    strict = bool(contract.get("strict", True))
    note = "columns not named here are refused" if strict else "other columns are accepted"
    lines.append(f"strict: {'true' if strict else 'false'}   # {note}")
    return "\n".join(lines) + "\n"


def _line(node: Any) -> str:
    mark = getattr(node, "start_mark", None)
    return f" (line {mark.line + 1})" if mark is not None else ""


def _key_lines(root: Any) -> dict[tuple[str, ...], str]:
    """`(key path) -> " (line N)"` from the YAML node tree, for error messages."""
    import yaml

    lines: dict[tuple[str, ...], str] = {}
    if not isinstance(root, yaml.MappingNode):
        return lines
    for key_node, value_node in root.value:
        top = str(key_node.value)
        lines[(top,)] = _line(key_node)
        if top != "columns" or not isinstance(value_node, yaml.MappingNode):
            continue
        for col_key, col_value in value_node.value:
            name = str(col_key.value)
            if ("columns", name) in lines:
                # YAML would quietly keep the last one; an edit was probably lost.
                first = lines[("columns", name)].strip(" ()").removeprefix("line ")
                raise ValidationFailed(
                    f"column {name!r} appears twice, at lines {first} and "
                    f"{col_key.start_mark.line + 1}: keep one"
                )
            lines[("columns", name)] = _line(col_key)
            if isinstance(col_value, yaml.MappingNode):
                for rule_key, rule_value in col_value.value:
                    where = ("columns", name, str(rule_key.value))
                    if where in lines:
                        raise ValidationFailed(
                            f"rule {rule_key.value!r} of column {name!r} is given twice"
                            f"{_line(rule_key)}"
                        )
                    lines[where] = _line(rule_value)
    return lines


def _is_number(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, int | float) and math.isfinite(value)


def parse_contract(text: str) -> dict[str, Any]:
    """The normalised contract from its YAML; ValidationFailed names the bad key, value
    and line."""
    import yaml

    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ValidationFailed(f"contract is not valid YAML: {exc}") from exc
    at = _key_lines(root)
    if not isinstance(doc, dict):
        raise ValidationFailed("a contract must be a YAML mapping with a 'columns' mapping")
    for key in doc:
        if key not in _TOP_KEYS:
            raise ValidationFailed(
                f"unknown contract key {key!r}{at.get((str(key),), '')}; allowed: {list(_TOP_KEYS)}"
            )
    columns = doc.get("columns")
    if not isinstance(columns, dict) or not columns:
        raise ValidationFailed(
            "contract 'columns' must be a mapping of each column's name to its rules"
            f"{at.get(('columns',), '')}, such as 'age: {{type: int64, nullable: false}}'"
        )
    strict = doc.get("strict", True)
    if not isinstance(strict, bool):
        raise ValidationFailed(
            f"contract 'strict'{at.get(('strict',), '')} must be true or false, got {strict!r}"
        )
    return {
        "columns": {name: _parse_rules(name, rules, at) for name, rules in columns.items()},
        "strict": strict,
    }


def _parse_rules(name: Any, rules: Any, at: dict[tuple[str, ...], str]) -> dict[str, Any]:
    where = at.get(("columns", str(name)), "")
    if not isinstance(name, str):
        raise ValidationFailed(
            f"column name {name!r}{where} must be a string: quote it, as in '\"{name}\":'"
        )
    if not isinstance(rules, dict):
        raise ValidationFailed(
            f"column {name!r}{where} must be a mapping of rules, such as "
            "{type: int64, nullable: false}"
        )

    def bad(key: str, message: str) -> ValidationFailed:
        line = at.get(("columns", name, key), where)
        return ValidationFailed(f"{key!r} of column {name!r}{line}: {message}", column=name)

    for key in rules:
        if key not in _KEYS:
            line = at.get(("columns", name, str(key)), where)
            raise ValidationFailed(
                f"unknown rule {key!r} for column {name!r}{line}; rules: {list(_KEYS)}",
                column=name,
            )
    dtype = rules.get("type")
    if dtype is None:
        raise ValidationFailed(f"column {name!r}{where} needs a 'type', one of {list(TYPES)}")
    if dtype not in TYPES:
        raise bad("type", f"unknown type {dtype!r}; types: {list(TYPES)}")
    out: dict[str, Any] = {"type": dtype, "nullable": rules.get("nullable", False)}
    if not isinstance(out["nullable"], bool):
        raise bad("nullable", f"must be true or false, got {out['nullable']!r}")
    for key in ("min", "max"):
        if key in rules:
            if dtype not in NUMERIC:
                raise bad(key, f"ranges apply to {list(NUMERIC)} columns, not {dtype}")
            if not _is_number(rules[key]):
                raise bad(key, f"must be a finite number, got {rules[key]!r}")
            out[key] = rules[key]
    if "min" in out and "max" in out and out["min"] > out["max"]:
        raise bad("max", f"max {out['max']!r} is below min {out['min']!r}")
    if "allowed" in rules:
        out["allowed"] = _parse_allowed(dtype, rules["allowed"], bad)
    if "unique" in rules:
        if not isinstance(rules["unique"], bool):
            raise bad("unique", f"must be true or false, got {rules['unique']!r}")
        if rules["unique"]:
            out["unique"] = True
    return out


def _parse_allowed(dtype: str, allowed: Any, bad: Any) -> list[Any]:
    if dtype not in CATEGORICAL:
        raise bad("allowed", f"allowed values apply to {list(CATEGORICAL)} columns, not {dtype}")
    if not isinstance(allowed, list) or not allowed:
        raise bad("allowed", f"must be a non-empty list such as [a, b], got {allowed!r}")
    for value in allowed:
        if dtype == "string" and not isinstance(value, str):
            raise bad("allowed", f"{value!r} is not a string: quote it, as in '{value}'")
        if dtype == "int64" and (isinstance(value, bool) or not isinstance(value, int)):
            raise bad("allowed", f"{value!r} is not an integer")
    seen: set[Any] = set()
    for value in allowed:
        if value in seen:
            raise bad("allowed", f"{value!r} is listed twice")
        seen.add(value)
    return list(allowed)


# ---- pandera ------------------------------------------------------------------------


def _arrow_type(name: str) -> pa.DataType:
    import pyarrow as pa

    return {
        "bool": pa.bool_(),
        "int64": pa.int64(),
        "float64": pa.float64(),
        "string": pa.string(),
        "date32[day]": pa.date32(),
        "timestamp[us]": pa.timestamp("us"),
        "timestamp[us, tz=UTC]": pa.timestamp("us", tz="UTC"),
    }[name]


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
            pd.ArrowDtype(_arrow_type(rules["type"])),
            checks,
            nullable=rules.get("nullable", False),
            unique=unique and bool(rules.get("unique")),
        )
    return pda.DataFrameSchema(columns, strict=bool(contract.get("strict", True)))


# ---- validation ---------------------------------------------------------------------


class _Failures:
    """Failure counts and the first examples per (column, check)."""

    def __init__(self, contract: Mapping[str, Any], max_examples: int) -> None:
        self.contract = contract
        self.max_examples = max_examples
        self.found: dict[tuple[str, str], dict[str, Any]] = {}

    def _entry(self, column: str, check: str) -> dict[str, Any]:
        return self.found.setdefault(
            (column, check),
            {
                "column": column,
                "check": check,
                "failure_count": 0,
                "examples": [],
                "detail": _detail(column, check, self.contract),
            },
        )

    def schema(self, column: str, check: str, value: Any = None) -> None:
        entry = self._entry(column, check)
        if entry["failure_count"] == 0:
            entry["failure_count"] = 1
            if value is not None:
                entry["examples"].append({"row": None, "value": value})

    def rows(self, column: str, check: str, failed: np.ndarray, arr: pa.Array, offset: int) -> None:
        import numpy as np

        count = int(np.count_nonzero(failed))
        if not count:
            return
        entry = self._entry(column, check)
        entry["failure_count"] += count
        room = self.max_examples - len(entry["examples"])
        if room > 0:
            for i in np.flatnonzero(failed)[:room].tolist():
                entry["examples"].append({"row": offset + i, "value": json_value(arr[i].as_py())})

    def add(self, column: str, check: str, count: int, examples: list[dict[str, Any]]) -> None:
        entry = self._entry(column, check)
        entry["failure_count"] += count
        room = self.max_examples - len(entry["examples"])
        entry["examples"].extend(examples[: max(room, 0)])

    def result(self, rows: int) -> dict[str, Any]:
        order = {name: i for i, name in enumerate(self.contract["columns"])}
        failures = sorted(
            self.found.values(),
            key=lambda f: (
                order.get(f["column"], len(order)),
                f["column"],
                CHECKS.index(f["check"]),
            ),
        )
        return {"passed": not failures, "failures": failures, "rows_checked": rows}


def _detail(column: str, check: str, contract: Mapping[str, Any]) -> str:
    rules = contract["columns"].get(column, {})
    if check == "in_range":
        low, high = rules.get("min", "-inf"), rules.get("max", "inf")
        return f"values of {column!r} outside [{low}, {high}]"
    return {
        "missing_column": f"column {column!r} is in the contract but not in the data",
        "extra_column": f"column {column!r} is not in the contract, which is strict",
        "type": f"column {column!r} is not of type {rules.get('type')}",
        "nullable": f"missing values in {column!r}, which the contract says is not nullable",
        "isin": f"values of {column!r} not among the {len(rules.get('allowed', []))} allowed",
        "unique": f"repeated values in {column!r}, which the contract says is unique",
    }[check]


def validate_parquet(
    path: Path,
    contract: Mapping[str, Any],
    max_examples: int = 5,
    *,
    batch_size: int = BATCH_ROWS,
    engine: str = "arrow",
) -> dict[str, Any]:
    """Validate a canonical Parquet file against a contract, streaming batch by batch.

    `{"passed", "failures": [{"column", "check", "failure_count", "examples": [{"row",
    "value"}], "detail"}], "rows_checked"}`; rows are global row numbers (0-based).
    """
    import pyarrow.parquet as pq

    if engine not in ("arrow", "pandera"):
        raise ValueError("engine must be 'arrow' or 'pandera'")
    schema = pq.read_schema(path)
    rows = pq.read_metadata(path).num_rows
    failures = _Failures(contract, max_examples)
    present = {field.name: type_name(field.type) for field in schema}
    typed = [
        name for name, rules in contract["columns"].items() if present.get(name) == rules["type"]
    ]
    if engine == "arrow":
        for name in contract["columns"]:
            if name not in present:
                failures.schema(name, "missing_column")
            elif name not in typed:
                failures.schema(name, "type", present[name])
        if contract.get("strict", True):
            for name in present:
                if name not in contract["columns"]:
                    failures.schema(name, "extra_column")
    uniques = [_Unique(n) for n in typed if contract["columns"][n].get("unique")]
    if engine == "arrow":
        _check_arrow(path, contract, typed, failures, batch_size, uniques)
    else:
        _check_pandera(path, contract, list(present), failures, batch_size)
        for batch in stream_batches(path, [u.name for u in uniques], batch_size) if uniques else ():
            for unique, arr in zip(uniques, batch.columns, strict=True):
                unique.add(arr)
    for unique in uniques:
        unique.finish(path, failures, batch_size)
    return failures.result(rows)


def _check_arrow(
    path: Path,
    contract: Mapping[str, Any],
    typed: list[str],
    failures: _Failures,
    batch_size: int,
    uniques: list[_Unique],
) -> None:
    import numpy as np
    import pyarrow as pa

    checked = [
        name
        for name in typed
        if not contract["columns"][name].get("nullable", False)
        or {"min", "max", "allowed", "unique"} & set(contract["columns"][name])
    ]
    unique = {u.name: u for u in uniques}
    encoded = [n for n in checked if "allowed" in contract["columns"][n]]
    encoded = [n for n in encoded if contract["columns"][n]["type"] == "string"]
    if not checked:
        return
    allowed = {
        name: pa.array(
            contract["columns"][name]["allowed"],
            type=_arrow_type(contract["columns"][name]["type"]),
        )
        for name in checked
        if "allowed" in contract["columns"][name]
    }
    offset = 0
    for batch in stream_batches(path, checked, batch_size, encoded):
        for name, arr in zip(batch.schema.names, batch.columns, strict=True):
            rules = contract["columns"][name]
            valid = validity_mask(arr) if arr.null_count else None
            if not rules.get("nullable", False) and valid is not None:
                failures.rows(name, "nullable", ~valid, arr, offset)
            if "min" in rules or "max" in rules:
                values = raw_numbers(arr)
                inside = np.ones(len(arr), dtype=bool)
                # Written as "not inside" so that NaN, inside no range, fails as in pandera.
                if "min" in rules:
                    inside &= values >= rules["min"]
                if "max" in rules:
                    inside &= values <= rules["max"]
                failed = ~inside if valid is None else valid & ~inside
                failures.rows(name, "in_range", failed, arr, offset)
            if name in allowed:
                member = _members(arr, allowed[name])
                failed = ~member if valid is None else valid & ~member
                failures.rows(name, "isin", failed, arr, offset)
            if name in unique:
                unique[name].add(arr)
        offset += batch.num_rows


def _members(arr: pa.Array, allowed: pa.Array) -> np.ndarray:
    """Whether each value is among `allowed`; a dictionary batch looks up each distinct
    value once."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    if pa.types.is_dictionary(arr.type):
        if not len(arr.dictionary):
            return np.zeros(len(arr), dtype=bool)  # every value is null
        known = pc.is_in(arr.dictionary, value_set=allowed).to_numpy(zero_copy_only=False)
        found: np.ndarray = known[raw_numbers(arr.indices)]
        return found
    member: np.ndarray = pc.is_in(arr, value_set=allowed).to_numpy(zero_copy_only=False)
    return member


_PANDERA_CHECKS = (
    ("in_range", "in_range"),
    ("greater_than_or_equal_to", "in_range"),
    ("less_than_or_equal_to", "in_range"),
    ("isin", "isin"),
    ("not_nullable", "nullable"),
    ("field_uniqueness", "unique"),
    ("column_in_schema", "extra_column"),
    ("column_in_dataframe", "missing_column"),
    ("dtype", "type"),
)


def _pandera_check(name: str) -> str:
    for prefix, check in _PANDERA_CHECKS:
        if name.startswith(prefix):
            return check
    return name


def _check_pandera(
    path: Path,
    contract: Mapping[str, Any],
    columns: list[str],
    failures: _Failures,
    batch_size: int,
) -> None:
    import pandas as pd
    from pandera.errors import SchemaErrors

    schema = to_pandera(contract, unique=False)
    offset = 0
    for batch in stream_batches(path, columns, batch_size):
        frame = batch.to_pandas(types_mapper=pd.ArrowDtype)
        frame.index = pd.RangeIndex(offset, offset + batch.num_rows)
        try:
            schema.validate(frame, lazy=True)
        except SchemaErrors as exc:
            for case in exc.failure_cases.to_dict("records"):
                check = _pandera_check(str(case["check"]))
                column = case["column"]
                if check in ("extra_column", "missing_column"):
                    failures.schema(str(case["failure_case"]), check)
                elif check == "type":
                    failures.schema(str(column), check, _pandera_type(case["failure_case"]))
                else:
                    value = case["failure_case"]
                    failures.add(
                        str(column),
                        check,
                        1,
                        [{"row": int(case["index"]), "value": json_value(_python(value))}],
                    )
        offset += batch.num_rows


def _pandera_type(value: Any) -> str:
    text = str(value)
    return text.removesuffix("[pyarrow]").replace("double", "float64")


def _python(value: Any) -> Any:
    import pandas as pd

    if value is None or value is pd.NA:
        return None
    return value.item() if hasattr(value, "item") else value


class _Unique:
    """Cross-batch uniqueness of one column through 64-bit value hashes."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.parts: list[np.ndarray] = []

    def add(self, arr: pa.Array) -> None:
        hashes = value_hashes(arr)
        self.parts.append(hashes[validity_mask(arr)] if arr.null_count else hashes)

    def finish(self, path: Path, failures: _Failures, batch_size: int) -> None:
        import numpy as np

        if not self.parts:
            return
        hashes = np.sort(np.concatenate(self.parts))
        self.parts = []
        same = hashes[1:] == hashes[:-1]
        if not same.any():
            return
        # Like pandera, every occurrence of a repeated value fails, the first one included.
        repeated = np.zeros(hashes.size, dtype=bool)
        repeated[1:] |= same
        repeated[:-1] |= same
        count = int(np.count_nonzero(repeated))
        dup = np.unique(hashes[repeated])
        # The examples' rows and values take a second read, only when something failed.
        examples: list[dict[str, Any]] = []
        offset = 0
        for batch in stream_batches(path, [self.name], batch_size):
            if len(examples) >= failures.max_examples:
                break
            arr = batch.column(0)
            hit = np.isin(value_hashes(arr), dup)
            if arr.null_count:
                hit &= validity_mask(arr)
            for i in np.flatnonzero(hit)[: failures.max_examples - len(examples)].tolist():
                examples.append({"row": offset + i, "value": json_value(arr[i].as_py())})
            offset += batch.num_rows
        failures.add(self.name, "unique", count, examples)


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
        for key in _KEYS:
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
