"""Quality reports: every check fails on data that deserves it and passes otherwise."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from farpoint.ml.contract import infer_contract
from farpoint.ml.profile import profile_parquet, type_name
from farpoint.ml.quality import THRESHOLDS, quality_report

N = 600
ROLES = {"mrn": "pii", "outcome": "label", "sex": "protected"}


def _base(n: int = N, seed: int = 0) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    outcome = (rng.random(n) < 0.3).astype("int64")
    return {
        "mrn": [f"MRN-{i:05d}" for i in range(n)],
        "heart_rate": rng.normal(80, 10, n).round().astype("int64"),
        "lactate": rng.lognormal(0.2, 0.3, n).round(2),
        "ward": rng.choice(["cardiology", "general", "icu"], n),
        "sex": rng.choice(["F", "M"], n),
        "outcome": outcome,
    }


def _report(
    tmp_path: Path,
    data: dict[str, Any],
    roles: dict[str, str] | None = None,
    *,
    contract_from: dict[str, Any] | None = None,
    **kwargs: Any,
) -> dict[str, Any]:
    """The quality report of `data`; with `contract_from`, against the contract inferred
    from that other data (a first version)."""
    roles = ROLES if roles is None else roles
    contract = None
    if contract_from is not None:
        first = tmp_path / "first.parquet"
        pq.write_table(pa.table(contract_from), first)
        contract = infer_contract(_columns(first), profile_parquet(first, roles), roles)
    path = tmp_path / "version.parquet"
    pq.write_table(pa.table(data), path, row_group_size=100)
    report = quality_report(
        path,
        columns=_columns(path),
        roles=roles,
        profile=profile_parquet(path, roles),
        contract=contract,
        batch_size=64,
        **kwargs,
    )
    json.dumps(report, allow_nan=False)
    return report


def _columns(path: Path) -> list[dict[str, Any]]:
    return [
        {"name": f.name, "dtype": type_name(f.type), "nullable": f.nullable}
        for f in pq.read_schema(path)
    ]


def _find(report: dict[str, Any], check: str, column: str | None) -> dict[str, Any]:
    found: list[dict[str, Any]] = [
        c for c in report["checks"] if c["check"] == check and c["column"] == column
    ]
    assert len(found) == 1, (check, column, report["checks"])
    return found[0]


@pytest.fixture
def clean(tmp_path: Path) -> dict[str, Any]:
    return _report(tmp_path, _base(), contract_from=_base(seed=1))


def test_a_clean_version_passes_every_check(clean: dict[str, Any]) -> None:
    failed = [c for c in clean["checks"] if not c["passed"]]
    assert failed == []
    assert (clean["errors"], clean["warnings"], clean["passed"]) == (0, 0, True)
    for check in clean["checks"]:
        assert set(check) == {
            "check",
            "column",
            "severity",
            "passed",
            "value",
            "threshold",
            "detail",
        }
        assert check["severity"] in ("error", "warning", "info")


@pytest.mark.parametrize(
    ("check", "column"),
    [
        ("missing_values", "heart_rate"),
        ("missing_values", "outcome"),
        ("duplicates", None),
        ("class_balance", "outcome"),
        ("constant_column", "ward"),
        ("label_leakage", "heart_rate"),
        ("label_leakage", "ward"),
        ("id_like", "heart_rate"),
        ("high_cardinality", "ward"),
        ("outliers", "lactate"),
        ("out_of_range", "heart_rate"),
        ("unseen_categories", "ward"),
        ("contract", None),
    ],
)
def test_each_check_passes_on_clean_data(
    clean: dict[str, Any], check: str, column: str | None
) -> None:
    found = _find(clean, check, column)
    assert found["passed"], found


def _failed(report: dict[str, Any], check: str, column: str | None) -> dict[str, Any]:
    found = _find(report, check, column)
    assert not found["passed"], found
    return found


def test_missing_values_warn_for_features_and_fail_for_the_label(tmp_path: Path) -> None:
    data = _base()
    data["heart_rate"] = pa.array(data["heart_rate"], mask=np.arange(N) % 10 == 0)
    data["outcome"] = pa.array(data["outcome"], mask=np.arange(N) == 3)
    report = _report(tmp_path, data)
    feature = _failed(report, "missing_values", "heart_rate")
    assert feature["severity"] == "warning" and feature["value"] == pytest.approx(0.1)
    label = _failed(report, "missing_values", "outcome")
    assert label["severity"] == "error" and "1 of 600 labels" in label["detail"]
    assert report["passed"] is False


def test_whole_row_duplicates_are_found_across_batches(tmp_path: Path) -> None:
    data = {k: list(v) for k, v in _base().items()}
    for row in range(0, 30):
        for values in data.values():
            values[N - 1 - row] = values[row]  # the last rows copy the first ones
    found = _failed(_report(tmp_path, data), "duplicates", None)
    assert found["value"] == pytest.approx(30 / N)
    assert found["severity"] == "warning" and "30 of 600 rows" in found["detail"]


def test_rows_that_differ_in_one_column_are_not_duplicates(tmp_path: Path) -> None:
    data = {k: list(v) for k, v in _base().items()}
    for values in data.values():
        values[1] = values[0]
    data["lactate"][1] = data["lactate"][0] + 0.01
    assert _find(_report(tmp_path, data), "duplicates", None)["value"] == 0.0


def test_a_rare_class_is_flagged_and_a_single_class_is_an_error(tmp_path: Path) -> None:
    data = _base()
    data["outcome"] = (np.arange(N) < 12).astype("int64")
    rare = _failed(_report(tmp_path, data), "class_balance", "outcome")
    assert rare["severity"] == "warning" and rare["value"] == pytest.approx(0.02)
    data["outcome"] = np.zeros(N, dtype="int64")
    single = _failed(_report(tmp_path, data), "class_balance", "outcome")
    assert single["severity"] == "error"


def test_a_constant_column_is_flagged(tmp_path: Path) -> None:
    data = _base()
    data["ward"] = ["general"] * N
    assert _failed(_report(tmp_path, data), "constant_column", "ward")["severity"] == "warning"


def test_a_copy_of_the_label_is_leakage_numeric_or_categorical(tmp_path: Path) -> None:
    data = _base()
    data["leak"] = data["outcome"].copy()
    data["leak_text"] = np.where(data["outcome"] == 1, "bad", "good")
    noisy = data["outcome"].copy()
    noisy[0] = 1 - noisy[0]  # one row in 600 disagrees
    data["leak_noisy"] = noisy * 10.0 + np.random.default_rng(3).normal(0, 1, N)
    report = _report(tmp_path, data)
    for name in ("leak", "leak_text", "leak_noisy"):
        found = _failed(report, "label_leakage", name)
        assert found["severity"] == "error" and found["value"] >= 0.99, found
    assert report["passed"] is False
    for honest in ("heart_rate", "lactate", "ward"):
        assert _find(report, "label_leakage", honest)["value"] < 0.7


@pytest.mark.parametrize("kind", ["string", "bool"])
def test_leakage_and_balance_with_a_string_or_boolean_label(tmp_path: Path, kind: str) -> None:
    data = _base()
    flag = data["outcome"] == 1
    data["outcome"] = pa.array(
        np.where(flag, "yes", "no") if kind == "string" else flag, mask=np.arange(N) == 4
    )
    data["leak"] = np.where(flag, 2.5, -1.0)
    report = _report(tmp_path, data)
    assert _failed(report, "label_leakage", "leak")["value"] == pytest.approx(1.0)
    assert _find(report, "label_leakage", "ward")["passed"]
    balance = _find(report, "class_balance", "outcome")
    assert balance["passed"] and balance["value"] == pytest.approx(flag.sum() / N, abs=0.01)
    assert _failed(report, "missing_values", "outcome")["severity"] == "error"


def test_an_identifier_is_id_like_not_leakage(tmp_path: Path) -> None:
    data = _base()
    data["visit"] = [f"V{i}" for i in range(N)]
    data["row_number"] = np.arange(N)
    report = _report(tmp_path, data)
    for name in ("visit", "row_number"):
        assert _failed(report, "id_like", name)["severity"] == "warning"
    assert not [
        c for c in report["checks"] if c["check"] == "label_leakage" and c["column"] == "visit"
    ]


def test_too_many_categories_are_flagged(tmp_path: Path) -> None:
    data = _base()
    report = _report(tmp_path, data, thresholds={"max_categories": 2})
    found = _failed(report, "high_cardinality", "ward")
    assert found["value"] == 3 and found["threshold"] == 2


def test_outliers_beyond_the_fences_warn(tmp_path: Path) -> None:
    data = _base()
    data["lactate"] = data["lactate"].copy()
    data["lactate"][:30] = 500.0
    found = _failed(_report(tmp_path, data), "outliers", "lactate")
    assert found["severity"] == "warning" and found["value"] == pytest.approx(0.05)


def test_outliers_below_the_threshold_are_information(clean: dict[str, Any]) -> None:
    found = _find(clean, "outliers", "lactate")
    assert found["passed"] and found["severity"] == "info"


def test_contract_violations_become_errors(tmp_path: Path) -> None:
    data = _base()
    data["heart_rate"] = data["heart_rate"].copy()
    data["heart_rate"][5] = 900
    data["ward"] = data["ward"].copy()
    data["ward"][7] = "maternity"
    data["extra"] = np.ones(N)
    report = _report(tmp_path, data, contract_from=_base(seed=1))
    out_of_range = _failed(report, "out_of_range", "heart_rate")
    assert out_of_range["severity"] == "error" and out_of_range["value"] == 1
    assert _failed(report, "unseen_categories", "ward")["value"] == 1
    extra = _failed(report, "contract", "extra")
    assert "extra_column" in extra["detail"]
    assert report["passed"] is False and report["errors"] == 3


def test_a_regression_label_is_checked_for_leakage_by_correlation(tmp_path: Path) -> None:
    data = _base()
    data["length_of_stay"] = np.random.default_rng(2).gamma(2.0, 3.0, N)
    data["discharge_day"] = data["length_of_stay"] * 2 + 1
    del data["outcome"]
    report = _report(tmp_path, data, {"mrn": "pii", "length_of_stay": "label"})
    assert _failed(report, "label_leakage", "discharge_day")["value"] == pytest.approx(1.0)
    assert _find(report, "label_leakage", "heart_rate")["passed"]
    assert not [c for c in report["checks"] if c["check"] == "class_balance"]


def test_thresholds_can_be_overridden_but_not_invented(tmp_path: Path) -> None:
    data = _base()
    data["heart_rate"] = pa.array(data["heart_rate"], mask=np.arange(N) % 10 == 0)
    relaxed = _report(tmp_path, data, thresholds={"missing_share": 0.2})
    found = _find(relaxed, "missing_values", "heart_rate")
    assert found["passed"] and found["threshold"] == 0.2
    with pytest.raises(ValueError, match="unknown thresholds"):
        _report(tmp_path, data, thresholds={"missing": 0.2})
    assert THRESHOLDS["label_leakage"] == 0.99


def test_ignored_columns_are_not_checked(tmp_path: Path) -> None:
    data = _base()
    data["scratch"] = [None] * N
    report = _report(tmp_path, data, {**ROLES, "scratch": "ignored"})
    assert not [c for c in report["checks"] if c["column"] == "scratch"]


@pytest.mark.parametrize("rows", [0, 5])
def test_empty_and_all_missing_columns_are_reported_not_crashed_on(
    tmp_path: Path, rows: int
) -> None:
    data = {
        "a": pa.array([None] * rows, pa.int64()),
        "s": pa.array([None] * rows, pa.string()),
        "flag": pa.array([None] * rows, pa.bool_()),
        "outcome": pa.array([None] * rows, pa.string()),
    }
    report = _report(tmp_path, data, {"outcome": "label"}, contract_from=data)
    assert not _find(report, "constant_column", "s")["passed"]
    if rows:
        assert not _find(report, "missing_values", "outcome")["passed"]
        assert report["passed"] is False
