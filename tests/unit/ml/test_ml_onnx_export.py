"""ONNX conversion: the exported graph scores exactly like the scikit-learn model."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from farpoint.core.errors import ValidationFailed
from farpoint.examples import vitals
from farpoint.ml.onnx_export import ConvertedModel, ParityError, check_parity, convert_sklearn
from farpoint.ml.scoring import predict
from farpoint.wire.models import GoldenVectors, Signature


@pytest.fixture(scope="module")
def data() -> tuple[pd.DataFrame, pd.DataFrame]:
    return vitals.split(vitals.generate(n_rows=6000))


@pytest.fixture(scope="module")
def model(data):  # type: ignore[no-untyped-def]
    return vitals.train_model(data[0])


@pytest.fixture(scope="module")
def converted(model, data) -> ConvertedModel:  # type: ignore[no-untyped-def]
    return convert_sklearn(model, data[1], vitals.FEATURES)


def test_vitals_pipeline_converts_with_parity(converted: ConvertedModel) -> None:
    assert converted.parity["rows_checked"] == 1000
    assert converted.parity["max_abs_prob_diff"] <= 1e-5
    assert converted.classes == [0, 1]
    assert converted.feature_columns == vitals.FEATURES


def test_signature_has_one_input_per_feature_and_plain_outputs(converted: ConvertedModel) -> None:
    sig = Signature.model_validate(converted.signature)
    assert [(i.name, i.dtype, i.shape) for i in sig.inputs] == [
        *[(c, "float32", [None, 1]) for c in vitals.NUMERIC_FEATURES],
        ("ward", "string", [None, 1]),
    ]
    assert [o.name for o in sig.outputs] == ["label", "probabilities"]
    assert sig.outputs[1].dtype == "float32" and sig.outputs[1].shape == [None, 2]


def test_golden_vectors_are_json_and_reproduce_on_onnx_runtime(converted: ConvertedModel) -> None:
    golden = GoldenVectors.model_validate(json.loads(json.dumps(converted.golden)))
    assert len(golden.rows) == 8
    assert set(golden.rows[0]) == set(vitals.FEATURES)
    labels, probs = predict(
        converted.onnx_bytes, pd.DataFrame(golden.rows), converted.signature["inputs"]
    )
    assert labels.tolist() == golden.labels
    np.testing.assert_allclose(probs, golden.probabilities, atol=1e-7)


def test_onnx_scores_match_sklearn_on_unseen_wards(converted: ConvertedModel, model, data) -> None:  # type: ignore[no-untyped-def]
    rows = data[1].head(50).assign(ward="maternity")  # unknown category: encoder ignores it
    _, probs = predict(converted.onnx_bytes, rows, converted.signature["inputs"])
    x = rows[vitals.FEATURES].astype({c: "float32" for c in vitals.NUMERIC_FEATURES})
    np.testing.assert_allclose(probs, model.predict_proba(x), atol=1e-5)


def test_graph_of_a_different_model_fails_parity_and_shows_rows(converted, data) -> None:  # type: ignore[no-untyped-def]
    biased_train, _ = vitals.split(vitals.generate(n_rows=6000, sex_bias=0.9, seed=3))
    other = vitals.train_model(biased_train)
    with pytest.raises(ParityError) as info:
        check_parity(other, converted.onnx_bytes, data[1], vitals.FEATURES)
    message = str(info.value)
    assert "does not reproduce scikit-learn" in message
    assert "sklearn prob" in message and "onnx prob" in message and "row " in message
    assert isinstance(info.value, ValidationFailed) and info.value.status == 422


def test_missing_feature_column_is_reported(model, data) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValidationFailed, match=r"lacks feature columns \['ward'\]"):
        convert_sklearn(model, data[1].drop(columns=["ward"]), vitals.FEATURES)
    with pytest.raises(ValidationFailed, match=r"input columns \['ward'\]"):
        predict(
            convert_sklearn(model, data[1].head(20), vitals.FEATURES, n_golden=2).onnx_bytes,
            data[1].drop(columns=["ward"]),
            [{"name": "ward", "dtype": "string", "shape": [None, 1]}],
        )


def test_garbage_onnx_bytes_are_a_validation_error(data) -> None:  # type: ignore[no-untyped-def]
    inputs = [{"name": "age", "dtype": "float32", "shape": [None, 1]}]
    with pytest.raises(ValidationFailed, match="cannot load"):
        predict(b"not an onnx model", data[1], inputs)
