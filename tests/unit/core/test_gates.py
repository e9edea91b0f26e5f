"""Gates turn metrics into pass/fail verdicts a reviewer can read."""

from __future__ import annotations

import math

from farpoint.core.gates import check_gates, metric_key

AUC_MIN = {
    "name": "roc_auc >= 0.75",
    "metric": "roc_auc",
    "attribute": None,
    "min": 0.75,
    "max": None,
}
DPD_MAX = {
    "name": "demographic_parity_difference[sex] <= 0.1",
    "metric": "demographic_parity_difference",
    "attribute": "sex",
    "min": None,
    "max": 0.1,
}


def test_metric_key_names_the_attribute_only_for_fairness_metrics() -> None:
    assert metric_key("roc_auc", None) == "roc_auc"
    assert (
        metric_key("demographic_parity_difference", "sex") == "demographic_parity_difference[sex]"
    )


def test_passing_and_failing_gates_explain_themselves() -> None:
    results = check_gates(
        [AUC_MIN, DPD_MAX], {"roc_auc": 0.83, "demographic_parity_difference[sex]": 0.19}
    )
    auc, dpd = results
    assert auc == {
        "name": "roc_auc >= 0.75",
        "metric": "roc_auc",
        "op": ">=",
        "threshold": 0.75,
        "value": 0.83,
        "passed": True,
        "reason": "roc_auc 0.83 >= 0.75",
    }
    assert dpd["op"] == "<=" and dpd["passed"] is False
    assert dpd["reason"] == "demographic_parity_difference[sex] 0.19 exceeds the maximum 0.1"


def test_thresholds_are_inclusive_and_below_minimum_fails() -> None:
    assert check_gates([AUC_MIN], {"roc_auc": 0.75})[0]["passed"] is True
    low = check_gates([AUC_MIN], {"roc_auc": 0.7})[0]
    assert low["passed"] is False and "below the minimum 0.75" in low["reason"]
    assert check_gates([DPD_MAX], {"demographic_parity_difference[sex]": 0.1})[0]["passed"]


def test_missing_or_nan_metric_fails_its_gate() -> None:
    missing = check_gates([DPD_MAX], {"roc_auc": 0.9})[0]
    assert missing["passed"] is False and missing["value"] is None
    assert missing["reason"] == "metric demographic_parity_difference[sex] was not computed"
    nan = check_gates([AUC_MIN], {"roc_auc": math.nan})[0]
    assert nan["passed"] is False and nan["value"] is None and "NaN" in nan["reason"]


def test_default_name_when_gate_has_none() -> None:
    gate = {**AUC_MIN, "name": None}
    assert check_gates([gate], {"roc_auc": 0.8})[0]["name"] == "roc_auc >= 0.75"
