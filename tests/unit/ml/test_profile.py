"""Profiles: per-column statistics and histograms with frozen edges, and comparisons."""

from __future__ import annotations

import datetime as dt
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from farpoint.core.drift import bin_counts
from farpoint.core.errors import ValidationFailed
from farpoint.ml import profile as profile_module
from farpoint.ml.profile import (
    compare_profiles,
    count_into_bins,
    profile_parquet,
    value_hashes,
)

ROLES = {"mrn": "pii", "outcome": "label", "sex": "protected", "seen_at": "timestamp"}


def _write(path: Path, table: pa.Table, row_group_size: int = 131_072) -> Path:
    pq.write_table(table, path, row_group_size=row_group_size)
    return path


def _vitals(n: int = 400, seed: int = 0, shift: float = 0.0) -> pa.Table:
    rng = np.random.default_rng(seed)
    heart = rng.normal(80 + shift, 12, n).round().astype("int64")
    lactate = rng.lognormal(0.3 + shift / 20, 0.4, n).round(2)
    lactate[:3] = [np.nan, np.inf, 0.0]
    return pa.table(
        {
            "mrn": pa.array([f"MRN-{i:06d}" for i in range(n)]),
            "heart_rate": pa.array(heart, mask=np.arange(n) % 10 == 0),
            "lactate": pa.array(lactate),
            "ward": pa.array(rng.choice(["cardiology", "general", "icu"], n)),
            "sex": pa.array(rng.choice(["F", "M"], n)),
            "on_oxygen": pa.array(rng.random(n) < 0.3, mask=np.arange(n) == 5),
            "seen_at": pa.array(
                1_700_000_000_000_000 + rng.integers(0, 10**11, n),
                type=pa.timestamp("us", tz="UTC"),
            ),
            "born": pa.array(rng.integers(-10_000, 15_000, n).astype("int32"), type=pa.date32()),
            "outcome": pa.array((rng.random(n) < 0.2).astype("int64")),
        }
    )


@pytest.fixture
def vitals(tmp_path: Path) -> Path:
    return _write(tmp_path / "vitals.parquet", _vitals(), row_group_size=128)


def test_profile_is_versioned_json_with_exact_statistics(vitals: Path) -> None:
    prof = profile_parquet(vitals, ROLES, batch_size=50)
    json.dumps(prof, allow_nan=False)  # strict JSON: no NaN or infinity anywhere
    assert prof["format"] == 1
    assert prof["row_count"] == 400
    assert prof["quantile_method"] == "exact"

    table = pq.read_table(vitals)
    heart = prof["columns"]["heart_rate"]
    values = table["heart_rate"].drop_null().to_numpy()
    assert (heart["dtype"], heart["role"], heart["kind"]) == ("int64", "feature", "numeric")
    assert heart["count"] == 400 and heart["null_count"] == 40
    assert heart["distinct"] == len(set(values.tolist())) and heart["distinct_exact"]
    assert (heart["min"], heart["max"]) == (values.min(), values.max())
    assert heart["mean"] == pytest.approx(values.mean())
    assert heart["std"] == pytest.approx(values.std(ddof=1))
    assert heart["quantiles"]["p50"] == pytest.approx(np.quantile(values, 0.5))
    assert heart["quantiles"]["p99"] == pytest.approx(np.quantile(values, 0.99))

    lactate = prof["columns"]["lactate"]
    assert (lactate["dtype"], lactate["nan_count"], lactate["posinf_count"]) == ("float64", 1, 1)
    assert lactate["zeros"] == 1
    finite = table["lactate"].to_numpy()
    finite = finite[np.isfinite(finite)]
    assert lactate["max"] == finite.max() and lactate["mean"] == pytest.approx(finite.mean())


def _rounded(value: Any) -> Any:
    """`value` with floats to 9 significant digits: batch-wise merging of means and
    variances may differ in the last bits."""
    if isinstance(value, float):
        return float(f"{value:.9g}")
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    return value


def test_profile_does_not_depend_on_the_batch_size(vitals: Path) -> None:
    small = profile_parquet(vitals, ROLES, batch_size=7)
    large = profile_parquet(vitals, ROLES)
    assert _rounded(small) == _rounded(large)


