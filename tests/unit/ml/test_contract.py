"""Contracts: inferred from a first version, edited as YAML, enforced on every version."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pandera.errors import SchemaErrors

from farpoint.core.errors import ValidationFailed
from farpoint.ml.contract import (
    TYPES,
    contract_diff,
    contract_to_yaml,
    infer_contract,
    parse_contract,
    schema_diff,
    to_pandera,
    validate_parquet,
)
from farpoint.ml.profile import profile_parquet, type_name

ROLES = {"mrn": "pii", "outcome": "label", "seen_at": "timestamp"}


def _write(path: Path, table: pa.Table) -> Path:
    pq.write_table(table, path, row_group_size=16)
    return path


def _columns(path: Path) -> list[dict[str, Any]]:
    return [
        {"name": f.name, "dtype": type_name(f.type), "nullable": f.nullable}
        for f in pq.read_schema(path)
    ]


def _vitals(n: int = 200) -> pa.Table:
    rng = np.random.default_rng(1)
    heart = rng.integers(41, 199, n)
    heart[:2] = [41, 198]
    temp = rng.uniform(35.21, 39.87, n).round(2)
    temp[:2] = [35.21, 39.87]
    return pa.table(
        {
            "mrn": pa.array([f"MRN-{i:05d}" for i in range(n)]),
            "heart_rate": pa.array(heart, mask=np.arange(n) == 7),
            "temperature": pa.array(temp),
            "ward": pa.array(rng.choice(["oncology", "cardiology", "general"], n)),
            "note": pa.array([f"free text {i}" for i in range(n)]),
            "nan_col": pa.array(np.where(np.arange(n) == 3, np.nan, 1.5)),
            "seen_at": pa.array(rng.integers(0, 10**12, n), type=pa.timestamp("us", tz="UTC")),
            "outcome": pa.array(rng.integers(0, 2, n)),
        }
    )


@pytest.fixture
def vitals(tmp_path: Path) -> Path:
    return _write(tmp_path / "vitals.parquet", _vitals())


@pytest.fixture
def contract(vitals: Path) -> dict[str, Any]:
    return infer_contract(_columns(vitals), profile_parquet(vitals, ROLES), ROLES)


def test_inferred_contract_widens_ranges_and_lists_few_categories(
    contract: dict[str, Any],
) -> None:
    columns = contract["columns"]
    assert contract["strict"] is True
    # 41..198: the span 157 widened by 15.7 each side, rounded outward to tens.
    assert columns["heart_rate"] == {"type": "int64", "nullable": True, "min": 20, "max": 220}
    # 35.21..39.87: margin 0.466, rounded outward to tenths.
    assert columns["temperature"] == {
        "type": "float64",
        "nullable": False,
        "min": 34.7,
        "max": 40.4,
    }
    assert columns["ward"]["allowed"] == ["cardiology", "general", "oncology"]
    assert "allowed" not in columns["note"]  # one value per row is no category
    assert columns["outcome"] == {"type": "int64", "nullable": False, "allowed": [0, 1]}
    assert columns["nan_col"] == {"type": "float64", "nullable": False}
    assert columns["seen_at"] == {"type": "timestamp[us, tz=UTC]", "nullable": False}


def test_inferred_contract_never_holds_pii_values(vitals: Path, contract: dict[str, Any]) -> None:
    assert contract["columns"]["mrn"] == {"type": "string", "nullable": False, "unique": True}
    assert "MRN-" not in json.dumps(contract) and "MRN-" not in contract_to_yaml(contract)


def test_the_first_version_satisfies_its_inferred_contract(
    vitals: Path, contract: dict[str, Any]
) -> None:
    result = validate_parquet(vitals, contract, batch_size=32)
    assert result == {"passed": True, "failures": [], "rows_checked": 200}


def test_range_rules_keep_non_negative_columns_non_negative(tmp_path: Path) -> None:
    path = _write(tmp_path / "counts.parquet", pa.table({"visits": [0, 3, 8], "tiny": [1.0] * 3}))
    got = infer_contract(_columns(path), profile_parquet(path, {}), {})["columns"]
    assert (got["visits"]["min"], got["visits"]["max"]) == (0, 9)
    # A constant is widened by 10% of itself, at least 1.
    assert (got["tiny"]["min"], got["tiny"]["max"]) == (0.0, 2.0)


def test_yaml_round_trip_with_a_header_for_people(contract: dict[str, Any]) -> None:
    text = contract_to_yaml(contract, dataset="vitals", source="vitals@1")
    assert text.startswith("# Contract of dataset vitals (inferred from vitals@1;")
    assert "  heart_rate: {type: int64, nullable: true, min: 20, max: 220}\n" in text
    assert "  seen_at: {type: 'timestamp[us, tz=UTC]', nullable: false}\n" in text
    assert text.rstrip().endswith("strict: true   # columns not named here are refused")
    assert parse_contract(text) == contract


names = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc", "Zl", "Zp")),
    min_size=1,
    max_size=12,
)


@st.composite
def contracts(draw: st.DrawFn) -> dict[str, Any]:
    columns: dict[str, Any] = {}
    for name in draw(st.lists(names, min_size=1, max_size=5, unique=True)):
        dtype = draw(st.sampled_from(TYPES))
        rules: dict[str, Any] = {"type": dtype, "nullable": draw(st.booleans())}
        if dtype in ("int64", "float64") and draw(st.booleans()):
            number = (
                st.integers(-(10**9), 10**9)
                if dtype == "int64"
                else st.floats(-1e9, 1e9, allow_nan=False)
            )
            low, high = sorted([draw(number), draw(number)])
            rules.update(min=low, max=high)
        if dtype == "string" and draw(st.booleans()):
            rules["allowed"] = draw(st.lists(names, min_size=1, max_size=4, unique=True))
        if draw(st.booleans()):
            rules["unique"] = True
        columns[name] = rules
    return {"columns": columns, "strict": draw(st.booleans())}


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(contracts())
def test_any_contract_survives_its_yaml(contract: dict[str, Any]) -> None:
    assert parse_contract(contract_to_yaml(contract)) == contract


def _error(text: str) -> str:
    with pytest.raises(ValidationFailed) as caught:
        parse_contract(text)
    return caught.value.detail


BASE = """\
# a comment
columns:
  age: {type: int64, nullable: false, min: 0, max: 120}
  ward: {type: string, allowed: [a, b]}
