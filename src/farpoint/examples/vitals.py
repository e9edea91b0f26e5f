"""Bedside vitals: will a ward patient deteriorate within 12 hours? (the demo scenario).

Synthetic, seeded and fast. The true risk depends on how far a patient's vitals stray
from the norm for their sex; women's norms differ a little (higher resting heart rate and
core temperature and, in this older inpatient population, higher systolic pressure).
A model that never sees `sex` can still infer it from those baselines and from the ward,
which is exactly how a historical labelling bias (`sex_bias`) leaks into its predictions.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from sklearn.pipeline import Pipeline

__all__ = [
    "CATEGORICAL_FEATURES",
    "COLUMN_ROLES",
    "FEATURES",
    "LABEL",
    "NUMERIC_FEATURES",
    "PII",
    "PROTECTED",
    "SENSOR_FEATURES",
    "WARDS",
    "generate",
    "split",
    "train_model",
]

WARDS: tuple[str, ...] = ("cardiology", "oncology", "respiratory", "surgical", "general")
NUMERIC_FEATURES = ["heart_rate", "resp_rate", "spo2", "temperature", "systolic_bp", "age"]
CATEGORICAL_FEATURES = ["ward"]
FEATURES = NUMERIC_FEATURES + CATEGORICAL_FEATURES
LABEL = "deteriorated"
PROTECTED = ["sex"]
PII = ["patient_name", "mrn"]
SENSOR_FEATURES = ["heart_rate", "resp_rate", "spo2", "temperature", "systolic_bp"]
"""The readings a bedside sensor takes: the ones `ward_offsets` may shift."""

COLUMN_ROLES: dict[str, str] = {
    "patient_name": "pii",
    "mrn": "pii",
    "age": "feature",
    "sex": "protected",
    "ward": "feature",
    "heart_rate": "feature",
    "resp_rate": "feature",
    "spo2": "feature",
    "temperature": "feature",
    "systolic_bp": "feature",
    LABEL: "label",
}

_MAX_ROWS = 1_000_000  # MRNs are 7 digits; stay far below the space so they stay unique

_FIRST_F = (
    "Alice", "Amara", "Beatriz", "Chloe", "Dana", "Elena", "Fatima", "Grace", "Hana", "Ines",
    "Julia", "Keiko", "Laura", "Maya", "Nadia", "Olga", "Priya", "Rosa", "Sofia", "Zoe",
)  # fmt: skip
_FIRST_M = (
    "Adam", "Bruno", "Carlos", "David", "Emil", "Farid", "George", "Hiro", "Ivan", "James",
    "Kofi", "Liam", "Mateo", "Noah", "Omar", "Pavel", "Rahul", "Samuel", "Tomas", "Yusuf",
)  # fmt: skip
_LAST = (
    "Andersen", "Baker", "Chen", "Dubois", "Evans", "Fischer", "Garcia", "Haddad", "Ito",
    "Jensen", "Kowalski", "Lopez", "Mensah", "Novak", "Okafor", "Patel", "Rossi", "Silva",
    "Tanaka", "Walker",
)  # fmt: skip

# Ward mix by sex: cardiology admits more men, oncology more women (breast, gynaecology).
_WARD_P_MALE = np.array([0.30, 0.12, 0.16, 0.20, 0.22])
_WARD_P_FEMALE = np.array([0.12, 0.30, 0.16, 0.20, 0.22])
_WARD_RISK = np.array([0.3, 0.4, 0.3, 0.0, -0.3])  # log-odds added per ward

# Norms for men, and how women's differ: (male norm, female shift, severity loading).
_VITALS = {
    "heart_rate": (76.0, 6.0, 10.0),
    "resp_rate": (16.0, 0.0, 2.5),
    "spo2": (97.0, 0.0, -1.8),
    "temperature": (36.9, 0.3, 0.45),
    "systolic_bp": (128.0, 7.0, -9.0),
}
# Variation unrelated to illness, per vital (a fraction of what a real ward shows, so the
# latent severity, not noise, drives the readings).
_NOISE = {
    "heart_rate": 1.4,
    "resp_rate": 0.35,
    "spo2": 0.2,
    "temperature": 0.06,
    "systolic_bp": 2.5,
}
# Log-odds of deterioration per unit of deviation from the patient's own sex norm.
_RISK_WEIGHT = {
    "heart_rate": 0.06,
    "resp_rate": 0.33,
    "spo2": -0.45,
    "temperature": 1.2,
    "systolic_bp": -0.03,
}
_RISK_INTERCEPT = -3.0
_RISK_PER_AGE_YEAR = 0.03


def _check_args(
    n_rows: int,
    seed: int,
    sex_bias: float,
    ward_offsets: Mapping[str, Mapping[str, float]] | None,
) -> None:
    if isinstance(n_rows, bool) or not isinstance(n_rows, int) or not 1 <= n_rows <= _MAX_ROWS:
        raise ValueError(f"n_rows must be an integer from 1 to {_MAX_ROWS}, got {n_rows!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    if isinstance(sex_bias, bool) or not isinstance(sex_bias, int | float):
        raise ValueError(f"sex_bias must be a number from 0 to 1, got {sex_bias!r}")
    if not 0.0 <= sex_bias <= 1.0:  # also rejects NaN
        raise ValueError(f"sex_bias must be from 0 to 1, got {sex_bias!r}")
    for ward, offsets in (ward_offsets or {}).items():
        if ward not in WARDS:
            raise ValueError(f"unknown ward {ward!r} in ward_offsets; wards are {list(WARDS)}")
        for feature, offset in offsets.items():
            if feature not in SENSOR_FEATURES:
                raise ValueError(
                    f"ward_offsets[{ward!r}] names {feature!r}; only sensor readings can be "
                    f"offset: {SENSOR_FEATURES}"
                )
            if (
                isinstance(offset, bool)
                or not isinstance(offset, int | float)
                or not math.isfinite(offset)
            ):
                raise ValueError(
                    f"ward_offsets[{ward!r}][{feature!r}] must be a finite number, got {offset!r}"
                )


def generate(
    n_rows: int = 20_000,
    seed: int = 7,
    sex_bias: float = 0.0,
    ward_offsets: Mapping[str, Mapping[str, float]] | None = None,
) -> pd.DataFrame:
    """Synthetic ward patients with vitals and a recorded deterioration label.

    `sex_bias` is the fraction of true deteriorations among women recorded as 0;
    `ward_offsets` adds `{feature: offset}` to the sensor readings of a ward (drift).
    The same arguments always give the same frame.
    """
    _check_args(n_rows, seed, sex_bias, ward_offsets)
    rng = np.random.default_rng(seed)
    n = n_rows

    female = rng.random(n) < 0.5
    is_f = female.astype(np.float64)
    u = rng.random(n)
    ward_idx = np.where(
        female,
        np.searchsorted(np.cumsum(_WARD_P_FEMALE), u, side="right"),
        np.searchsorted(np.cumsum(_WARD_P_MALE), u, side="right"),
    )
    ward_idx = np.minimum(ward_idx, len(WARDS) - 1)  # guards float round-off at the top end
    age = np.clip(np.rint(rng.normal(62.0 + 3.0 * is_f, 15.0)), 18, 99).astype(np.int64)
    severity = rng.normal(0.0, 1.0, n)

    vitals: dict[str, np.ndarray] = {}
    logit = _RISK_INTERCEPT + _RISK_PER_AGE_YEAR * (age - 60) + _WARD_RISK[ward_idx]
    for name, (norm, female_shift, loading) in _VITALS.items():
        deviation = loading * severity + rng.normal(0.0, _NOISE[name], n)
        vitals[name] = norm + female_shift * is_f + deviation
        logit = logit + _RISK_WEIGHT[name] * deviation
    truly_deteriorated = rng.random(n) < 1.0 / (1.0 + np.exp(-logit))
    # The bias hides some women's deteriorations from the record, never the reverse.
    hidden = female & (rng.random(n) < sex_bias)
    recorded = truly_deteriorated & ~hidden

    # Sensor offsets change the readings, not the patients: labels stay as they were.
    wards = np.asarray(WARDS, dtype=object)[ward_idx]
    for ward, offsets in (ward_offsets or {}).items():
        in_ward = wards == ward
        for feature, offset in offsets.items():
            vitals[feature] = vitals[feature] + np.where(in_ward, float(offset), 0.0)
    vitals["spo2"] = np.minimum(vitals["spo2"], 100.0)

    first = np.where(
        female,
        np.asarray(_FIRST_F, dtype=object)[rng.integers(0, len(_FIRST_F), n)],
        np.asarray(_FIRST_M, dtype=object)[rng.integers(0, len(_FIRST_M), n)],
    )
    last = np.asarray(_LAST, dtype=object)[rng.integers(0, len(_LAST), n)]
    mrn_numbers = rng.choice(9_000_000, size=n, replace=False) + 1_000_000

    frame = {
        "patient_name": first + " " + last,
        "mrn": [f"MRN-{m:07d}" for m in mrn_numbers.tolist()],
        "age": age,
        "sex": np.where(female, "F", "M").astype(object),
        "ward": wards,
    }
    frame.update({name: np.round(vitals[name], 1) for name in SENSOR_FEATURES})
    frame[LABEL] = recorded.astype(np.int64)
    df = pd.DataFrame(frame)
    for column in ("patient_name", "mrn", "sex", "ward"):
        df[column] = df[column].astype("str")
    return df


def split(
    df: pd.DataFrame, holdout_fraction: float = 0.2, seed: int = 7
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A deterministic (train, holdout) split; both keep the original column order."""
    if isinstance(holdout_fraction, bool) or not isinstance(holdout_fraction, int | float):
        raise ValueError(f"holdout_fraction must be a number, got {holdout_fraction!r}")
    if not 0.0 < holdout_fraction < 1.0:
        raise ValueError(
            f"holdout_fraction must be strictly between 0 and 1, got {holdout_fraction!r}"
        )
    n_holdout = round(len(df) * holdout_fraction)
    if n_holdout < 1 or n_holdout >= len(df):
        raise ValueError(
            f"cannot hold out {holdout_fraction!r} of {len(df)} rows and keep both parts non-empty"
        )
    order = np.random.default_rng(seed).permutation(len(df))
    holdout_rows = np.sort(order[:n_holdout])
    train_rows = np.sort(order[n_holdout:])
    train = df.iloc[train_rows].reset_index(drop=True)
    holdout = df.iloc[holdout_rows].reset_index(drop=True)
    return train, holdout


def train_model(train: pd.DataFrame, seed: int = 7) -> Pipeline:
    """Fit the demo's logistic regression on FEATURES only (never sex, name or MRN)."""
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    missing = [c for c in [*FEATURES, LABEL] if c not in train.columns]
    if missing:
        raise ValueError(f"training frame lacks columns {missing}")
    if train[LABEL].nunique() < 2:
        raise ValueError(f"training frame needs both classes of {LABEL!r} to fit a classifier")
    model = Pipeline(
        [
            (
                "preprocess",
                ColumnTransformer(
                    [
                        ("numeric", StandardScaler(), NUMERIC_FEATURES),
                        ("ward", OneHotEncoder(handle_unknown="ignore"), CATEGORICAL_FEATURES),
                    ]
                ),
            ),
            ("classifier", LogisticRegression(max_iter=1000, random_state=seed)),
        ]
    )
    model.fit(train[FEATURES], train[LABEL])
    return model