def test_the_second_pass_counts_the_same_from_memory_or_from_the_file(
    vitals: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    remembered = profile_parquet(vitals, ROLES, batch_size=64)
    monkeypatch.setattr(profile_module, "MEMO_BYTES", 1_000)  # too small: read again
    assert profile_parquet(vitals, ROLES, batch_size=64) == remembered


def test_histograms_count_every_non_missing_value(vitals: Path) -> None:
    prof = profile_parquet(vitals, ROLES, batch_size=33)
    for name in ("heart_rate", "lactate", "seen_at", "born", "outcome"):
        col = prof["columns"][name]
        hist = col["histogram"]
        assert len(hist["counts"]) == len(hist["edges"]) + 1
        assert all(b > a for a, b in zip(hist["edges"], hist["edges"][1:], strict=False))
        assert sum(hist["counts"]) == col["count"] - col["null_count"] - col.get("nan_count", 0)
    # Integers get integer edges; the label's two values get one bin each.
    assert prof["columns"]["outcome"]["histogram"]["edges"] == [0, 1, 2]
    assert all(isinstance(e, int) for e in prof["columns"]["heart_rate"]["histogram"]["edges"])


def test_frozen_edges_count_later_data_the_same_way(vitals: Path, tmp_path: Path) -> None:
    old = profile_parquet(vitals, ROLES)
    later = _write(tmp_path / "later.parquet", _vitals(seed=3, shift=5))
    new = profile_parquet(later, ROLES, reference=old, batch_size=64)
    table = pq.read_table(later)
    for name in ("heart_rate", "lactate", "seen_at", "born"):
        edges = old["columns"][name]["histogram"]["edges"]
        assert new["reference"]["counts"][name] == count_into_bins(edges, table[name])
    assert new["reference"]["edges_sha256"] == old["edges_sha256"]


finite_floats = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False)


@given(
    st.lists(finite_floats, min_size=1, max_size=12, unique=True).map(sorted),
    st.lists(
        st.one_of(finite_floats, st.none(), st.just(math.nan), st.just(math.inf)), max_size=60
    ),
)
def test_numpy_counting_matches_the_pure_python_rule_devices_use(
    edges: list[float], values: list[float | None]
) -> None:
    assert count_into_bins(edges, values) == bin_counts(edges, values)
    floats = np.array([math.nan if v is None else v for v in values], dtype=np.float64)
    assert count_into_bins(edges, floats) == bin_counts(edges, values)


@given(
    st.integers(min_value=-(10**15), max_value=10**15),
    st.integers(min_value=1, max_value=10**6),
    st.integers(min_value=1, max_value=25),
    st.lists(st.integers(min_value=-(2**62), max_value=2**62), max_size=60),
)
def test_integer_edges_count_exactly(first: int, width: int, bins: int, values: list[int]) -> None:
    edges = [first + k * width for k in range(bins + 1)]
    near = [first + v % (width * (bins + 2)) - width for v in values]
    assert count_into_bins(edges, np.array(values + near)) == bin_counts(edges, values + near)


def test_bad_edges_are_refused() -> None:
    with pytest.raises(ValueError, match="strictly increasing"):
        count_into_bins([1.0, 1.0], [1.0])


def test_categories_booleans_dates_and_the_label(vitals: Path) -> None:
    prof = profile_parquet(vitals, ROLES)
    table = pq.read_table(vitals)
    ward = prof["columns"]["ward"]
    counts = {t["value"]: t["count"] for t in ward["top"]}
    assert counts == {v: table["ward"].to_pylist().count(v) for v in counts}
    assert ward["other_count"] == 0 and ward["distinct"] == 3
    assert ward["length"]["min"] == 3 and ward["length"]["max"] == 10

    oxygen = prof["columns"]["on_oxygen"]
    assert oxygen["null_count"] == 1
    assert oxygen["true_count"] == table["on_oxygen"].to_pylist().count(True)
    assert oxygen["true_count"] + oxygen["false_count"] == 399

    seen = prof["columns"]["seen_at"]
    first = min(table["seen_at"].to_pylist())
    assert seen["min"] == first.isoformat() and seen["min"].endswith("+00:00")
    assert seen["histogram"]["unit"] == "us since 1970-01-01"
    born = prof["columns"]["born"]
    assert born["min"] == min(table["born"].to_pylist()).isoformat()
    assert born["histogram"]["unit"] == "days since 1970-01-01"

    classes = {c["value"]: c["count"] for c in prof["columns"]["outcome"]["classes"]}
    assert classes == {
        0: table["outcome"].to_pylist().count(0),
        1: sum(table["outcome"].to_pylist()),
    }


def test_pii_and_id_values_never_enter_the_profile(vitals: Path) -> None:
    prof = profile_parquet(vitals, {**ROLES, "ward": "id"})
    text = json.dumps(prof)
    assert "MRN-" not in text and "cardiology" not in text
    mrn = prof["columns"]["mrn"]
    assert mrn["private"] and mrn["distinct"] == 400 and mrn["distinct_exact"]
    assert "top" not in mrn and "histogram" not in mrn
    assert mrn["length"] == {"min": 10, "max": 10, "mean": 10.0}


