"""Prediction ids and POST /v1/feedback on the local API, over a real model."""

from __future__ import annotations

import json
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from agent_fakes import OnnxModel, make_manifest

from farpoint.agent.feedback import RecentPredictions, new_ids
from farpoint.agent.local_api import LocalApi
from farpoint.agent.payloads import parse_manifest
from farpoint.agent.registry import Registry
from farpoint.agent.runtime import LoadedModel, load_model
from farpoint.agent.state import CurrentRelease
from farpoint.agent.telemetry import MAX_GROUPS_PER_ATTRIBUTE, InferenceStats

pytestmark = pytest.mark.timeout(30)

ROW = {"f0": 1.0, "f1": 2.0, "f2": 3.0}


class _Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


@dataclass
class Api:
    server: LocalApi
    stats: InferenceStats
    clock: _Clock
    registry: Registry

    def call(self, method: str, path: str, body: Any = None, raw: bytes | None = None):
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        req = urllib.request.Request(
            f"http://127.0.0.1:{self.server.port}{path}", data=data, method=method
        )
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as err:
            assert err.headers["Content-Type"] == "application/problem+json"
            return err.code, json.loads(err.read())

    def predict(self, rows: list[dict[str, Any]], model: str = "churn") -> list[dict[str, Any]]:
        status, doc = self.call("POST", f"/v1/models/{model}:predict", {"rows": rows})
        assert status == 200, doc
        return doc["predictions"]  # type: ignore[no-any-return]

    def window(self, model: str = "churn") -> dict[str, Any]:
        found = [w for m, w in self.stats.close_window() if m == model]
        assert len(found) == 1
        return found[0]  # type: ignore[return-value]


class _FailingSession:
    """An ONNX Runtime session that fails the way a broken model does."""

    def run(self, outputs: list[str], feeds: dict[str, Any]) -> Any:
        raise RuntimeError("[ONNXRuntimeError] : 6 : RUNTIME_EXCEPTION : Non-zero status code")


@pytest.fixture(scope="module")
def served(model_a: OnnxModel) -> Iterator[tuple[LocalApi, Registry]]:
    manifest = parse_manifest(make_manifest(7, model_a))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.onnx"
        path.write_bytes(model_a.data)
        registry = Registry()
        current = CurrentRelease("churn", "slot-a", 7, "sha256:" + "1" * 64, model_a.digest, "")
        registry.activate(load_model(path, manifest), current)
        broken = parse_manifest(make_manifest(9, model_a, name="broken"))
        registry.activate(
            LoadedModel(broken, _FailingSession(), "label", "probabilities"),
            CurrentRelease("broken", "slot-a", 9, "sha256:" + "2" * 64, model_a.digest, ""),
        )
        server = LocalApi(registry, InferenceStats(), "127.0.0.1", 0)
        server.start()
        yield server, registry
        server.stop()


@pytest.fixture
def api(served: tuple[LocalApi, Registry]) -> Api:
    """The module's server with fresh counters and memory of predictions (stopping a
    server per test would cost half a second each)."""
    server, registry = served
    clock = _Clock()
    stats = InferenceStats(clock=clock)
    recent = RecentPredictions(capacity=50, max_age_s=600, clock=clock)
    server._server.stats = stats
    server._server.predictions = recent
    return Api(server, stats, clock, registry)


def test_every_prediction_gets_a_short_unguessable_id(api: Api, model_a: OnnxModel) -> None:
    first = api.predict(model_a.rows)
    second = api.predict(model_a.rows)
    ids = [p["id"] for p in first + second]
    assert len(set(ids)) == len(ids) == 2 * len(model_a.rows)
    assert all(len(i) == 16 and i.replace("-", "").replace("_", "").isalnum() for i in ids)
    assert [p["label"] for p in first] == model_a.labels
    assert len(set(new_ids(2000))) == 2000


