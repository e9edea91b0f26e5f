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
    _check_golden_like_a_device(meta)
    feed: dict[str, Any] = {}
    for spec in meta.signature.inputs:
        values = [row[spec.name] for row in golden.rows]
        dtype = object if spec.dtype == "string" else np.dtype(spec.dtype)
        feed[spec.name] = np.array(values, dtype=dtype).reshape(len(values), 1)
    labels, probs = sess.run(["label", "probabilities"], feed)
    if [_plain(x) for x in labels] != [_plain(x) for x in golden.labels]:
        raise ValidationFailed(
            "the model does not reproduce its golden labels: "
            f"expected {golden.labels}, got {[_plain(x) for x in labels]}"
        )
    probs = np.asarray(probs)
    if probs.ndim != 2 or probs.shape[1] != len(meta.classes):
        raise ValidationFailed(
            f"the model outputs probabilities of shape {list(probs.shape)} for "
            f"{len(meta.classes)} classes {meta.classes}"
        )
    diff = float(np.max(np.abs(probs - np.asarray(golden.probabilities))))
    if not diff <= tolerance:  # NaN anywhere: no device could reproduce it
        raise ValidationFailed(
            f"the model does not reproduce its golden probabilities (max difference {diff:.3g})"
        )


def _fits(dtype: str, value: Any) -> bool:
    """The device's rule for a value of an input (farpoint.agent.runtime)."""
    if dtype == "string":
        return isinstance(value, str)
    if dtype == "bool":
        return isinstance(value, bool)
    if isinstance(value, bool):
        return False
    if dtype in ("int64", "int32"):
        return isinstance(value, int)
    return isinstance(value, int | float)


def _check_golden_like_a_device(meta: ModelVersionMeta) -> None:
    """Refuse golden vectors a device's self-test would refuse whatever the model does:
    rows that are not exactly the signature's inputs with values of their types, a label
    and a probability per class for every row, distinct class names."""
    golden = meta.golden
    n = len(golden.rows)
    if len(golden.labels) != n or len(golden.probabilities) != n:
        raise ValidationFailed(
            f"golden vectors need a label and a row of probabilities per golden row: {n} "
            f"rows, {len(golden.labels)} labels, {len(golden.probabilities)} probability rows"
        )
    names = [str(c) for c in meta.classes]
    if len(set(names)) != len(names):
        raise ValidationFailed(f"classes {meta.classes} name a class twice")
    inputs = {spec.name: spec.dtype for spec in meta.signature.inputs}
    for i, row in enumerate(golden.rows):
        unknown = sorted(set(row) - set(inputs))
        if unknown:
            raise ValidationFailed(
                f"golden row {i} has field {unknown[0]!r}, which is not an input of the model"
            )
        for name, dtype in inputs.items():
            if name not in row:
                raise ValidationFailed(f"golden row {i} lacks input {name!r}")
            if not _fits(dtype, row[name]):
                raise ValidationFailed(
                    f"golden row {i}: input {name!r} is {dtype}, got "
                    f"{type(row[name]).__name__} {row[name]!r}"
                )
        if len(golden.probabilities[i]) != len(names):
            raise ValidationFailed(
                f"golden row {i} has {len(golden.probabilities[i])} probabilities for "
                f"{len(names)} classes"
            )


def _plain(x: Any) -> Any:
    return x.item() if hasattr(x, "item") else x