strict: true
"""


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("min: 0,", "minimum: 0,", r"unknown rule 'minimum' for column 'age' \(line 3\)"),
        ("type: int64", "type: int", r"'type' of column 'age' \(line 3\): unknown type 'int'"),
        ("allowed: [a, b]", "allowed: [a, yes]", r"'allowed' .*'ward' \(line 4\).*True.*quote"),
        ("allowed: [a, b]", "min: 3", r"'min' of column 'ward' \(line 4\): ranges apply to"),
        ("max: 120", "max: -1", r"'max' of column 'age' \(line 3\): max -1 is below min 0"),
        ("max: 120", "max: lots", r"'max' .*\(line 3\): must be a finite number, got 'lots'"),
        ("strict: true", "strict: maybe", r"'strict' \(line 5\) must be true or false"),
        ("strict: true", "strictness: true", r"unknown contract key 'strictness' \(line 5\)"),
        ("nullable: false,", "nullable: 0,", r"'nullable' of column 'age' \(line 3\)"),
        ("allowed: [a, b]", "allowed: [a, a]", r"'a' is listed twice"),
        ("  ward: {type: string, allowed: [a, b]}", "  ward: string", r"'ward' \(line 4\)"),
        ("  ward: {type: string, allowed: [a, b]}", "  ward: {nullable: true}", r"needs a 'type'"),
    ],
)
def test_parse_errors_name_the_key_value_and_line(old: str, new: str, expected: str) -> None:
    assert old in BASE
    assert re.search(expected, _error(BASE.replace(old, new))), _error(BASE.replace(old, new))


def test_parse_errors_for_the_whole_document() -> None:
    assert "not valid YAML" in _error("columns: {age: [}")
    assert "must be a YAML mapping" in _error("- age")
    assert "'columns' must be a mapping" in _error("columns: []\n")
    assert "quote it" in _error("columns:\n  1: {type: int64}\n")
    twice = _error("columns:\n  a: {type: bool}\n  b: {type: bool}\n  a: {type: int64}\n")
    assert twice == "column 'a' appears twice, at lines 2 and 4: keep one"
    assert "rule 'type' of column 'a' is given twice (line 2)" in _error(
        "columns:\n  a: {type: bool, type: int64}\n"
    )


def test_nullable_defaults_to_false_and_strict_to_true() -> None:
    assert parse_contract("columns:\n  x: {type: bool}\n") == {
        "columns": {"x": {"type": "bool", "nullable": False}},
        "strict": True,
    }


def test_pandera_schema_states_the_same_rules(vitals: Path, contract: dict[str, Any]) -> None:
    schema = to_pandera(contract)
    assert schema.strict is True
    assert schema.columns["mrn"].unique and not schema.columns["heart_rate"].unique
    assert schema.columns["heart_rate"].nullable
    frame = pd.read_parquet(vitals, dtype_backend="pyarrow")
    schema.validate(frame)
    frame.loc[3, "ward"] = "surgery"
    frame.loc[4, "temperature"] = 50.0
    with pytest.raises(SchemaErrors) as caught:
        schema.validate(frame, lazy=True)
    cases = caught.value.failure_cases
    failed = set(zip(cases["column"], cases["index"], strict=True))
    assert failed == {("ward", 3), ("temperature", 4)}


def _broken(tmp_path: Path) -> Path:
    """Rows failing on purpose, spread over several batches."""
    table = _vitals(60)
    heart = table["heart_rate"].to_pylist()
    for row in (1, 9, 14, 33, 59):
        heart[row] = 400
    heart[20] = None
    ward = table["ward"].to_pylist()
    ward[25], ward[50] = "surgery", None
    mrn = table["mrn"].to_pylist()
    mrn[45] = mrn[2]  # a repeat in another batch
    temp = table["temperature"].to_pylist()
    temp[12] = float("nan")
    table = table.set_column(1, "heart_rate", pa.array(heart, type=pa.int64()))
    table = table.set_column(2, "temperature", pa.array(temp))
    table = table.set_column(3, "ward", pa.array(ward))
    table = table.set_column(0, "mrn", pa.array(mrn))
    return _write(tmp_path / "broken.parquet", table)


def _by_check(result: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(f["column"], f["check"]): f for f in result["failures"]}


def test_failures_carry_global_row_numbers_across_batches(
    tmp_path: Path, contract: dict[str, Any]
) -> None:
    contract["columns"]["heart_rate"]["nullable"] = False
    result = validate_parquet(_broken(tmp_path), contract, max_examples=3, batch_size=8)
    found = _by_check(result)
    assert result["passed"] is False and result["rows_checked"] == 60
    heart = found[("heart_rate", "in_range")]
    assert heart["failure_count"] == 5
    assert heart["examples"] == [
        {"row": 1, "value": 400},
        {"row": 9, "value": 400},
        {"row": 14, "value": 400},
    ]
    assert found[("heart_rate", "nullable")]["examples"] == [
        {"row": 7, "value": None},
        {"row": 20, "value": None},
    ]
    assert found[("ward", "isin")]["examples"] == [{"row": 25, "value": "surgery"}]
    assert found[("ward", "nullable")]["failure_count"] == 1
    assert found[("temperature", "in_range")]["examples"] == [{"row": 12, "value": "nan"}]
    mrn = found[("mrn", "unique")]
    assert mrn["failure_count"] == 2
    assert [e["row"] for e in mrn["examples"]] == [2, 45]
    assert "outside [20, 220]" in heart["detail"]


def test_missing_extra_and_mistyped_columns_fail(tmp_path: Path, contract: dict[str, Any]) -> None:
    table = _vitals(20).drop_columns(["note"]).append_column("extra", pa.array([1] * 20))
    table = table.set_column(2, "temperature", table["temperature"].cast(pa.string()))
    found = _by_check(validate_parquet(_write(tmp_path / "v2.parquet", table), contract))
    assert set(found) == {
        ("note", "missing_column"),
        ("extra", "extra_column"),
        ("temperature", "type"),
    }
    assert found[("temperature", "type")]["examples"] == [{"row": None, "value": "string"}]
    contract["strict"] = False
    relaxed = _by_check(validate_parquet(_write(tmp_path / "v2.parquet", table), contract))
    assert ("extra", "extra_column") not in relaxed


@pytest.mark.parametrize("batch_size", [7, 16, 1000])
def test_arrow_and_pandera_engines_find_the_same_failures(
    tmp_path: Path, contract: dict[str, Any], batch_size: int
) -> None:
    contract["columns"]["heart_rate"]["nullable"] = False
    contract["columns"]["gone"] = {"type": "bool", "nullable": True}
    del contract["columns"]["note"]
    path = _broken(tmp_path)
    arrow = validate_parquet(path, contract, max_examples=4, batch_size=batch_size)
    pandera = validate_parquet(
        path, contract, max_examples=4, batch_size=batch_size, engine="pandera"
    )
    assert arrow == pandera
    assert {f["check"] for f in arrow["failures"]} == {
        "in_range",
        "nullable",
        "isin",
        "unique",
        "missing_column",
        "extra_column",
    }


def test_unknown_engine_is_refused(vitals: Path, contract: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="engine"):
        validate_parquet(vitals, contract, engine="spark")


def test_schema_diff_names_every_kind_of_change() -> None:
    old = [
        {"name": "a", "dtype": "int64", "nullable": False},
        {"name": "b", "dtype": "string", "nullable": False},
        {"name": "c", "dtype": "float64", "nullable": True},
        {"name": "d", "dtype": "bool", "nullable": False},
    ]
    new = [
        {"name": "c", "dtype": "float64", "nullable": True},
        {"name": "a", "dtype": "float64", "nullable": False},
        {"name": "b", "dtype": "string", "nullable": True},
        {"name": "e", "dtype": "date32[day]", "nullable": False},
    ]
    assert schema_diff(old, new) == [
        {"change": "type_changed", "column": "a", "old": "int64", "new": "float64"},
        {"change": "nullability_changed", "column": "b", "old": False, "new": True},
        {"change": "added", "column": "e", "old": None, "new": "date32[day]"},
        {"change": "removed", "column": "d", "old": "bool", "new": None},
        {"change": "reordered", "column": None, "old": ["a", "b", "c"], "new": ["c", "a", "b"]},
    ]
    assert schema_diff(old, old) == []


def test_contract_diff_lists_rule_changes(contract: dict[str, Any]) -> None:
    edited = json.loads(json.dumps(contract))
    edited["columns"]["heart_rate"]["max"] = 250
    edited["columns"]["ward"]["allowed"].append("icu")
    del edited["columns"]["note"]
    edited["strict"] = False
    assert contract_diff(contract, edited) == [
        {"column": "heart_rate", "rule": "max", "old": 220, "new": 250},
        {
            "column": "ward",
            "rule": "allowed",
            "old": ["cardiology", "general", "oncology"],
            "new": ["cardiology", "general", "oncology", "icu"],
        },
        {"column": "note", "rule": None, "old": {"type": "string", "nullable": False}, "new": None},
        {"column": None, "rule": "strict", "old": True, "new": False},
    ]
