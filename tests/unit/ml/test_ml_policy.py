"""Policy YAML: valid files normalize, invalid ones say exactly what is wrong."""

from __future__ import annotations

import pytest

from farpoint.core.errors import ValidationFailed
from farpoint.core.gates import check_gates
from farpoint.ml.policy import DEFAULT_POLICY_YAML, parse_policy


def test_default_policy_normalizes_with_readable_names() -> None:
    gates = parse_policy(DEFAULT_POLICY_YAML)["gates"]
    assert [g["name"] for g in gates] == [
        "roc_auc >= 0.75",
        "recall >= 0.5",
        "demographic_parity_difference[sex] <= 0.1",
    ]
    assert gates[2] == {
        "name": "demographic_parity_difference[sex] <= 0.1",
        "metric": "demographic_parity_difference",
        "attribute": "sex",
        "min": None,
        "max": 0.1,
    }


def test_custom_name_and_integer_threshold_are_kept() -> None:
    gates = parse_policy("gates:\n  - metric: accuracy\n    min: 1\n    name: perfect\n")["gates"]
    assert gates == [
        {"name": "perfect", "metric": "accuracy", "attribute": None, "min": 1.0, "max": None}
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "gates:\n  - metric: roc_auc\n    min: 0.7\n    maxx: 1\n",
            r"unknown key 'maxx' .*line 4",
        ),
        ("gates:\n  - metric: auc\n    min: 0.7\n", r"unknown metric 'auc' .*line 2"),
        ("gates:\n  - metric: roc_auc\n    min: 0.7\n    max: 0.9\n", "exactly one of"),
        ("gates:\n  - metric: roc_auc\n", "exactly one of"),
        ("gates:\n  - metric: demographic_parity_difference\n    max: 0.1\n", "needs 'attribute'"),
        ("gates:\n  - metric: f1\n    attribute: sex\n    min: 0.5\n", "only to fairness"),
        ("gates:\n  - metric: f1\n    min: high\n", "finite number"),
        ("gates: []\n", "non-empty list"),
        ("rules:\n  - metric: f1\n", r"unknown policy key 'rules' \(line 1\)"),
        ("gates: [\n", "not valid YAML"),
        ("- 1\n", "mapping"),
    ],
)
def test_invalid_policies_name_the_problem(text: str, message: str) -> None:
    with pytest.raises(ValidationFailed, match=message):
        parse_policy(text)


def test_default_policy_passes_the_unbiased_vitals_model_and_fails_the_biased_one() -> None:
    from farpoint.examples import vitals
    from farpoint.ml.metrics import classification_metrics, demographic_parity_difference

    gates = parse_policy(DEFAULT_POLICY_YAML)["gates"]
    verdicts = {}
    for bias in (0.0, 0.8):
        train, holdout = vitals.split(vitals.generate(n_rows=8000, sex_bias=bias))
        model = vitals.train_model(train)
        x = holdout[vitals.FEATURES]
        pred, score = model.predict(x), model.predict_proba(x)[:, 1]
        metrics = classification_metrics(holdout[vitals.LABEL], pred, score)
        metrics["demographic_parity_difference[sex]"] = demographic_parity_difference(
            pred, holdout["sex"]
        )
        verdicts[bias] = {r["name"]: r["passed"] for r in check_gates(gates, metrics)}
        if bias == 0.0:
            assert metrics["recall"] >= 0.6  # the recall gate has margin
    assert all(verdicts[0.0].values())
    assert verdicts[0.8]["demographic_parity_difference[sex] <= 0.1"] is False
