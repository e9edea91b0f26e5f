"""The server refuses the golden vectors a device's self-test would refuse whatever the
model does, so a release the server accepted cannot fail every device's self-test for
its bookkeeping (`server.models.onnx_check` against `agent.runtime`)."""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any

import pytest

from farpoint.core.errors import ValidationFailed


@pytest.fixture(scope="module")
def sound(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    from farpoint.examples import vitals
    from farpoint.ml.onnx_export import convert_sklearn

    frame = vitals.generate(n_rows=400, seed=5)
    converted = convert_sklearn(vitals.train_model(frame, seed=5), frame, vitals.FEATURES)
    path = tmp_path_factory.mktemp("golden") / "model.onnx"
    path.write_bytes(converted.onnx_bytes)
    meta = {
        "run_id": 1,
        "signature": converted.signature,
        "label_column": vitals.LABEL,
        "classes": converted.classes,
        "golden": converted.golden,
    }
    return path, meta


def _changed(meta: dict[str, Any], how: str) -> dict[str, Any]:
    m = copy.deepcopy(meta)
    g = m["golden"]
    if how == "extra field":
        g["rows"][0]["bed"] = 4.0
    elif how == "number as a string":
        g["rows"][0]["heart_rate"] = str(g["rows"][0]["heart_rate"])
    elif how == "true for a number":
        g["rows"][1]["age"] = True
    elif how == "number for a string":
        g["rows"][0]["ward"] = 3
    elif how == "a class too many":
        m["classes"] = [*m["classes"], 2]
    elif how == "a class twice":
        m["classes"] = [m["classes"][0], str(m["classes"][0])]
    elif how == "NaN probability":
        g["probabilities"][0][0] = math.nan
    elif how == "a label short":
        g["labels"] = g["labels"][:-1]
    elif how == "a row short of probabilities":
        g["probabilities"][2] = g["probabilities"][2][:1]
    elif how != "sound":
        raise AssertionError(how)
    return m


def _server(path: Path, meta: dict[str, Any]) -> bool:
    from farpoint.server.models.onnx_check import check_onnx
    from farpoint.wire.models import ModelVersionMeta

    try:
        check_onnx(path.read_bytes(), ModelVersionMeta.model_validate(meta), 1e-5)
    except ValidationFailed:
        return False
    return True


def _device(path: Path, meta: dict[str, Any]) -> bool:
    from farpoint.agent.runtime import SelfTestFailed, load_model

    manifest: Any = {k: meta[k] for k in ("signature", "classes", "golden")}
    manifest["model"] = "vitals"
    try:
        load_model(path, manifest).self_test("x86_64")
    except SelfTestFailed:
        return False
    return True


CASES = [
    "sound",
    "extra field",
    "number as a string",
    "true for a number",
    "number for a string",
    "a class too many",
    "a class twice",
    "NaN probability",
    "a label short",
    "a row short of probabilities",
]


@pytest.mark.parametrize("how", CASES)
def test_the_server_accepts_exactly_the_golden_vectors_a_device_accepts(
    sound: tuple[Path, dict[str, Any]], how: str
) -> None:
    path, meta = sound
    changed = _changed(meta, how)
    device = _device(path, changed)
    assert device is (how == "sound"), f"the device's self-test and {how!r}"
    assert _server(path, changed) is device
