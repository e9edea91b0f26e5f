"""Score a table with an ONNX model through ONNX Runtime (as a device would)."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

from farpoint.core.errors import ValidationFailed

if TYPE_CHECKING:
    import numpy as np
    import onnxruntime as ort
    import pandas as pd

__all__ = ["onnx_feed", "predict"]

_NUMPY_DTYPES = {
    "float32": "float32",
    "float64": "float64",
    "int64": "int64",
    "int32": "int32",
    "bool": "bool",
}


@functools.lru_cache(maxsize=8)
def _session(onnx_bytes: bytes) -> ort.InferenceSession:
    # Cached: building a session costs far more than scoring a batch with it.
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3  # warnings about unused initializers are noise here
    try:
        return ort.InferenceSession(
            onnx_bytes, sess_options=options, providers=["CPUExecutionProvider"]
        )
    except Exception as exc:  # ORT raises its own untyped exceptions for bad graphs
        raise ValidationFailed(f"ONNX Runtime cannot load the model: {exc}") from exc


def onnx_feed(inputs: list[dict[str, Any]], frame: pd.DataFrame) -> dict[str, np.ndarray]:
    """The input dict for ONNX Runtime: one `[n, 1]` array per signature input."""
    import numpy as np

    missing = [spec["name"] for spec in inputs if spec["name"] not in frame.columns]
    if missing:
        raise ValidationFailed(f"the table lacks the model's input columns {missing}")
    feed: dict[str, np.ndarray] = {}
    for spec in inputs:
        name, dtype = spec["name"], spec["dtype"]
        column = frame[name]
        if dtype == "string":
            # Nulls become "" rather than "None"/"nan", which a category encoder might know.
            values = ["" if v is None or v != v else str(v) for v in column.tolist()]
            array = np.asarray(values, dtype=object)
        elif dtype in _NUMPY_DTYPES:
            try:
                array = column.to_numpy(dtype=_NUMPY_DTYPES[dtype], na_value=np.nan)
            except (TypeError, ValueError) as exc:
                raise ValidationFailed(f"column {name!r} cannot be read as {dtype}: {exc}") from exc
        else:
            raise ValidationFailed(f"input {name!r} has unsupported dtype {dtype!r}")
        feed[name] = array.reshape(-1, 1)
    return feed


def predict(
    onnx_bytes: bytes, frame: pd.DataFrame, inputs: list[dict[str, Any]]
) -> tuple[np.ndarray, np.ndarray]:
    """(labels, probabilities[n, n_classes]) for every row of `frame`."""
    import numpy as np

    session = _session(onnx_bytes)
    outputs = [o.name for o in session.get_outputs()]
    if len(outputs) < 2:
        raise ValidationFailed(
            f"the model has outputs {outputs}; a classifier needs a label and probabilities"
        )
    # skl2onnx names them label/probabilities; fall back to position for other exporters.
    wanted = (
        ["label", "probabilities"] if {"label", "probabilities"} <= set(outputs) else outputs[:2]
    )
    labels, probabilities = session.run(wanted, onnx_feed(inputs, frame))
    probabilities = np.asarray(probabilities)
    if probabilities.ndim != 2:
        raise ValidationFailed(
            f"probabilities output has shape {probabilities.shape}; expected [rows, classes] "
            "(convert without ZipMap)"
        )
    return np.asarray(labels).reshape(-1), probabilities
