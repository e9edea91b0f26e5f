"""The local inference API over a real model, without a control plane."""

from __future__ import annotations

import json
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from agent_fakes import OnnxModel, make_manifest

from farpoint.agent.local_api import LocalApi
from farpoint.agent.payloads import parse_manifest
from farpoint.agent.registry import Registry
from farpoint.agent.runtime import load_model
from farpoint.agent.state import CurrentRelease
from farpoint.agent.telemetry import InferenceStats

pytestmark = pytest.mark.timeout(30)


@pytest.fixture(scope="module")
def api(model_a: OnnxModel) -> Iterator[tuple[LocalApi, InferenceStats]]:
    manifest = parse_manifest(make_manifest(7, model_a))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.onnx"
        path.write_bytes(model_a.data)
        registry = Registry()
        current = CurrentRelease("churn", "slot-a", 7, "sha256:" + "1" * 64, model_a.digest, "")
        registry.activate(load_model(path, manifest), current)
        stats = InferenceStats()
        server = LocalApi(registry, stats, "127.0.0.1", 0)
        server.start()
        yield server, stats
        server.stop()


def _call(
    api: tuple[LocalApi, InferenceStats], method: str, path: str, body: Any = None,
    raw: bytes | None = None,
) -> tuple[int, str, Any]:  # fmt: skip
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    req = urllib.request.Request(f"http://127.0.0.1:{api[0].port}{path}", data=data, method=method)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.headers["Content-Type"], json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, err.headers["Content-Type"], json.loads(err.read())


ROW = {"f0": 1.0, "f1": 2.0, "f2": 3}


@pytest.mark.parametrize(
    ("rows", "field", "row", "words"),
    [
        ([ROW, {"f0": 1.0, "f1": 2.0}], "f2", 1, "missing field 'f2'"),
        ([{**ROW, "age": 4}], "age", 0, "unknown field 'age'"),
        ([ROW, ROW, {**ROW, "f1": "high"}], "f1", 2, "'f1' must be a number, got str"),
        ([{**ROW, "f0": True}], "f0", 0, "'f0' must be a number, got bool"),
        ([{**ROW, "f0": None}], "f0", 0, "'f0' must be a number, got NoneType"),
    ],
)
def test_bad_input_is_a_400_problem_naming_the_field_and_row(
    api: tuple[LocalApi, InferenceStats], rows: list[Any], field: str, row: int, words: str
) -> None:
    status, ctype, doc = _call(api, "POST", "/v1/models/churn:predict", {"rows": rows})
    assert status == 400 and ctype == "application/problem+json"
    assert (doc["field"], doc["row"]) == (field, row)
    assert f"row {row}" in doc["detail"] and words in doc["detail"]


@pytest.mark.parametrize(
    "body",
    [{"data": []}, {"rows": {"f0": 1}}, {"columns": {"f0": [1.0], "f1": [1.0, 2.0]}}, [1, 2]],
)
def test_a_body_of_the_wrong_shape_is_a_400(
    api: tuple[LocalApi, InferenceStats], body: Any
) -> None:
    status, ctype, _ = _call(api, "POST", "/v1/models/churn:predict", body)
    assert (status, ctype) == (400, "application/problem+json")


def test_a_body_that_is_not_json_is_a_400(api: tuple[LocalApi, InferenceStats]) -> None:
    assert _call(api, "POST", "/v1/models/churn:predict", raw=b"{nope")[0] == 400


def test_an_unknown_model_is_a_404(api: tuple[LocalApi, InferenceStats]) -> None:
    status, ctype, doc = _call(api, "POST", "/v1/models/fraud:predict", {"rows": [ROW]})
    assert (status, ctype) == (404, "application/problem+json")
    assert "fraud" in doc["detail"]
    assert _call(api, "GET", "/v1/models/fraud")[0] == 404


def test_a_body_over_one_mebibyte_is_a_413(api: tuple[LocalApi, InferenceStats]) -> None:
    raw = b'{"rows": [], "pad": "' + b"x" * (1 << 20) + b'"}'
    status, _, doc = _call(api, "POST", "/v1/models/churn:predict", raw=raw)
    assert status == 413 and "limit" in doc["detail"]


def test_more_than_ten_thousand_rows_is_a_413(api: tuple[LocalApi, InferenceStats]) -> None:
    rows = [{}] * 10_001
    status, _, doc = _call(api, "POST", "/v1/models/churn:predict", {"rows": rows})
    assert status == 413 and "10000" in doc["detail"]
    columns = {"f0": [0] * 10_001, "f1": [0] * 10_001, "f2": [0] * 10_001}
    assert _call(api, "POST", "/v1/models/churn:predict", {"columns": columns})[0] == 413


def test_model_description_list_health_and_openapi(
    api: tuple[LocalApi, InferenceStats], model_a: OnnxModel
) -> None:
    status, _, doc = _call(api, "GET", "/v1/models/churn")
    assert status == 200
    assert (doc["model"], doc["release_id"], doc["classes"]) == ("churn", 7, [0, 1])
    assert [i["name"] for i in doc["inputs"]] == model_a.inputs
    assert [o["name"] for o in doc["outputs"]] == ["label", "probabilities"]
    assert _call(api, "GET", "/v1/models")[2]["items"] == [doc]
    assert _call(api, "GET", "/v1/health")[2]["status"] == "ok"
    spec = _call(api, "GET", "/v1/openapi.json")[2]
    assert spec["openapi"].startswith("3.1")
    assert {"/v1/models/{name}:predict", "/v1/models", "/v1/health"} <= set(spec["paths"])


def test_predictions_are_counted_for_the_heartbeat(
    api: tuple[LocalApi, InferenceStats], model_a: OnnxModel
) -> None:
    before = api[1].snapshot().get("churn", {}).get("inferences", 0)
    status, _, doc = _call(api, "POST", "/v1/models/churn:predict", {"rows": model_a.rows})
    assert status == 200
    assert [p["label"] for p in doc["predictions"]] == model_a.labels
    assert api[1].snapshot()["churn"]["inferences"] == before + len(model_a.rows)
