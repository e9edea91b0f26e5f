"""Validating a canonical Parquet file against a data contract (`farpoint.ml.contract`),
streamed batch by batch.

The default engine runs the rules as vectorised Arrow/numpy checks: pandera builds a
DataFrame of every failure, which on a badly failing million-row file takes seconds per
batch. The "pandera" engine runs the contract's `to_pandera` schema on each batch
instead; the tests hold both to the same failure counts. Uniqueness spans batches in
both, through 64-bit value hashes (8 bytes a row). `Validator` lets one read of the file
feed the checks and other accumulators at once (`farpoint.ml.registration`).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from farpoint.ml.column_stats import ExactDistinct
from farpoint.ml.columns import (
    BATCH_ROWS,
    json_value,
    raw_numbers,
    stream_batches,
    type_name,
    validity_mask,
)
from farpoint.ml.hashes import value_hashes

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

__all__ = ["CHECKS", "Validator", "arrow_type", "validate_parquet"]

CHECKS = ("missing_column", "extra_column", "type", "nullable", "in_range", "isin", "unique")
"""Failure kinds of `validate_parquet`, in the order they are reported per column."""


def arrow_type(name: str) -> pa.DataType:
    """The Arrow type of a contract's type name."""
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


class Validator:
    """The arrow engine's checks over batches the caller streams: `columns` (read the
    `dictionary` ones dictionary-encoded), `add` each batch with its global row offset,
    then `finish`."""

    def __init__(
        self, schema: pa.Schema, rows: int, contract: Mapping[str, Any], max_examples: int = 5
    ) -> None:
        import pyarrow as pa

        self.contract, self.rows = contract, rows
        self.failures = failures = _Failures(contract, max_examples)
        rules_of = contract["columns"]
        present = {field.name: type_name(field.type) for field in schema}
        typed = [name for name, rules in rules_of.items() if present.get(name) == rules["type"]]
        for name in rules_of:
            if name not in present:
                failures.schema(name, "missing_column")
            elif name not in typed:
                failures.schema(name, "type", present[name])
        if contract.get("strict", True):
            for name in present:
                if name not in rules_of:
                    failures.schema(name, "extra_column")
        self.uniques = {n: _Unique(n) for n in typed if rules_of[n].get("unique")}
        self.columns = [
            name
            for name in typed
            if not rules_of[name].get("nullable", False)
            or {"min", "max", "allowed", "unique"} & set(rules_of[name])
        ]
        self.dictionary = [
            n for n in self.columns if "allowed" in rules_of[n] and rules_of[n]["type"] == "string"
        ]
        self.allowed: dict[str, pa.Array] = {
            name: pa.array(rules_of[name]["allowed"], type=arrow_type(rules_of[name]["type"]))
            for name in self.columns
            if "allowed" in rules_of[name]
        }

    def skip_null_free(self, null_free: set[str]) -> None:
        """Stop reading columns known to hold no null whose only check left is
        `nullable` (it cannot fail on them)."""
        rules_of = self.contract["columns"]

        def needed(name: str) -> bool:
            rules = rules_of[name]
            unique = self.uniques.get(name)
            return (
                name not in null_free
                or bool({"min", "max", "allowed"} & set(rules))
                or (unique is not None and unique.sorted is None)
            )

        self.columns = [n for n in self.columns if needed(n)]
        self.dictionary = [n for n in self.dictionary if n in self.columns]

    def add(
        self, batch: pa.RecordBatch, offset: int, hashes: Mapping[str, np.ndarray] | None = None
    ) -> None:
        """Check one batch (any superset of `columns`) whose first row is row `offset`;
        `hashes` holds `value_hashes` of some of its columns."""
        import numpy as np

        failures, known = self.failures, hashes or {}
        for name in self.columns:
            arr = batch.column(name)
            rules = self.contract["columns"][name]
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
            if name in self.allowed:
                member = _members(arr, self.allowed[name])
                failed = ~member if valid is None else valid & ~member
                failures.rows(name, "isin", failed, arr, offset)
            if name in self.uniques and self.uniques[name].sorted is None:
                self.uniques[name].add(arr, known.get(name))

    def finish(self, path: Path, batch_size: int = BATCH_ROWS) -> dict[str, Any]:
        """The result of `validate_parquet`; reads the file again only to find the rows
        of repeated values of a `unique` column."""
        for unique in self.uniques.values():
            unique.finish(path, self.failures, batch_size)
        return self.failures.result(self.rows)


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
    if engine == "arrow":
        validator = Validator(schema, rows, contract, max_examples)
        if validator.columns:
            offset = 0
            for batch in stream_batches(path, validator.columns, batch_size, validator.dictionary):
                validator.add(batch, offset)
                offset += batch.num_rows
        return validator.finish(path, batch_size)
    failures = _Failures(contract, max_examples)
    present = {field.name: type_name(field.type) for field in schema}
    typed = [
        name for name, rules in contract["columns"].items() if present.get(name) == rules["type"]
    ]
    uniques = [_Unique(n) for n in typed if contract["columns"][n].get("unique")]
    _check_pandera(path, contract, list(present), failures, batch_size)
    for batch in stream_batches(path, [u.name for u in uniques], batch_size) if uniques else ():
        for unique, arr in zip(uniques, batch.columns, strict=True):
            unique.add(arr)
    for unique in uniques:
        unique.finish(path, failures, batch_size)
    return failures.result(rows)


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

    from farpoint.ml.contract import to_pandera

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


class _Unique(ExactDistinct):
    """Cross-batch uniqueness of one column through 64-bit value hashes (the profile's
    distinct counter, which a fused read may hand over already sorted)."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name

    def use_sorted(self, hashes: np.ndarray) -> None:
        """Take the column's sorted non-null hashes from elsewhere instead of `add`."""
        self.sorted, self.parts = hashes, []

    def finish(self, path: Path, failures: _Failures, batch_size: int) -> None:
        import numpy as np

        if self.sorted is None and not self.parts:
            return
        hashes = self.sorted_hashes()
        self.parts, self.sorted = [], None
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
