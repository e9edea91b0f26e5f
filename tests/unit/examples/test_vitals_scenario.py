"""The demo scenario: plausible, reproducible data where a labelling bias shows up as unfairness."""

from __future__ import annotations

import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from farpoint.examples import vitals
from farpoint.ml.metrics import demographic_parity_difference
from farpoint.wire.common import ColumnRole


@pytest.fixture(scope="module")
def unbiased() -> pd.DataFrame:
    return vitals.generate()


def test_columns_roles_and_types(unbiased: pd.DataFrame) -> None:
    assert list(unbiased.columns) == list(vitals.COLUMN_ROLES)
    assert set(vitals.COLUMN_ROLES.values()) <= {r.value for r in ColumnRole}
    assert {c for c, r in vitals.COLUMN_ROLES.items() if r == "pii"} == set(vitals.PII)
    assert [c for c, r in vitals.COLUMN_ROLES.items() if r == "label"] == [vitals.LABEL]
    assert len(unbiased) == 20_000
    assert unbiased["mrn"].is_unique
    assert unbiased["mrn"].str.fullmatch(r"MRN-\d{7}").all()
    assert unbiased["patient_name"].str.fullmatch(r"[A-Z][a-z]+ [A-Z][a-z]+").all()
    assert set(unbiased["sex"]) == {"F", "M"}
    assert set(unbiased["ward"]) == set(vitals.WARDS)
    assert set(unbiased[vitals.LABEL]) == {0, 1}
    assert 0.10 <= unbiased[vitals.LABEL].mean() <= 0.25


def test_vitals_are_physiologically_plausible(unbiased: pd.DataFrame) -> None:
    bounds = {
        "heart_rate": (30, 200),
        "resp_rate": (4, 50),
        "spo2": (70, 100),
        "temperature": (33, 42),
        "systolic_bp": (60, 250),
        "age": (18, 110),
    }
    for column, (low, high) in bounds.items():
        assert unbiased[column].between(low, high).all(), column
    assert (unbiased["temperature"] * 10).round(6).mod(1).eq(0).all()  # one decimal


def test_same_arguments_same_frame_and_seed_matters(unbiased: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(vitals.generate(), unbiased)
    assert not vitals.generate(n_rows=100, seed=8).equals(vitals.generate(n_rows=100, seed=7))


def test_unbiased_labels_give_an_accurate_fair_model(unbiased: pd.DataFrame) -> None:
    train, holdout = vitals.split(unbiased)
    model = vitals.train_model(train)
    x = holdout[vitals.FEATURES]
    assert roc_auc_score(holdout[vitals.LABEL], model.predict_proba(x)[:, 1]) >= 0.75
    assert demographic_parity_difference(model.predict(x), holdout["sex"]) < 0.1


def test_biased_labels_leak_into_predictions_through_proxies() -> None:
    df = vitals.generate(sex_bias=0.8)
    women = df["sex"] == "F"
    assert df.loc[women, vitals.LABEL].mean() < 0.5 * df.loc[~women, vitals.LABEL].mean()
    train, holdout = vitals.split(df)
    model = vitals.train_model(train)
    assert not {"sex", "patient_name", "mrn"} & set(model.feature_names_in_)
    assert (
        demographic_parity_difference(model.predict(holdout[vitals.FEATURES]), holdout["sex"]) > 0.1
    )


def test_ward_offsets_shift_only_that_wards_readings() -> None:
    base = vitals.generate(n_rows=2000)
    drifted = vitals.generate(n_rows=2000, ward_offsets={"oncology": {"heart_rate": 15.0}})
    onc = base["ward"] == "oncology"
    diff = drifted["heart_rate"] - base["heart_rate"]
    assert diff[onc].round(6).eq(15.0).all()
    assert diff[~onc].eq(0).all()
    pd.testing.assert_series_equal(drifted[vitals.LABEL], base[vitals.LABEL])


def test_split_is_deterministic_disjoint_and_complete(unbiased: pd.DataFrame) -> None:
    train, holdout = vitals.split(unbiased)
    again, _ = vitals.split(unbiased)
    pd.testing.assert_frame_equal(train, again)
    assert len(holdout) == 4000 and len(train) == 16_000
    assert set(train["mrn"]).isdisjoint(holdout["mrn"])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_rows": 0}, "n_rows"),
        ({"n_rows": 2.5}, "n_rows"),
        ({"seed": -1}, "seed"),
        ({"sex_bias": 1.5}, "sex_bias"),
        ({"sex_bias": float("nan")}, "sex_bias"),
        ({"ward_offsets": {"icu": {"spo2": 1.0}}}, "unknown ward 'icu'"),
        ({"ward_offsets": {"oncology": {"age": 1.0}}}, "only sensor readings"),
        ({"ward_offsets": {"oncology": {"spo2": float("inf")}}}, "finite"),
    ],
)
def test_bad_arguments_are_explained(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        vitals.generate(**kwargs)


def test_split_and_training_reject_unusable_input(unbiased: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="holdout_fraction"):
        vitals.split(unbiased, holdout_fraction=1.0)
    with pytest.raises(ValueError, match="both classes"):
        vitals.train_model(unbiased[unbiased[vitals.LABEL] == 0])
    with pytest.raises(ValueError, match="lacks columns"):
        vitals.train_model(unbiased.drop(columns=["ward"]))