def test_distinct_is_exact_up_to_the_cap_then_a_lower_bound(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(profile_module, "DISTINCT_CAP", 50)
    names = [f"name-{i % 120}" for i in range(600)]
    path = _write(
        tmp_path / "many.parquet",
        pa.table({"name": names, "code": names, "n": list(range(600))}),
    )
    prof = profile_parquet(path, {"code": "id"}, batch_size=100)
    name = prof["columns"]["name"]
    assert name["distinct_exact"] is False and name["distinct"] >= 50
    assert sum(t["count"] for t in name["top"]) + name["other_count"] == 600
    assert prof["columns"]["n"]["distinct_exact"] is False
    # Identifiers are counted exactly through hashes, whatever the cap.
    assert prof["columns"]["code"]["distinct"] == 120 and prof["columns"]["code"]["distinct_exact"]


def test_many_categories_keep_the_top_fifty_and_count_the_rest(tmp_path: Path) -> None:
    values = [f"c{i:03d}" for i in range(80) for _ in range(i + 1)]
    path = _write(tmp_path / "cats.parquet", pa.table({"c": values}))
    col = profile_parquet(path, {})["columns"]["c"]
    assert len(col["top"]) == 50 and col["top"][0] == {"value": "c079", "count": 80}
    assert col["other_count"] == sum(range(1, 31))
    assert col["distinct"] == 80


def test_large_files_take_quantiles_from_a_seeded_sample(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(profile_module, "QUANTILE_SAMPLE", 2_000)
    values = np.random.default_rng(5).normal(0, 1, 20_000)
    path = _write(tmp_path / "big.parquet", pa.table({"x": values}))
    first = profile_parquet(path, {}, batch_size=3_000)
    assert first == profile_parquet(path, {}, batch_size=3_000)
    col = first["columns"]["x"]
    assert first["quantile_method"].startswith("bernoulli sample")
    assert col["quantiles"]["p50"] == pytest.approx(0.0, abs=0.1)
    assert col["quantiles"]["p95"] == pytest.approx(1.645, abs=0.15)
    assert sum(col["histogram"]["counts"]) == 20_000
    assert col["mean"] == pytest.approx(values.mean())


def test_roles_must_name_real_columns_and_known_roles(vitals: Path) -> None:
    with pytest.raises(ValidationFailed, match="'nope'"):
        profile_parquet(vitals, {"nope": "feature"})
    with pytest.raises(ValidationFailed, match="unknown role 'target'"):
        profile_parquet(vitals, {"outcome": "target"})


def test_an_identical_version_shows_no_drift(vitals: Path) -> None:
    old = profile_parquet(vitals, ROLES)
    new = profile_parquet(vitals, ROLES, reference=old)
    comparison = compare_profiles(old, new)
    for name in ("heart_rate", "lactate", "ward", "sex", "on_oxygen", "outcome"):
        entry = comparison["columns"][name]
        assert entry["psi"] == pytest.approx(0.0) and entry["verdict"] == "none", name
    assert comparison["columns"]["mrn"]["verdict"] == "not_compared"
    assert comparison["summary"]["significant"] == []
    json.dumps(comparison, allow_nan=False)


def test_a_shifted_distribution_is_significant(vitals: Path, tmp_path: Path) -> None:
    old = profile_parquet(vitals, ROLES)
    shifted = _vitals(seed=9, shift=15)
    shifted = shifted.set_column(
        shifted.schema.get_field_index("ward"), "ward", pa.array(["icu"] * 400)
    )
    new_path = _write(tmp_path / "shifted.parquet", shifted)
    new = profile_parquet(new_path, ROLES, reference=old)
    comparison = compare_profiles(old, new)
    heart = comparison["columns"]["heart_rate"]
    assert heart["basis"] == "reference_bins"
    assert heart["verdict"] == "significant" and heart["psi"] >= 0.2
    assert heart["mean_shift_std"] == pytest.approx(15 / 12, abs=0.3)
    assert heart["js_distance"] > 0.2 and heart["chi_square_p"] < 1e-6
    ward = comparison["columns"]["ward"]
    assert ward["basis"] == "categories" and ward["verdict"] == "significant"
    assert set(comparison["summary"]["significant"]) >= {"heart_rate", "ward"}


def test_another_sample_of_the_same_distribution_is_not_a_shift(tmp_path: Path) -> None:
    old = profile_parquet(_write(tmp_path / "v1.parquet", _vitals(n=3000, seed=1)), ROLES)
    for seed in (2, 3, 4):
        path = _write(tmp_path / f"v{seed}.parquet", _vitals(n=3000, seed=seed))
        columns = compare_profiles(old, profile_parquet(path, ROLES, reference=old))["columns"]
        for name in ("heart_rate", "lactate", "ward", "sex", "on_oxygen", "outcome"):
            assert columns[name]["verdict"] == "none", (seed, name, columns[name])


def test_small_versions_that_differ_by_chance_are_not_called_shifted(tmp_path: Path) -> None:
    old = profile_parquet(_write(tmp_path / "a.parquet", _vitals(n=60, seed=1)), ROLES)
    new_path = _write(tmp_path / "b.parquet", _vitals(n=60, seed=2))
    entry = compare_profiles(old, profile_parquet(new_path, ROLES, reference=old))["columns"][
        "heart_rate"
    ]
    assert entry["psi"] >= 0.2  # PSI alone would call it significant
    assert entry["chi_square_p"] >= 0.05 and entry["verdict"] == "none"


def test_comparison_reports_schema_changes(vitals: Path, tmp_path: Path) -> None:
    old = profile_parquet(vitals, ROLES)
    table = _vitals().drop_columns(["sex"]).append_column("spo2", pa.array([97.0] * 400))
    table = table.set_column(
        table.schema.get_field_index("heart_rate"),
        "heart_rate",
        table["heart_rate"].cast(pa.float64()),
    )
    roles = {k: v for k, v in ROLES.items() if k != "sex"}
    new = profile_parquet(_write(tmp_path / "v2.parquet", table), roles, reference=old)
    columns = compare_profiles(old, new)["columns"]
    assert columns["sex"] == {"in_old": True, "in_new": False, "verdict": "removed"}
    assert columns["spo2"]["verdict"] == "added"
    assert columns["heart_rate"]["verdict"] == "type_changed"
    assert columns["heart_rate"]["psi"] == pytest.approx(0.0)


def test_without_reference_counts_distributions_over_other_edges_are_not_compared(
    vitals: Path, tmp_path: Path
) -> None:
    old = profile_parquet(vitals, ROLES)
    other = profile_parquet(_write(tmp_path / "v2.parquet", _vitals(seed=2, shift=30)), ROLES)
    entry = compare_profiles(old, other)["columns"]["heart_rate"]
    assert entry["psi"] is None and entry["verdict"] == "not_compared"


@settings(suppress_health_check=[HealthCheck.too_slow], max_examples=60)
@given(st.lists(st.one_of(st.none(), st.text(max_size=80)), min_size=1, max_size=40))
def test_value_hashes_are_equal_exactly_for_equal_values(values: list[str | None]) -> None:
    hashes = value_hashes(pa.array(values, type=pa.string())).tolist()
    # The same strings hashed within another array (other offsets, lengths) hash the same.
    padded = pa.array(["x" * 100, *values], type=pa.string()).slice(1)
    assert value_hashes(padded).tolist() == hashes
    for i, a in enumerate(values):
        for j, b in enumerate(values):
            assert (hashes[i] == hashes[j]) == (a == b)


def test_value_hashes_of_numbers_treat_signed_zero_and_nan_as_equal() -> None:
    hashes = value_hashes(pa.array([0.0, -0.0, math.nan, float("nan"), 1.0, None, None]))
    assert hashes[0] == hashes[1] and hashes[2] == hashes[3] and hashes[5] == hashes[6]
    assert len({hashes[0], hashes[2], hashes[4], hashes[5]}) == 4
    ints = value_hashes(pa.array([1, 2, 1, None], type=pa.int64()))
    assert ints[0] == ints[2] != ints[1]
    days = value_hashes(pa.array([dt.date(2024, 1, 1), dt.date(2024, 1, 1), dt.date(2024, 1, 2)]))
    assert days[0] == days[1] != days[2]


def _profile_of(values: list[Any], tmp_path: Path) -> dict[str, Any]:
    path = _write(tmp_path / "one.parquet", pa.table({"x": values}))
    result: dict[str, Any] = profile_parquet(path, {})["columns"]["x"]
    return result


def test_a_constant_float_column_gets_a_bin_of_its_own(tmp_path: Path) -> None:
    col = _profile_of([2.5] * 10, tmp_path)
    assert col["histogram"]["edges"][0] == 2.5
    assert col["histogram"]["counts"] == [0, 10, 0]
    assert count_into_bins(col["histogram"]["edges"], [2.4, 2.5, 2.6]) == [1, 1, 1]


def test_an_all_null_column_is_profiled_without_statistics(tmp_path: Path) -> None:
    col = _profile_of(pa.array([None, None], type=pa.float64()), tmp_path)
    assert col["null_count"] == 2 and col["distinct"] == 0
    assert col["min"] is None and col["histogram"] is None