def test_feedback_becomes_confusion_counts_per_attribute_value(
    api: Api, model_a: OnnxModel
) -> None:
    predictions = api.predict(model_a.rows)  # 5 rows
    truths = [(1, "F", "60+"), (0, "M", "60+"), (1, "F", "40-59"), (0, "F", "60+"), (1, "M", "")]
    for p, (label, sex, age) in zip(predictions, truths, strict=True):
        attributes = {"sex": sex, "age_band": age} if age else {"sex": sex}
        status, doc = api.call(
            "POST",
            "/v1/feedback",
            {"prediction_id": p["id"], "label": label, "attributes": attributes},
        )
        assert status == 200, doc
        assert (doc["model"], doc["release_id"]) == ("churn", 7)
        assert (doc["label"], doc["predicted"]) == (str(label), str(p["label"]))
    window = api.window()
    assert window["requests"] == 1 and window["inferences"] == 5
    assert window["predictions"] == {
        str(v): model_a.labels.count(v) for v in sorted(set(model_a.labels))
    }
    expected: dict[tuple[str, str, str, str], int] = {}
    overall: dict[tuple[str, str], int] = {}
    for p, (label, sex, age) in zip(predictions, truths, strict=True):
        pred = str(p["label"])
        cells = [("sex", sex)] + ([("age_band", age)] if age else [])
        for name, value in cells:
            key = (name, value, str(label), pred)
            expected[key] = expected.get(key, 0) + 1
        overall[(str(label), pred)] = overall.get((str(label), pred), 0) + 1
    got = {
        (c["attribute"], c["group"], c["label"], c["predicted"]): c["count"]
        for c in window["feedback"]
    }
    assert got == expected
    assert {(c["label"], c["predicted"]): c["count"] for c in window["confusion"]} == overall
    # the record names groups and counts only: no id, no row, no feature value
    text = json.dumps(window)
    assert all(p["id"] not in text for p in predictions)
    assert str(model_a.rows[0]["f0"]) not in text


def test_feedback_for_an_unknown_or_expired_id_is_a_404(api: Api, model_a: OnnxModel) -> None:
    status, doc = api.call("POST", "/v1/feedback", {"prediction_id": "A" * 16, "label": 1})
    assert status == 404 and doc["field"] == "prediction_id"
    assert "unknown or expired" in doc["detail"] and "50 predictions" in doc["detail"]
    old = api.predict([ROW])[0]["id"]
    api.clock.t += 601
    status, doc = api.call("POST", "/v1/feedback", {"prediction_id": old, "label": 1})
    assert status == 404 and "600 s" in doc["detail"]
    # the oldest ids go first when more predictions are made than the device remembers
    first = api.predict([ROW])[0]["id"]
    api.predict([ROW] * 50)
    assert api.call("POST", "/v1/feedback", {"prediction_id": first, "label": 1})[0] == 404


def test_a_prediction_takes_feedback_once(api: Api) -> None:
    pid = api.predict([ROW])[0]["id"]
    assert api.call("POST", "/v1/feedback", {"prediction_id": pid, "label": 0})[0] == 200
    status, doc = api.call("POST", "/v1/feedback", {"prediction_id": pid, "label": 1})
    assert status == 409 and "already has its feedback" in doc["detail"]
    assert sum(c["count"] for c in api.window()["confusion"]) == 1


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"label": "1"}, "label", "not one of the model's classes [0, 1]"),
        ({"label": 2}, "label", "not one of the model's classes"),
        ({"label": True}, "label", "must be an integer or a string, got bool"),
        ({"label": [1]}, "label", "must be an integer or a string, got list"),
        ({}, "label", 'missing field "label"'),
        ({"label": 1, "attributes": {f"a{i}": "x" for i in range(9)}}, "attributes", "at most 8"),
        ({"label": 1, "attributes": {"sex": "F" * 33}}, "attributes.sex", "1 to 32"),
        ({"label": 1, "attributes": {"sex": ""}}, "attributes.sex", "1 to 32"),
        ({"label": 1, "attributes": {"sex": 1.5}}, "attributes.sex", "string or an integer"),
        ({"label": 1, "attributes": {"9lives": "x"}}, "attributes.9lives", "starting with"),
        ({"label": 1, "attributes": ["sex"]}, "attributes", "an object"),
        ({"label": 1, "note": "x"}, "note", "unknown field 'note'"),
    ],
)
def test_bad_feedback_is_a_422_naming_the_field_and_counts_nothing(
    api: Api, body: dict[str, Any], field: str, words: str
) -> None:
    pid = api.predict([ROW])[0]["id"]
    status, doc = api.call("POST", "/v1/feedback", {"prediction_id": pid, **body})
    assert status == 422, doc
    assert doc["field"] == field and words in doc["detail"]
    assert api.window()["confusion"] == []
    # the id is still good: a corrected feedback counts
    assert api.call("POST", "/v1/feedback", {"prediction_id": pid, "label": 1})[0] == 200


