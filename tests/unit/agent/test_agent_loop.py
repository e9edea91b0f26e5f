"""The agent's loop against a fake control plane serving a real TUF image repository and
real director metadata: activate, refuse each attack, keep serving, roll back, restart."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from agent_fakes import (
    Clock,
    FakeControlPlane,
    OnnxModel,
    TrustKeys,
    approval,
    evaluation,
)

from farpoint.agent.loop import Agent
from farpoint.core import digest

pytestmark = pytest.mark.timeout(40)

AgentFactory = Callable[[], Agent]


@pytest.fixture
def start_agent(enrolled: Path, clock: Clock) -> Iterator[AgentFactory]:
    agents: list[Agent] = []

    def start() -> Agent:
        agent = Agent(enrolled, poll_wait_s=1, heartbeat_s=0.5, clock=clock, resync_s=1.0)
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
    agent = start()
    cp.wait_for(lambda c: bool(c.devices))
    cp.deploy(cp.release(1, model))
    cp.wait_for(lambda c: "active" in c.phases("churn", 1))
    return agent


def _still_serving_release_1(agent: Agent, model: OnnxModel) -> None:
    assert _serving(agent) == 1
    status, doc = _http(agent, "POST", "/v1/models/churn:predict", {"rows": model.rows})
    assert status == 200 and doc["release_id"] == 1
    assert [p["label"] for p in doc["predictions"]] == model.labels
    current = json.loads((agent.state_dir / "models" / "churn" / "current.json").read_text())
    assert current["release_id"] == 1


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

    current = json.loads((enrolled / "models" / "churn" / "current.json").read_text())
    assert current["release_id"] == 1 and current["slot"] == "slot-a"
    assert current["model_digest"] == model_a.digest
    assert current["manifest_digest"] == control_plane.releases[1].manifest_digest
    assert (enrolled / "blobs" / model_a.digest.split(":")[1]).read_bytes() == model_a.data
    # python-tuf's cache, and the director version remembered against replays
    meta = enrolled / "tuf" / "metadata"
    assert {"root.json", "timestamp.json", "snapshot.json", "targets.json", "releases.json"} <= {
        p.name for p in meta.iterdir()
    }
    assert json.loads((enrolled / "director.json").read_text())["version"] == 1
    # every device request was signed, and every signature verified
    assert control_plane.bad_signatures == 0
    # the model was fetched once, from the image repository
    assert control_plane.count("/api/v1/tuf/image/targets/releases/1/model.onnx") == 1
    control_plane.wait_for(
        lambda c: c.reports[-1]["heartbeat"]["models"].get("churn", {}).get("inferences") == 2
    )
    beat = control_plane.reports[-1]["heartbeat"]
    assert beat["rss_bytes"] > 0 and beat["disk_free_bytes"] > 0
    assert beat["models"]["churn"]["release_id"] == 1


def test_tampered_model_bytes_are_refused(
    control_plane: FakeControlPlane,
    start_agent: AgentFactory,
    model_a: OnnxModel,
    model_b: OnnxModel,
) -> None:
    agent = _activate_first(control_plane, start_agent, model_a)
    tampered = bytearray(model_b.data)
    tampered[-1] ^= 0xFF
    control_plane.deploy(control_plane.release(2, model_b, served=bytes(tampered)))
    error = control_plane.failure("churn", 2)
    got = digest.digest_bytes(bytes(tampered))
    assert error.startswith("model sha256 differs from the director's")
    assert got in error and model_b.digest in error
    _still_serving_release_1(agent, model_a)
    # nothing unverified entered the cache, and no partial file is kept to resume from
    blobs = agent.state_dir / "blobs"
    assert sorted(p.name for p in blobs.iterdir()) == [model_a.digest.split(":")[1]]
    assert _http(agent, "GET", "/v1/health")[1]["status"] == "degraded"


def test_the_same_refused_release_is_not_retried_in_a_tight_loop(
    control_plane: FakeControlPlane,
    start_agent: AgentFactory,
    model_a: OnnxModel,
    model_b: OnnxModel,
) -> None:
    _activate_first(control_plane, start_agent, model_a)
    tampered = model_b.data[:-1] + bytes([model_b.data[-1] ^ 1])
    control_plane.deploy(control_plane.release(2, model_b, served=tampered))
    control_plane.failure("churn", 2)
    fetches = control_plane.count("/api/v1/tuf/image/targets/releases/2/model.onnx")
    polls = control_plane.count("/api/v1/devices/self/desired-state")
    control_plane.wait_for(lambda c: c.count("/api/v1/devices/self/desired-state") >= polls + 3)
    assert control_plane.count("/api/v1/tuf/image/targets/releases/2/model.onnx") == fetches == 1
    # the director is still fetched every re-sync period (1 s here)
    assert control_plane.count("/api/v1/tuf/director/targets.json") >= 3


def test_an_unchanged_desired_state_does_not_re_read_the_director_every_poll(
    control_plane: FakeControlPlane, enrolled: Path, clock: Clock, model_a: OnnxModel
) -> None:
    """At the default re-sync period a fleet at rest costs the server polls, not a TUF
    refresh and a director per device per poll."""
    agent = Agent(enrolled, poll_wait_s=0, heartbeat_s=0.5, clock=clock)
    agent.start()
    try:
        control_plane.wait_for(lambda c: bool(c.devices))
        control_plane.deploy(control_plane.release(1, model_a))
        control_plane.wait_for(lambda c: "active" in c.phases("churn", 1))
        directors = control_plane.count("/api/v1/tuf/director/targets.json")
        polls = control_plane.count("/api/v1/devices/self/desired-state")
        control_plane.wait_for(lambda c: c.count("/api/v1/devices/self/desired-state") >= polls + 4)
        assert control_plane.count("/api/v1/tuf/director/targets.json") == directors
    finally:
        agent.close()


def test_release_metadata_signed_by_an_unknown_key_is_refused(
    control_plane: FakeControlPlane,
    start_agent: AgentFactory,
    model_a: OnnxModel,
    model_b: OnnxModel,
    trust_keys: TrustKeys,
) -> None:
    agent = _activate_first(control_plane, start_agent, model_a)
    release = control_plane.release(2, model_b, signer=trust_keys.rogue)
    control_plane.deploy(release)
    error = control_plane.failure("churn", 2)
    assert error.startswith("image repository refused") and "releases" in error
    _still_serving_release_1(agent, model_a)
    assert control_plane.count("/api/v1/tuf/image/targets/releases/2/") == 0


def test_a_release_only_the_director_names_is_refused(
    control_plane: FakeControlPlane,
    start_agent: AgentFactory,
    model_a: OnnxModel,
    model_b: OnnxModel,
) -> None:
    # all online keys compromised: the server directs a release no release manager signed
    agent = _activate_first(control_plane, start_agent, model_a)
    control_plane.deploy(control_plane.release(2, model_b, in_image=False))
    error = control_plane.failure("churn", 2)
    assert error == "image repository has no target releases/2/manifest.json"
    _still_serving_release_1(agent, model_a)


def test_replayed_older_director_metadata_is_refused(
    control_plane: FakeControlPlane,
    start_agent: AgentFactory,
    model_a: OnnxModel,
    model_b: OnnxModel,
) -> None:
    cp = control_plane
    agent = _activate_first(cp, start_agent, model_a)
    r1 = cp.releases[1]
    cp.deploy(cp.release(2, model_b))
    cp.wait_for(lambda c: "active" in c.phases("churn", 2))
    device_id = agent.identity.device_id
    old = cp.director_history[device_id][0]  # version 1, naming release 1
    cp.serve_director(old, r1)
    error = cp.failure("churn", 1)
    assert error == "director metadata version 1 is older than the accepted 2: a replay"
    assert _serving(agent) == 2


def test_a_newer_director_version_naming_an_older_release_is_a_rollback(
    control_plane: FakeControlPlane,
    start_agent: AgentFactory,
    model_a: OnnxModel,
    model_b: OnnxModel,
) -> None:
    cp = control_plane
    agent = _activate_first(cp, start_agent, model_a)
    cp.deploy(cp.release(2, model_b))
    cp.wait_for(lambda c: "active" in c.phases("churn", 2))
    cp.deploy(cp.releases[1])  # version 3 names release 1 again
    cp.wait_for(lambda c: (c.last_status("churn") or {}).get("release_id") == 1)
    cp.wait_for(lambda c: (c.last_status("churn") or {}).get("phase") == "active")
    _still_serving_release_1(agent, model_a)
    assert json.loads((agent.state_dir / "director.json").read_text())["version"] == 3
    # release 1's model was still held: not downloaded again
    assert cp.count("/api/v1/tuf/image/targets/releases/1/model.onnx") == 1


def test_a_held_blob_damaged_on_disk_is_fetched_again_on_rollback(
    control_plane: FakeControlPlane,
    start_agent: AgentFactory,
    model_a: OnnxModel,
    model_b: OnnxModel,
) -> None:
    cp = control_plane
    agent = _activate_first(cp, start_agent, model_a)
    cp.deploy(cp.release(2, model_b))
    cp.wait_for(lambda c: "active" in c.phases("churn", 2))
    held = agent.state_dir / "blobs" / digest.hex_of(model_a.digest)
    damaged = held.with_name("damaged")
    damaged.write_bytes(b"not the model")
    damaged.replace(held)  # the slot-a hard link keeps the old bytes; the cache entry is bad
    cp.deploy(cp.releases[1])
    cp.wait_for(lambda c: (c.last_status("churn") or {}).get("release_id") == 1)
    cp.wait_for(lambda c: (c.last_status("churn") or {}).get("phase") == "active")
    _still_serving_release_1(agent, model_a)
    assert cp.count("/api/v1/tuf/image/targets/releases/1/model.onnx") == 2
    assert digest.digest_file(held) == model_a.digest


def test_expired_director_metadata_is_refused_by_the_device_clock(
    control_plane: FakeControlPlane,
    start_agent: AgentFactory,
    model_a: OnnxModel,
    model_b: OnnxModel,
    clock: Clock,
) -> None:
    cp = control_plane
    agent = _activate_first(cp, start_agent, model_a)
    expires = clock.dt(3600)
    clock.offset = 2 * 3600  # the device (and the fake) are two hours later
    cp.deploy(cp.release(2, model_b), expires=expires)
    error = cp.failure("churn", 2)
    assert error.startswith(f"director metadata expired at {expires.isoformat()}")
    _still_serving_release_1(agent, model_a)


def test_an_expired_timestamp_of_a_frozen_repository_is_refused(
    control_plane: FakeControlPlane,
    start_agent: AgentFactory,
    model_a: OnnxModel,
    model_b: OnnxModel,
    clock: Clock,
) -> None:
    cp = control_plane
    agent = _activate_first(cp, start_agent, model_a)
    release = cp.release(2, model_b)  # signed now; then nobody re-signs the timestamp
    clock.offset = 2 * 86400
    cp.deploy(release)  # the director itself is fresh
    error = cp.failure("churn", 2)
    assert error.startswith("image repository refused") and "timestamp" in error
    assert "expired" in error
    _still_serving_release_1(agent, model_a)


def test_another_devices_director_metadata_is_refused(
    control_plane: FakeControlPlane,
    start_agent: AgentFactory,
    model_a: OnnxModel,
    model_b: OnnxModel,
) -> None:
    cp = control_plane
    agent = _activate_first(cp, start_agent, model_a)
    cp.deploy(cp.release(2, model_b), for_device="dev-someone-else")
    error = cp.failure("churn", 2)
    assert error == (
        f"director metadata is for device 'dev-someone-else', not {agent.identity.device_id!r}"
    )
    _still_serving_release_1(agent, model_a)


@pytest.mark.parametrize("announced", [True, False], ids=["content-length", "endless"])
def test_a_model_larger_than_declared_is_cut_off(
    control_plane: FakeControlPlane,
    start_agent: AgentFactory,
    model_a: OnnxModel,
    model_b: OnnxModel,
    announced: bool,
) -> None:
    cp = control_plane
    agent = _activate_first(cp, start_agent, model_a)
    release = cp.release(2, model_b, served=model_b.data + b"\0" * 100_000)
    if not announced:
        cp.endless.add(release.model_path)
    cp.deploy(release)
    error = cp.failure("churn", 2)
    assert error.startswith(f"model target is larger than its declared {len(model_b.data)} B")
    _still_serving_release_1(agent, model_a)
    assert not any(p.name.endswith(".partial") for p in (agent.state_dir / "blobs").iterdir())


POLICY_CASES = {
    "missing-mlops-approval": (
        lambda k, r: [
            evaluation(k.dana, r.model.digest),
            approval(k.dana, r.manifest_digest, "data-scientist"),
        ],
        "trust policy not met: needs 1 approval by mlops-engineer, has 0; "
        "needs 2 distinct approvers, has 1",
    ),
    "approval-by-the-author": (
        lambda k, r: [
            evaluation(k.dana, r.model.digest),
            approval(k.dana, r.manifest_digest, "data-scientist"),
            approval(k.alex, r.manifest_digest, "mlops-engineer"),
        ],
        "trust policy not met: needs 1 approval by mlops-engineer, has 0; "
        "needs 2 distinct approvers, has 1",
    ),
    "approval-by-an-unbound-key": (
        lambda k, r: [
            evaluation(k.dana, r.model.digest),
            approval(k.dana, r.manifest_digest, "data-scientist"),
            approval(k.eve, r.manifest_digest, "mlops-engineer"),
        ],
        "trust policy not met: needs 1 approval by mlops-engineer, has 0; "
        "needs 2 distinct approvers, has 1",
    ),
    "approval-in-a-role-the-key-is-not-bound-to": (
        lambda k, r: [
            evaluation(k.dana, r.model.digest),
            approval(k.dana, r.manifest_digest, "data-scientist"),
            approval(k.dana, r.manifest_digest, "mlops-engineer"),
        ],
        "trust policy not met: needs 1 approval by mlops-engineer, has 0; "
        "needs 2 distinct approvers, has 1",
    ),
    "no-passed-evaluation": (
        lambda k, r: [
            evaluation(k.dana, r.model.digest, "FAILED"),
            approval(k.dana, r.manifest_digest, "data-scientist"),
            approval(k.omar, r.manifest_digest, "mlops-engineer"),
        ],
        "trust policy not met: needs a passed evaluation of",
    ),
}


@pytest.mark.parametrize("case", sorted(POLICY_CASES))
def test_a_release_that_does_not_meet_the_trust_policy_is_refused(
    control_plane: FakeControlPlane,
    start_agent: AgentFactory,
    model_a: OnnxModel,
    model_b: OnnxModel,
    trust_keys: TrustKeys,
    case: str,
) -> None:
    cp = control_plane
    agent = _activate_first(cp, start_agent, model_a)
    build, expected = POLICY_CASES[case]
    cp.deploy(cp.release(2, model_b, attestations=lambda r: build(trust_keys, r)))
    error = cp.failure("churn", 2)
    assert error.startswith(expected)
    _still_serving_release_1(agent, model_a)
    # refused before a byte of the model was fetched
    assert cp.count("/api/v1/tuf/image/targets/releases/2/model.onnx") == 0


def test_a_golden_mismatch_fails_the_self_test_and_does_not_switch(
    control_plane: FakeControlPlane,
    start_agent: AgentFactory,
    model_a: OnnxModel,
    model_b: OnnxModel,
) -> None:
    agent = _activate_first(control_plane, start_agent, model_a)

    def skew(manifest: dict[str, Any]) -> None:
        manifest["golden"]["probabilities"][2][0] += 0.01

    control_plane.deploy(control_plane.release(2, model_b, edit=skew))
    error = control_plane.failure("churn", 2)
    assert control_plane.phases("churn", 2) == ["downloading", "verifying", "installing", "failed"]
    assert "golden row 2: probability of class 0" in error
    _still_serving_release_1(agent, model_a)


def test_a_new_release_goes_to_the_other_slot_and_a_broken_download_resumes(
    control_plane: FakeControlPlane,
    start_agent: AgentFactory,
    model_a: OnnxModel,
    model_b: OnnxModel,
    enrolled: Path,
) -> None:
    cp = control_plane
    agent = _activate_first(cp, start_agent, model_a)
    # a download cut off earlier left the first half behind
    half = len(model_b.data) // 2
    partial = enrolled / "blobs" / f".{model_b.digest.split(':')[1]}.partial"
    partial.write_bytes(model_b.data[:half])
    cp.deploy(cp.release(2, model_b))
    cp.wait_for(lambda c: "active" in c.phases("churn", 2))
    current = json.loads((enrolled / "models" / "churn" / "current.json").read_text())
    assert (current["slot"], current["release_id"]) == ("slot-b", 2)
    assert _http(agent, "GET", "/v1/models/churn")[1]["release_id"] == 2
    gets = [h for _, p, h in cp.requests if p.endswith("releases/2/model.onnx")]
    assert len(gets) == 1 and gets[0].get("Range") == f"bytes={half}-"
    assert not partial.exists()
    # the slot shares the verified blob's bytes (one copy, hashed once)
    slot_model = enrolled / "models" / "churn" / "slot-b" / "model.onnx"
    assert slot_model.read_bytes() == model_b.data


def test_a_restarted_agent_serves_its_active_slot_before_any_sync(
    control_plane: FakeControlPlane, start_agent: AgentFactory, model_a: OnnxModel, clock: Clock
) -> None:
    first = _activate_first(control_plane, start_agent, model_a)
    first.close()
    requests_before = len(control_plane.requests)
    second = Agent(first.state_dir, poll_wait_s=1, heartbeat_s=60, clock=clock)
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
    model_file.unlink()  # (the slot shares the blob's inode: replace, as any writer would)
    model_file.write_bytes(bytes(data))
    control_plane.deploy()  # nothing directed: the agent must not repair it silently

    second = start_agent()
    control_plane.wait_for(lambda c: (c.last_status("churn") or {}).get("phase") == "failed")
    error = (control_plane.last_status("churn") or {})["error"]
    assert "slot-a: model digest mismatch" in error
    assert _http(second, "POST", "/v1/models/churn:predict", {"rows": model_a.rows})[0] == 404
    assert _http(second, "GET", "/v1/health")[1]["status"] == "degraded"


def test_the_agent_keeps_serving_while_the_server_is_down(
    control_plane: FakeControlPlane, start_agent: AgentFactory, model_a: OnnxModel
) -> None:
    agent = _activate_first(control_plane, start_agent, model_a)
    # point the device at a dead port: every sync now fails to connect
    agent.client._base = "http://127.0.0.1:9"
    for _ in range(3):
        assert _http(agent, "POST", "/v1/models/churn:predict", {"rows": model_a.rows})[0] == 200


@pytest.mark.parametrize("who", ["none", "unbound"])
def test_a_model_without_a_release_managers_oms_signature_is_refused(
    control_plane: FakeControlPlane,
    start_agent: AgentFactory,
    model_a: OnnxModel,
    model_b: OnnxModel,
    trust_keys: TrustKeys,
    who: str,
) -> None:
    agent = _activate_first(control_plane, start_agent, model_a)
    signer = None if who == "none" else trust_keys.eve.key  # eve: no offline binding
    control_plane.deploy(control_plane.release(2, model_b, model_signer=signer))
    error = control_plane.failure("churn", 2)
    if who == "none":
        assert "releases/2/model.sig" in error
    else:
        assert error.startswith("model signature (OMS) refused") and "not trusted" in error
    _still_serving_release_1(agent, model_a)
    assert control_plane.count("/api/v1/tuf/image/targets/releases/2/model.onnx") == 0
