"""Model versions that go wrong on a device in the ways the rollout proofs need, made from
a real scikit-learn model of the vitals data and registered through the public API.

The server checks each of them as it checks every upload: the ONNX file parses and
matches its signature, and ONNX Runtime on the server reproduces the golden vectors we
send (computed here with ONNX Runtime, as the SDK's own helper does). They pass; what
goes wrong happens only on the device:

- `subnormal_sensitive`: its probabilities pass through a subnormal number. On a
  processor with IEEE subnormals (the server, this test process) they are the model's,
  mixed 1 % towards 0.5; on one that flushes subnormals to zero (`flush_to_zero/`) the
  mix is 0 and the outputs differ from the golden ones by up to 0.005: the device's
  golden self-test refuses the release.
- `fails_above`: ONNX Runtime fails (an out-of-bounds Gather) on rows whose input is over
  a limit that no golden, training or holdout row reaches: it passes its self-test and
  its evaluation, and fails application traffic.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["fails_above", "golden_for", "register_variant", "subnormal_sensitive"]

SUBNORMAL = 1e-39
"""Below float32's smallest normal number (1.18e-38)."""
MIX = 0.01
"""How far the probabilities move towards 0.5 where subnormals exist."""


def _rename_output(graph: Any, name: str, new: str) -> None:
    for node in graph.node:
        for i, out in enumerate(node.output):
            if out == name:
                node.output[i] = new


def subnormal_sensitive(onnx_bytes: bytes) -> bytes:
    """`p' = p·(1 − e) + 0.5·e` with `e = (1 × 1e-39) × 1e37`: 0.01, or 0 when the
    processor flushes the subnormal product to zero. Labels are unchanged."""
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load_from_string(onnx_bytes)
    g = model.graph
    _rename_output(g, "probabilities", "p_raw")

    def const(name: str, value: float) -> Any:
        return numpy_helper.from_array(np.array([value], np.float32), name)

    g.initializer.extend(
        [
            const("sn_zero", 0.0),
            const("sn_one", 1.0),
            const("sn_half", 0.5),
            const("sn_tiny", SUBNORMAL),
            const("sn_big", MIX / SUBNORMAL),
        ]
    )
    g.node.extend(
        [
            # ones shaped like the output, computed at run time (nothing to fold)
            helper.make_node("Mul", ["p_raw", "sn_zero"], ["sn_zeros"]),
            helper.make_node("Add", ["sn_zeros", "sn_one"], ["sn_ones"]),
            helper.make_node("Mul", ["sn_ones", "sn_tiny"], ["sn_subnormal"]),
            helper.make_node("Mul", ["sn_subnormal", "sn_big"], ["sn_e"]),
            helper.make_node("Sub", ["sn_ones", "sn_e"], ["sn_keep"]),
            helper.make_node("Mul", ["p_raw", "sn_keep"], ["sn_kept"]),
            helper.make_node("Mul", ["sn_e", "sn_half"], ["sn_added"]),
            helper.make_node("Add", ["sn_kept", "sn_added"], ["probabilities"]),
        ]
    )
    onnx.checker.check_model(model)
    return model.SerializeToString()


def fails_above(onnx_bytes: bytes, column: str, limit: float) -> bytes:
    """The same model, except that ONNX Runtime raises on rows whose `column` is over
    `limit` (a Gather at index 1 of a one-element tensor)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    model = onnx.load_from_string(onnx_bytes)
    g = model.graph
    _rename_output(g, "probabilities", "p_raw")
    g.initializer.extend(
        [
            numpy_helper.from_array(np.array([limit], np.float32), "fa_limit"),
            numpy_helper.from_array(np.zeros((1,), np.float32), "fa_zero"),
        ]
    )
    g.node.extend(
        [
            helper.make_node("Greater", [column, "fa_limit"], ["fa_over"]),
            helper.make_node("Cast", ["fa_over"], ["fa_index"], to=TensorProto.INT64),
            helper.make_node("Gather", ["fa_zero", "fa_index"], ["fa_pad"], axis=0),
            helper.make_node("Add", ["p_raw", "fa_pad"], ["probabilities"]),
        ]
    )
    onnx.checker.check_model(model)
    return model.SerializeToString()


def golden_for(onnx_bytes: bytes, rows: list[dict[str, Any]], inputs: list[dict[str, Any]]) -> Any:
    """Golden vectors of `onnx_bytes` on `rows`, computed with ONNX Runtime here."""
    import pandas as pd

    from farpoint.ml.scoring import predict

    labels, probabilities = predict(onnx_bytes, pd.DataFrame(rows), inputs)
    return {
        "rows": rows,
        "labels": [int(v) for v in labels],
        "probabilities": [[float(p) for p in row] for row in probabilities],
    }


def register_variant(
    client: Any,
    model_name: str,
    onnx_bytes: bytes,
    converted: Any,
    *,
    run_id: int,
    label_column: str,
    flavor: str,
) -> Any:
    """Register `onnx_bytes` (a variant of `converted`'s model) with golden vectors of
    its own, through `POST /models/{name}/versions`."""
    golden = golden_for(onnx_bytes, converted.golden["rows"], converted.signature["inputs"])
    meta = {
        "run_id": run_id,
        "framework": "onnx",
        "flavor": flavor,
        "signature": converted.signature,
        "label_column": label_column,
        "classes": list(converted.classes),
        "golden": golden,
        "parity": {},
    }
    return client.register_onnx_model(model_name, onnx_bytes, meta)
