"""Metrics agree with scikit-learn and fairlearn, the references users trust."""

from __future__ import annotations

import math

import numpy as np
import pytest
from fairlearn.metrics import MetricFrame, selection_rate
from fairlearn.metrics import demographic_parity_difference as fl_dpd
from hypothesis import given, settings
from hypothesis import strategies as st

from farpoint.core.errors import ValidationFailed
from farpoint.ml.metrics import classification_metrics, demographic_parity_difference, group_metrics

binary = st.integers(min_value=0, max_value=1)


@st.composite
def predictions_by_group(draw: st.DrawFn) -> tuple[list[int], list[int], list[str]]:
    n = draw(st.integers(min_value=1, max_value=60))
    y_true = draw(st.lists(binary, min_size=n, max_size=n))
    y_pred = draw(st.lists(binary, min_size=n, max_size=n))
    groups = draw(st.lists(st.sampled_from(["F", "M", "X"]), min_size=n, max_size=n))
    return y_true, y_pred, groups


@settings(max_examples=60, deadline=None)
@given(predictions_by_group())
def test_demographic_parity_difference_matches_fairlearn(data: tuple) -> None:
    y_true, y_pred, groups = data
    expected = fl_dpd(y_true, y_pred, sensitive_features=groups)
    assert demographic_parity_difference(y_pred, groups) == pytest.approx(expected, abs=1e-12)


@settings(max_examples=60, deadline=None)
@given(predictions_by_group())
def test_group_selection_rates_and_accuracy_match_fairlearn(data: tuple) -> None:
    y_true, y_pred, groups = data
    frame = MetricFrame(
        metrics={"selection_rate": selection_rate},
        y_true=y_true,
        y_pred=y_pred,
        sensitive_features=groups,
    )
    ours = group_metrics(y_true, y_pred, groups)
    assert set(ours) == {str(g) for g in frame.by_group.index}
    for group, row in frame.by_group.iterrows():
        assert ours[str(group)]["selection_rate"] == pytest.approx(row["selection_rate"])
        assert ours[str(group)]["count"] == groups.count(group)


def test_group_rates_on_a_worked_example() -> None:
    y_true = [1, 1, 0, 0, 1, 0]
    y_pred = [1, 0, 1, 0, 1, 1]
    groups = ["F", "F", "F", "F", "M", "M"]
    f, m = group_metrics(y_true, y_pred, groups).values()
    assert f == {
        "count": 4.0,
        "selection_rate": 0.5,
        "accuracy": 0.5,
        "true_positive_rate": 0.5,
        "false_positive_rate": 0.5,
    }
    assert m["true_positive_rate"] == 1.0 and m["false_positive_rate"] == 1.0


def test_classification_metrics_match_sklearn() -> None:
    from sklearn.metrics import f1_score, precision_score, recall_score, roc_auc_score

    rng = np.random.default_rng(3)
    y_true = rng.integers(0, 2, 200)
    score = np.clip(y_true * 0.3 + rng.random(200) * 0.7, 0, 1)
    y_pred = (score >= 0.5).astype(int)
    got = classification_metrics(y_true, y_pred, score)
    assert got["roc_auc"] == pytest.approx(roc_auc_score(y_true, score))
    assert got["precision"] == pytest.approx(precision_score(y_true, y_pred))
    assert got["recall"] == pytest.approx(recall_score(y_true, y_pred))
    assert got["f1"] == pytest.approx(f1_score(y_true, y_pred))
    assert got["accuracy"] == pytest.approx(float((y_true == y_pred).mean()))
    assert not any(math.isnan(v) for v in got.values())


def test_single_class_truth_is_rejected_rather_than_nan() -> None:
    with pytest.raises(ValidationFailed, match="both classes"):
        classification_metrics([1, 1, 1], [1, 0, 1], [0.9, 0.2, 0.8])


def test_mismatched_lengths_are_rejected() -> None:
    with pytest.raises(ValidationFailed, match="different lengths"):
        demographic_parity_difference([1, 0, 1], ["F", "M"])
