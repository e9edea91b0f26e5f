"""Client-side conversion of scikit-learn models to ONNX, proven by a parity check."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from farpoint.core.errors import ValidationFailed
from farpoint.ml.scoring import onnx_feed, predict

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

__all__ = [
    "PROB_TOLERANCE",
    "TARGET_OPSET",
    "THRESHOLD_TOLERANCE",
    "ConvertedModel",
    "ParityError",
    "check_parity",
    "convert_sklearn",
    "onnx_feed",
]

# Opset 21 is the newest that onnxruntime 1.20 (our oldest supported runtime, i.e. the
# oldest a device may run) executes; skl2onnx needs ai.onnx.ml 3 for its encoders.
TARGET_OPSET = {"": 21, "ai.onnx.ml": 3}
PROB_TOLERANCE = 1e-5
THRESHOLD_TOLERANCE = 1e-6
_WORST_ROWS = 5

_ONNX_DTYPES = {1: "float32", 11: "float64", 7: "int64", 6: "int32", 8: "string", 9: "bool"}


class ParityError(ValidationFailed):
    """ONNX Runtime and scikit-learn disagree on the same inputs."""


@dataclass(frozen=True)
class ConvertedModel:
    """An ONNX model with its signature, golden vectors and parity figures."""

    onnx_bytes: bytes
    signature: dict[str, Any]
    classes: list[Any]
    golden: dict[str, Any]
    parity: dict[str, Any]
    feature_columns: list[str]


def _plain(value: Any) -> Any:
    """A numpy scalar as the Python value JSON understands."""
    return value.item() if hasattr(value, "item") else value


def _is_numeric(series: pd.Series) -> bool:
    import pandas as pd

    return bool(pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series))


def _input_specs(sample: pd.DataFrame, feature_columns: list[str]) -> list[dict[str, Any]]:
    return [
        {
            "name": column,
            "dtype": "float32" if _is_numeric(sample[column]) else "string",
            "shape": [None, 1],
        }
        for column in feature_columns
    ]


def _signature_of(onnx_bytes: bytes) -> dict[str, Any]:
    import onnx

    graph = onnx.load_from_string(onnx_bytes).graph

    def spec(value_info: Any) -> dict[str, Any]:
        tensor = value_info.type.tensor_type
        dtype = _ONNX_DTYPES.get(tensor.elem_type)
        if dtype is None:
            raise ValidationFailed(
                f"ONNX tensor {value_info.name!r} has element type {tensor.elem_type}, "
                "which a Farpoint signature cannot describe"
            )
        shape = [d.dim_value if d.HasField("dim_value") else None for d in tensor.shape.dim]
        return {"name": value_info.name, "dtype": dtype, "shape": shape}

    return {
        "inputs": [spec(v) for v in graph.input],
        "outputs": [spec(v) for v in graph.output],
    }


def _check_sample(sample: pd.DataFrame, feature_columns: list[str]) -> None:
    if not feature_columns:
        raise ValidationFailed("feature_columns is empty: name the columns the model reads")
    missing = [c for c in feature_columns if c not in sample.columns]
    if missing:
        raise ValidationFailed(f"the sample lacks feature columns {missing}")
    if len(sample) == 0:
        raise ValidationFailed("the sample has no rows to check the conversion on")


def _float32_view(
    sample: pd.DataFrame, inputs: list[dict[str, Any]], feature_columns: list[str]
) -> pd.DataFrame:
    """The sample as the ONNX graph sees it: numeric inputs rounded to float32."""
    frame = sample[feature_columns].copy()
    for spec in inputs:
        if spec["dtype"] == "float32" and spec["name"] in frame.columns:
            frame[spec["name"]] = frame[spec["name"]].astype("float32")
    return frame


def _worst_rows_message(
    index: list[Any],
    rows: np.ndarray,
    sk_prob: np.ndarray,
    onnx_prob: np.ndarray,
    sk_labels: np.ndarray,
    onnx_labels: np.ndarray,
) -> str:
    lines = []
    for r in rows.tolist():
        lines.append(
            f"  row {index[r]!r}: sklearn prob {[round(float(p), 7) for p in sk_prob[r]]}, "
            f"onnx prob {[round(float(p), 7) for p in onnx_prob[r]]}, "
            f"sklearn label {_plain(sk_labels[r])!r}, onnx label {_plain(onnx_labels[r])!r}"
        )
    return "\n".join(lines)


def check_parity(
    model: Any, onnx_bytes: bytes, sample: pd.DataFrame, feature_columns: list[str]
) -> dict[str, Any]:
    """Compare ONNX Runtime with `model.predict_proba` on `sample`; ParityError on mismatch."""
    import numpy as np

    _check_sample(sample, feature_columns)
    inputs = _signature_of(onnx_bytes)["inputs"]
    frame = _float32_view(sample, inputs, feature_columns)
    sk_prob = np.asarray(model.predict_proba(frame), dtype=np.float64)
    sk_labels = np.asarray(model.classes_)[np.argmax(sk_prob, axis=1)]
    onnx_labels, onnx_prob = predict(onnx_bytes, frame, inputs)
    onnx_prob = onnx_prob.astype(np.float64)
    index = list(sample.index)

    if onnx_prob.shape != sk_prob.shape:
        raise ParityError(
            f"ONNX model gives probabilities of shape {list(onnx_prob.shape)}, scikit-learn "
            f"{list(sk_prob.shape)}: the ONNX file is not a conversion of this model",
            rows_checked=len(frame),
        )
    row_diff = np.abs(sk_prob - onnx_prob).max(axis=1)
    max_diff = float(row_diff.max())
    mismatched = np.asarray([str(a) != str(b) for a, b in zip(sk_labels, onnx_labels, strict=True)])
    # A tie at the decision threshold may fall either way in float32; anything else may not.
    top2 = np.sort(sk_prob, axis=1)[:, -2:] if sk_prob.shape[1] > 1 else np.ones((len(frame), 2))
    near_threshold = (top2[:, 1] - top2[:, 0]) <= 2 * THRESHOLD_TOLERANCE
    bad_labels = mismatched & ~near_threshold

    if max_diff > PROB_TOLERANCE or bad_labels.any():
        order = np.argsort(-(row_diff + bad_labels.astype(np.float64)), kind="stable")
        worst = order[:_WORST_ROWS]
        problems = []
        if max_diff > PROB_TOLERANCE:
            problems.append(
                f"{int((row_diff > PROB_TOLERANCE).sum())} of {len(frame)} rows differ by more "
                f"than {PROB_TOLERANCE:g} in probability (max {max_diff:.3g})"
            )
        if bad_labels.any():
            problems.append(f"{int(bad_labels.sum())} rows get a different label")
        raise ParityError(
            "ONNX model does not reproduce scikit-learn: "
            + "; ".join(problems)
            + ". Worst rows:\n"
            + _worst_rows_message(index, worst, sk_prob, onnx_prob, sk_labels, onnx_labels),
            rows_checked=len(frame),
            max_abs_prob_diff=max_diff,
        )
    return {
        "rows_checked": len(frame),
        "max_abs_prob_diff": max_diff,
        "label_mismatches_near_threshold": int((mismatched & near_threshold).sum()),
    }


def convert_sklearn(
    model: Any,
    sample: pd.DataFrame,
    feature_columns: list[str],
    *,
    n_golden: int = 8,
    parity_rows: int = 1000,
) -> ConvertedModel:
    """Convert a fitted classifier to single-file ONNX and prove it matches on `sample`."""
    import skl2onnx
    from skl2onnx.common.data_types import FloatTensorType, StringTensorType

    _check_sample(sample, feature_columns)
    if not hasattr(model, "predict_proba") or not hasattr(model, "classes_"):
        raise ValidationFailed(
            f"{type(model).__name__} is not a fitted classifier with predict_proba"
        )
    if n_golden < 1 or parity_rows < 1:
        raise ValidationFailed("n_golden and parity_rows must be at least 1")
    inputs = _input_specs(sample, feature_columns)
    initial_types = [
        (
            spec["name"],
            FloatTensorType([None, 1])
            if spec["dtype"] == "float32"
            else StringTensorType([None, 1]),
        )
        for spec in inputs
    ]
    try:
        onnx_model = skl2onnx.convert_sklearn(
            model,
            initial_types=initial_types,
            target_opset=TARGET_OPSET,
            # A plain probability tensor, not ZipMap's list of dicts: devices read it directly.
            options={id(model): {"zipmap": False}},
        )
    except Exception as exc:  # skl2onnx raises many unrelated types for unsupported models
        raise ValidationFailed(f"skl2onnx cannot convert {type(model).__name__}: {exc}") from exc
    onnx_bytes = onnx_model.SerializeToString()
    signature = _signature_of(onnx_bytes)

    parity = check_parity(model, onnx_bytes, sample.head(parity_rows), feature_columns)

    # Original values (89.7, not 89.69999694824219): a device casts them to the same float32.
    golden_rows = sample[feature_columns].dropna().head(n_golden)
    labels, probabilities = predict(onnx_bytes, golden_rows, signature["inputs"])
    golden = {
        "rows": [
            {column: _plain(value) for column, value in row.items()}
            for row in golden_rows.to_dict(orient="records")
        ],
        "labels": [_plain(v) for v in labels],
        "probabilities": [[float(p) for p in row] for row in probabilities],
    }
    return ConvertedModel(
        onnx_bytes=onnx_bytes,
        signature=signature,
        classes=[_plain(c) for c in model.classes_],
        golden=golden,
        parity=parity,
        feature_columns=list(feature_columns),
    )
