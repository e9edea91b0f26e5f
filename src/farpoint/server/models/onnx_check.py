"""Server-side checks of an uploaded ONNX model: it parses, matches its signature, and
reproduces its golden vectors (so the device self-test cannot fail on a sound model)."""

from __future__ import annotations

from typing import Any

from farpoint.core.errors import ValidationFailed
from farpoint.wire.models import ModelVersionMeta

_ORT_TYPES = {
    "tensor(float)": "float32",
    "tensor(double)": "float64",
    "tensor(int64)": "int64",
    "tensor(int32)": "int32",
    "tensor(string)": "string",
    "tensor(bool)": "bool",
}


def check_onnx(data: bytes, meta: ModelVersionMeta, tolerance: float) -> None:
    import numpy as np
    import onnx
    import onnxruntime as ort

    try:
        proto = onnx.load_from_string(data)
    except Exception as exc:
        raise ValidationFailed(f"the file is not an ONNX model: {exc}") from exc
    for init in proto.graph.initializer:
        if init.data_location == onnx.TensorProto.EXTERNAL:
            raise ValidationFailed(
                f"tensor {init.name!r} uses external data; ship a single-file ONNX model"
            )
    try:
        sess = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    except Exception as exc:
        raise ValidationFailed(f"ONNX Runtime cannot load the model: {exc}") from exc

    actual_inputs = {i.name: _ORT_TYPES.get(i.type, i.type) for i in sess.get_inputs()}
    declared_inputs = {i.name: i.dtype for i in meta.signature.inputs}
    if actual_inputs != declared_inputs:
        raise ValidationFailed(
            f"declared inputs {declared_inputs} differ from the model's {actual_inputs}"
        )
    actual_outputs = [o.name for o in sess.get_outputs()]
    declared_outputs = [o.name for o in meta.signature.outputs]
    if actual_outputs != declared_outputs:
        raise ValidationFailed(
            f"declared outputs {declared_outputs} differ from the model's {actual_outputs}"
        )
    if "label" not in actual_outputs or "probabilities" not in actual_outputs:
        raise ValidationFailed(
            "a classifier must output 'label' and 'probabilities' (convert without ZipMap)"
        )
    golden = meta.golden
    if not golden.rows:
        raise ValidationFailed("golden vectors are required for the device self-test")
    feed: dict[str, Any] = {}
    for spec in meta.signature.inputs:
        try:
            values = [row[spec.name] for row in golden.rows]
        except KeyError as exc:
            raise ValidationFailed(f"a golden row lacks input {spec.name!r}") from exc
        dtype = object if spec.dtype == "string" else np.dtype(spec.dtype)
        feed[spec.name] = np.array(values, dtype=dtype).reshape(len(values), 1)
    labels, probs = sess.run(["label", "probabilities"], feed)
    if [_plain(x) for x in labels] != [_plain(x) for x in golden.labels]:
        raise ValidationFailed(
            "the model does not reproduce its golden labels: "
            f"expected {golden.labels}, got {[_plain(x) for x in labels]}"
        )
    diff = float(np.max(np.abs(np.asarray(probs) - np.asarray(golden.probabilities))))
    if diff > tolerance:
        raise ValidationFailed(
            f"the model does not reproduce its golden probabilities (max difference {diff:.3g})"
        )


def _plain(x: Any) -> Any:
    return x.item() if hasattr(x, "item") else x