def test_feedback_bodies_are_bounded_and_must_be_json(api: Api) -> None:
    pid = api.predict([ROW])[0]["id"]
    big = {"prediction_id": pid, "label": 1, "pad": "x" * 9000}
    status, doc = api.call("POST", "/v1/feedback", big)
    assert status == 413 and "8192 B" in doc["detail"]
    assert api.call("POST", "/v1/feedback", raw=b"{nope")[0] == 400
    assert api.call("POST", "/v1/feedback", {"prediction_id": 5, "label": 1})[0] == 422
    assert api.call("POST", "/v1/feedback", {"prediction_id": "short", "label": 1})[0] == 422
    assert api.call("GET", "/v1/feedback")[0] == 405


def test_an_attribute_cannot_carry_identifiers(api: Api) -> None:
    ids = [p["id"] for p in api.predict([ROW] * (MAX_GROUPS_PER_ATTRIBUTE + 1))]
    for i, pid in enumerate(ids[:-1]):
        body = {"prediction_id": pid, "label": 1, "attributes": {"patient": f"p{i}"}}
        assert api.call("POST", "/v1/feedback", body)[0] == 200
    body = {"prediction_id": ids[-1], "label": 1, "attributes": {"patient": "p-last"}}
    status, doc = api.call("POST", "/v1/feedback", body)
    assert status == 422 and "not identifiers" in doc["detail"]
    # a value already seen is still fine
    body["attributes"] = {"patient": "p0"}
    assert api.call("POST", "/v1/feedback", body)[0] == 200


def test_input_errors_and_inference_failures_are_counted_apart(api: Api) -> None:
    status, doc = api.call("POST", "/v1/models/churn:predict", {"rows": [{"f0": 1.0}]})
    assert status == 400
    assert api.call("POST", "/v1/models/churn:predict", raw=b"{nope")[0] == 400
    status, doc = api.call("POST", "/v1/models/broken:predict", {"rows": [ROW]})
    assert status == 500
    assert doc["type"].endswith("/inference-failed")
    assert "release 9 of model 'broken' failed to predict" in doc["detail"]
    assert "RUNTIME_EXCEPTION" in doc["detail"]
    # an input error on the broken model is still the caller's
    assert api.call("POST", "/v1/models/broken:predict", {"rows": [{}]})[0] == 400
    snap = api.stats.snapshot()
    assert (snap["churn"]["errors"], snap["churn"]["input_errors"]) == (0, 2)
    assert (snap["broken"]["errors"], snap["broken"]["input_errors"]) == (1, 1)
    windows = dict(api.stats.close_window())
    assert (windows["broken"]["errors"], windows["broken"]["requests"]) == (1, 2)
    assert windows["broken"]["latency_ms"] == []  # failures are counted, not timed
    assert windows["churn"]["release_id"] == 7 and windows["broken"]["release_id"] == 9


def test_openapi_describes_ids_and_feedback_and_models_keep_their_schema(
    api: Api, model_a: OnnxModel
) -> None:
    spec = api.call("GET", "/v1/openapi.json")[1]
    post = spec["paths"]["/v1/feedback"]["post"]
    schema = post["requestBody"]["content"]["application/json"]["schema"]
    assert schema["required"] == ["prediction_id", "label"]
    assert {"404", "409", "413", "422"} <= set(post["responses"])
    answer = spec["paths"]["/v1/models/{name}:predict"]["post"]["responses"]["200"]
    item = answer["content"]["application/json"]["schema"]["properties"]["predictions"]["items"]
    assert "id" in item["properties"]
    status, doc = api.call("GET", "/v1/models/churn")
    assert status == 200
    assert [i["name"] for i in doc["inputs"]] == model_a.inputs
    assert [o["name"] for o in doc["outputs"]] == ["label", "probabilities"]
