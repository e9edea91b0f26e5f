"""The agent's loop against a fake control plane: activate, refuse, keep serving, restart."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from agent_fakes import FakeControlPlane, OnnxModel

from farpoint.agent.loop import Agent
from farpoint.core import digest, keys

pytestmark = pytest.mark.timeout(40)

AgentFactory = Callable[[], Agent]


@pytest.fixture
def start_agent(enrolled: Path) -> Iterator[AgentFactory]:
    agents: list[Agent] = []

    def start() -> Agent:
        agent = Agent(enrolled, poll_wait_s=1, heartbeat_s=0.5)
        agent.start()
        agents.append(agent)
        return agent

    yield start
    for agent in agents:
        agent.close()


def _http(agent: Agent, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(
        f"http://127.0.0.1:{agent.port}{path}", data=data, method=method,
        headers={"Content-Type": "application/json"},
    )  # fmt: skip
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def _onnx_predict(model: OnnxModel, rows: list[dict[str, float]]) -> tuple[list[int], Any]:
    import onnxruntime as ort

    sess = ort.InferenceSession(model.data, providers=["CPUExecutionProvider"])
    feeds = {n: np.array([[r[n]] for r in rows], dtype=np.float32) for n in model.inputs}
    labels, probas = sess.run(["label", "probabilities"], feeds)
    return [int(v) for v in labels], probas


def _serving(agent: Agent, model: str = "churn") -> int | None:
    active = agent.registry.get(model)
    return None if active is None else active.current.release_id


def _activate_first(cp: FakeControlPlane, start: AgentFactory, model: OnnxModel) -> Agent:
    cp.set_desired(cp.publish(1, model))
    agent = start()
    cp.wait_for(lambda c: "active" in c.phases("churn", 1))
    return agent


def test_agent_activates_a_release_and_serves_onnxruntimes_answers(
    control_plane: FakeControlPlane, start_agent: AgentFactory, model_a: OnnxModel, enrolled: Path
) -> None:
    agent = _activate_first(control_plane, start_agent, model_a)
    assert control_plane.phases("churn", 1) == ["downloading", "verifying", "installing", "active"]

    rows = [{"f0": 0.3, "f1": -1.2, "f2": 0.7}, {"f0": -2.0, "f1": 0.1, "f2": -0.4}]
    status, doc = _http(agent, "POST", "/v1/models/churn:predict", {"rows": rows})
    assert status == 200
    assert (doc["model"], doc["release_id"], doc["model_ref"]) == ("churn", 1, "churn@1")
    labels, probas = _onnx_predict(model_a, rows)
    assert [p["label"] for p in doc["predictions"]] == labels
    for pred, expected in zip(doc["predictions"], probas, strict=True):
        assert pred["probabilities"]["0"] == pytest.approx(float(expected[0]), abs=1e-6)
        assert pred["probabilities"]["1"] == pytest.approx(float(expected[1]), abs=1e-6)

    # the same answer when the caller sends columns
    columns = {n: [r[n] for r in rows] for n in model_a.inputs}
    status, by_columns = _http(agent, "POST", "/v1/models/churn:predict", {"columns": columns})
    assert status == 200 and by_columns["predictions"] == doc["predictions"]

    current = json.loads((enrolled / "models" / "churn" / "current.json").read_text())
    assert current["release_id"] == 1 and current["slot"] == "slot-a"
    assert current["model_digest"] == model_a.digest
    assert (enrolled / "blobs" / model_a.digest.split(":")[1]).read_bytes() == model_a.data
    # every device request was signed, and every signature verified
    assert control_plane.bad_signatures == 0
    # the heartbeat counts the two predictions
    control_plane.wait_for(
        lambda c: c.reports[-1]["heartbeat"]["models"].get("churn", {}).get("inferences") == 4
    )
    beat = control_plane.reports[-1]["heartbeat"]
    assert beat["rss_bytes"] > 0 and beat["disk_free_bytes"] > 0 and beat["uptime_s"] > 0
    assert beat["models"]["churn"]["release_id"] == 1
    assert beat["models"]["churn"]["latency_p95_ms"] is not None


def test_a_tampered_blob_fails_and_the_previous_release_keeps_serving(
    control_plane: FakeControlPlane,
    start_agent: AgentFactory,
    model_a: OnnxModel,
    model_b: OnnxModel,
) -> None:
    agent = _activate_first(control_plane, start_agent, model_a)
    tampered = bytearray(model_b.data)
    tampered[-1] ^= 0xFF
    control_plane.set_desired(control_plane.publish(2, model_b, blob=bytes(tampered)))
    control_plane.wait_for(lambda c: "failed" in c.phases("churn", 2))

    failed = control_plane.last_status("churn")
    assert failed is not None and failed["phase"] == "failed" and failed["release_id"] == 2
    got = digest.digest_bytes(bytes(tampered))
    assert failed["error"] == f"model digest mismatch: expected {model_b.digest}, got {got}"
    assert _serving(agent) == 1
    status, doc = _http(agent, "POST", "/v1/models/churn:predict", {"rows": model_a.rows})
    assert status == 200 and doc["release_id"] == 1
    # nothing unverified entered the cache
    assert not (agent.state_dir / "blobs" / model_b.digest.split(":")[1]).exists()
    # the failed release is not fetched again while the desired state stays the same
    blob_fetches = control_plane.count("/api/v1/devices/self/blobs/")
    control_plane.wait_for(lambda c: c.count("/api/v1/devices/self/desired-state") >= 4)
    assert control_plane.count("/api/v1/devices/self/blobs/") == blob_fetches
    health = _http(agent, "GET", "/v1/health")[1]
    assert health["status"] == "degraded"


def test_a_manifest_signed_by_another_key_is_refused(
    control_plane: FakeControlPlane,
    start_agent: AgentFactory,
    model_a: OnnxModel,
    model_b: OnnxModel,
) -> None:
    agent = _activate_first(control_plane, start_agent, model_a)
    forger = keys.generate_private_key()
    control_plane.set_desired(control_plane.publish(2, model_b, signer=forger))
    control_plane.wait_for(lambda c: "failed" in c.phases("churn", 2))
    error = (control_plane.last_status("churn") or {})["error"]
    assert error.startswith("manifest signature refused")
    assert _serving(agent) == 1
    # the blob of a refused release is never requested
    assert control_plane.count(f"/api/v1/devices/self/blobs/{model_b.digest}") == 0


def test_a_golden_mismatch_fails_the_self_test_and_does_not_switch(
    control_plane: FakeControlPlane,
    start_agent: AgentFactory,
    model_a: OnnxModel,
    model_b: OnnxModel,
    enrolled: Path,
) -> None:
    agent = _activate_first(control_plane, start_agent, model_a)

    def skew(manifest: dict[str, Any]) -> None:
        manifest["golden"]["probabilities"][2][0] += 0.01

    control_plane.set_desired(control_plane.publish(2, model_b, edit=skew))
    control_plane.wait_for(lambda c: "failed" in c.phases("churn", 2))
    assert control_plane.phases("churn", 2) == ["downloading", "verifying", "installing", "failed"]
    error = (control_plane.last_status("churn") or {})["error"]
    assert "golden row 2: probability of class 0" in error
    assert _serving(agent) == 1
    current = json.loads((enrolled / "models" / "churn" / "current.json").read_text())
    assert current["release_id"] == 1 and current["slot"] == "slot-a"


def test_a_manifest_other_than_the_desired_one_is_refused(
    control_plane: FakeControlPlane, start_agent: AgentFactory, model_a: OnnxModel
) -> None:
    entry = control_plane.publish(1, model_a)
    entry["manifest_digest"] = "sha256:" + "0" * 64
    control_plane.set_desired(entry)
    start_agent()
    control_plane.wait_for(lambda c: "failed" in c.phases("churn", 1))
    error = (control_plane.last_status("churn") or {})["error"]
    assert error.startswith("manifest digest mismatch: expected sha256:000")


def test_a_new_release_goes_to_the_other_slot_and_reuses_cached_blobs(
    control_plane: FakeControlPlane,
    start_agent: AgentFactory,
    model_a: OnnxModel,
    model_b: OnnxModel,
    enrolled: Path,
) -> None:
    agent = _activate_first(control_plane, start_agent, model_a)
    control_plane.set_desired(control_plane.publish(2, model_b))
    control_plane.wait_for(lambda c: "active" in c.phases("churn", 2))
    current = json.loads((enrolled / "models" / "churn" / "current.json").read_text())
    assert (current["slot"], current["release_id"]) == ("slot-b", 2)
    assert _http(agent, "GET", "/v1/models/churn")[1]["release_id"] == 2

    # back to model A under a new release: its blob is already held, so it is not fetched
    fetched_a = control_plane.count(f"/api/v1/devices/self/blobs/{model_a.digest}")
    control_plane.set_desired(control_plane.publish(3, model_a))
    control_plane.wait_for(lambda c: "active" in c.phases("churn", 3))
    assert control_plane.count(f"/api/v1/devices/self/blobs/{model_a.digest}") == fetched_a == 1
    current = json.loads((enrolled / "models" / "churn" / "current.json").read_text())
    assert (current["slot"], current["release_id"]) == ("slot-a", 3)


def test_a_restarted_agent_serves_its_active_slot_before_any_sync(
    control_plane: FakeControlPlane, start_agent: AgentFactory, model_a: OnnxModel
) -> None:
    first = _activate_first(control_plane, start_agent, model_a)
    first.close()
    requests_before = len(control_plane.requests)
    control_plane.desired = []  # a server that no longer says anything useful
    second = Agent(first.state_dir, poll_wait_s=1, heartbeat_s=60)
    second._api.start()  # the local API only: no sync thread, no heartbeat
    try:
        second.load_installed()
        status, doc = _http(second, "POST", "/v1/models/churn:predict", {"rows": model_a.rows})
        assert status == 200 and doc["release_id"] == 1
        assert [p["label"] for p in doc["predictions"]] == model_a.labels
        assert len(control_plane.requests) == requests_before
    finally:
        second.close()


def test_a_corrupted_slot_is_reported_and_not_served(
    control_plane: FakeControlPlane, start_agent: AgentFactory, model_a: OnnxModel
) -> None:
    first = _activate_first(control_plane, start_agent, model_a)
    first.close()
    model_file = first.state_dir / "models" / "churn" / "slot-a" / "model.onnx"
    data = bytearray(model_file.read_bytes())
    data[10] ^= 0x01
    model_file.write_bytes(bytes(data))
    control_plane.set_desired()  # nothing desired: the agent must not repair it silently

    second = start_agent()
    control_plane.wait_for(lambda c: (c.last_status("churn") or {}).get("phase") == "failed")
    error = (control_plane.last_status("churn") or {})["error"]
    assert "slot-a: model digest mismatch" in error
    assert _http(second, "POST", "/v1/models/churn:predict", {"rows": model_a.rows})[0] == 404
    assert _http(second, "GET", "/v1/health")[1]["status"] == "degraded"


def test_the_agent_keeps_serving_while_the_server_is_down(
    control_plane: FakeControlPlane, model_a: OnnxModel, enrolled: Path
) -> None:
    cp = control_plane
    cp.set_desired(cp.publish(1, model_a))
    agent = Agent(enrolled, poll_wait_s=1, heartbeat_s=0.5)
    agent.start()
    try:
        cp.wait_for(lambda c: "active" in c.phases("churn", 1))
        # point the device at a dead port: every sync now fails to connect
        agent.client._base = "http://127.0.0.1:9"
        for _ in range(3):
            assert (
                _http(agent, "POST", "/v1/models/churn:predict", {"rows": model_a.rows})[0] == 200
            )
    finally:
        agent.close()
