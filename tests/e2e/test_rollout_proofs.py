"""Safe rollouts, proven with real processes: a canary that fails its self-test (golden
vectors, or latency budget) stops the rollout at the canary; a release that errors in its
health window is rolled back by the device and the rollout reacts as configured; a
device cut off through a rollout catches up when it returns, and history shows it.

One real `farpoint server` (embedded SQLite) in the world of the attack suite
(`tests/security/harness.py`: people with their own keys, an offline root, releases
approved and published through the chain of trust), and four real `farpoint agent run`
processes in fleet `ward-p`. The fourth reaches the server through a relay that can cut
it off (`relay.py`). The agents run on emulated hardware that flushes subnormal numbers
to zero (`flush_to_zero/`), which is how a sound model fails its golden self-test on a
device while the server, which checked the same golden vectors, had no complaint
(`proof_models.py`). Everything the test does goes through the public API and SDK.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "security"))
sys.path.insert(0, str(Path(__file__).parent))

from harness import APPROVERS, MODEL, Device, ModelVersion, World, build_world
from proof_models import fails_above, golden_for, register_variant, subnormal_sensitive
from relay import Relay

from farpoint.agent.runtime import GOLDEN_TOLERANCE
from farpoint.examples.processes import start_agent

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.timeout(240),
    pytest.mark.xdist_group("rollout-proofs"),
]

FLEET = "ward-p"
PROFILE = "gw-ftz"
"""The devices' `hardware-profile` label: the latency budget's key."""
LABELS = {"ward": "p", "hardware-profile": PROFILE}
NAMES = ("gw-p1", "gw-p2", "gw-p3", "gw-p4")
"""The canary is the first by name; gw-p4 reaches the server through the relay."""
FLUSH_DIR = Path(__file__).parent / "flush_to_zero"
FLUSH_LINE = "subnormal numbers flush to zero on this process"
LIMIT_HEART_RATE = 200.0
"""The health-window release fails on rows over this (the vitals data stay under 120)."""
BUDGET_MS = 0.001
"""A single-row p95 no device reaches (a prediction takes tens of microseconds)."""
POLL_WAIT_S = 2


@dataclass
class Fleet:
    world: World
    relay: Relay
    previous: int
    """The release every device serves before each proof."""
    releases: dict[str, int]
    devices: list[Device] = field(default_factory=list)

    @property
    def mo(self) -> Any:
        return self.world.people["mo"].client

    def start(self, d: Device) -> None:
        env = self.world.agent_env()
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(FLUSH_DIR), env.get("PYTHONPATH")]))
        child, port = start_agent(d.state_dir, poll_wait=POLL_WAIT_S, heartbeat_s=1, env=env)
        self.world.children.append(child)
        d.agent, d.port = child, port


# -- what a device says and holds -------------------------------------------------------------


def _predict(d: Device, rows: list[dict[str, Any]]) -> httpx.Response:
    return httpx.post(
        f"http://127.0.0.1:{d.port}/v1/models/{MODEL}:predict", json={"rows": rows}, timeout=30
    )


def serving(fleet: Fleet, d: Device) -> int:
    """The release the device's local API answers with."""
    r = _predict(d, fleet.world.rows)
    assert r.status_code == 200, r.text
    return int(r.json()["release_id"])


def reported(fleet: Fleet, d: Device) -> dict[str, Any] | None:
    """The device's last status of the model, as the server holds it."""
    for m in fleet.world.admin.get_device(d.id).models:
        if m.model == MODEL:
            return m.model_dump(mode="json")  # type: ignore[no-any-return]
    return None


def _status(fleet: Fleet, d: Device) -> tuple[Any, ...] | None:
    """(release, phase, error, release served) of the device's last status."""
    s = reported(fleet, d)
    return s and (s["release_id"], s["phase"], s["error"], s["serving_release_id"])


def desired(fleet: Fleet, d: Device) -> int | None:
    """The release the device's desired state names (GET /devices/{id}/desired-state)."""
    state = fleet.world.admin.device_desired_state(d.id).state
    return next((m.release_id for m in state.models if m.model == MODEL), None)


def downloaded(fleet: Fleet, d: Device, release_id: int) -> bool:
    """Whether any byte of the release's model reached the device's blob cache."""
    digest = fleet.world.admin.get_release(release_id).model_digest.split(":", 1)[1]
    blobs = d.state_dir / "blobs"
    return (blobs / digest).exists() or (blobs / f".{digest}.partial").exists()


def journal(d: Device) -> dict[str, Any]:
    return json.loads((d.state_dir / "models" / MODEL / "journal.json").read_text())  # type: ignore[no-any-return]


def wait(what: str, check: Callable[[], Any], fleet: Fleet, timeout_s: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            got = check()
        except httpx.TransportError:
            got = None
        if got:
            return got
        time.sleep(0.1)
    logs = "\n".join(
        f"--- {d.name} ---\n{d.agent.tail(15) if d.agent else ''}" for d in fleet.devices
    )
    raise AssertionError(f"{what} within {timeout_s} s\n{logs}\n--- server ---\n"
                         f"{fleet.world.server.tail(15)}")  # fmt: skip


def row(rollout: Any, d: Device) -> Any:
    return next(r for r in rollout.devices if r.device_name == d.name)


# -- the world ----------------------------------------------------------------------------------


def _new_version(world: World, name: str, onnx_bytes: bytes, converted: Any) -> int:
    """Register, evaluate and attest a variant; its index in `world.versions` (1-based)."""
    from farpoint.examples import vitals

    dana = world.people["dana"]
    run = dana.client.log_run(name=name, params={}, metrics={}, datasets=["vitals@1"])
    mv = register_variant(
        dana.client, MODEL, onnx_bytes, converted,
        run_id=run.id, label_column=vitals.LABEL, flavor=name,
    )  # fmt: skip
    evaluation = dana.client.evaluate(mv.ref, "holdout@1", "lenient")
    assert evaluation.passed, evaluation.gates
    dana.client.attest_evaluation(evaluation.id, dana.key)
    world.versions.append(ModelVersion(mv.ref, mv.digest, evaluation.id))
    return len(world.versions)


def _publish(world: World, version: int, budget: dict[str, float] | None = None) -> int:
    mv = world.versions[version - 1]
    mo = world.people["mo"].client
    rid = int(mo.create_release(mv.ref, mv.evaluation_id, latency_budget_ms=budget).id)
    world.approve(rid, *APPROVERS)
    world.publish(rid)
    return rid


def _when_flushed(onnx_bytes: bytes, golden: dict[str, Any], inputs: list[Any]) -> float:
    """The largest difference from the golden probabilities of `onnx_bytes` run by ONNX
    Runtime on a thread of this process that flushes subnormals to zero."""
    import importlib.util

    import numpy as np
    import onnxruntime as ort
    import pandas as pd

    from farpoint.ml.scoring import onnx_feed

    spec = importlib.util.spec_from_file_location("flush_fpu", FLUSH_DIR / "sitecustomize.py")
    assert spec is not None and spec.loader is not None
    fpu = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fpu)
    out: list[float] = []

    def run() -> None:  # the mode is the thread's own: it ends with it
        fpu.flush_subnormals()
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        session = ort.InferenceSession(onnx_bytes, options, providers=["CPUExecutionProvider"])
        _, probabilities = session.run(None, onnx_feed(inputs, pd.DataFrame(golden["rows"])))
        out.append(float(np.max(np.abs(probabilities - np.array(golden["probabilities"])))))

    t = threading.Thread(target=run)
    t.start()
    t.join(30)
    return out[0]


def _releases(world: World) -> dict[str, int]:
    """Published releases: a sound one, one whose outputs need subnormal numbers, one over
    any device's latency budget, one that fails on real traffic."""
    from farpoint.examples import vitals
    from farpoint.ml.onnx_export import convert_sklearn

    data = world.people["dana"].client.load_dataset("vitals@1")
    model = vitals.train_model(data, seed=11)
    converted = convert_sklearn(model, data, vitals.FEATURES)
    sensitive = subnormal_sensitive(converted.onnx_bytes)
    inputs = converted.signature["inputs"]
    # what the devices will see: this processor reproduces the golden outputs, theirs not
    golden = golden_for(sensitive, converted.golden["rows"], inputs)
    assert _when_flushed(sensitive, golden, inputs) > 10 * GOLDEN_TOLERANCE
    assert _when_flushed(converted.onnx_bytes, converted.golden, inputs) <= GOLDEN_TOLERANCE
    subnormal = _new_version(world, "subnormal", sensitive, converted)
    failing = _new_version(
        world, "fails-above", fails_above(converted.onnx_bytes, "heart_rate", LIMIT_HEART_RATE),
        converted,
    )  # fmt: skip
    return {
        "golden": _publish(world, subnormal),
        "latency": _publish(world, 2, {PROFILE: BUDGET_MS}),
        "health": _publish(world, failing),
        "next": _publish(world, 3),
    }


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FARPOINT_ROLLOUT_TICK_S", "1")  # the pending timeout is judged each second
        worlds = build_world(tmp_path_factory.mktemp("proofs"))
        world = next(worlds)
    relay = Relay(int(world.base_url.rsplit(":", 1)[1]))
    try:
        a = world.devices["a"].agent
        assert a is not None
        a.stop()  # the attack suite's device takes no part here
        f = Fleet(world, relay, world.good_release, _releases(world))
        world.admin.create_fleet(FLEET, {"ward": "p"})
        vias = [world.base_url] * 3 + [relay.url]
        with ThreadPoolExecutor(max_workers=4) as pool:
            f.devices = list(pool.map(lambda nv: world.enroll(nv[0], LABELS, via=nv[1]),
                                      zip(NAMES, vias, strict=True)))  # fmt: skip
            list(pool.map(f.start, f.devices))
        for d in f.devices:
            assert d.agent is not None and FLUSH_LINE in d.agent.tail(50), d.agent
        yield f
    finally:
        relay.close()
        worlds.close()


@pytest.fixture
def on_previous(fleet: Fleet) -> Fleet:
    """Every device of the fleet serves `previous`, told so by a rollout that succeeded."""
    rollout = fleet.mo.create_rollout(FLEET, fleet.previous, health={"window_s": 0})
    done = fleet.mo.wait_rollout(rollout.id, timeout_s=60, poll_s=0.2)
    assert done.state == "succeeded", done
    for d in fleet.devices:
        wait(f"{d.name} serves release {fleet.previous}",
             lambda d=d: serving(fleet, d) == fleet.previous, fleet)  # fmt: skip
    return fleet


# -- 1. a canary that fails its self-test ---------------------------------------------------


@dataclass(frozen=True)
class SelfTestCase:
    release: str
    rollback_on_failure: bool
    ends: str
    says: tuple[str, ...]
    """What the canary's reason must contain."""


SELF_TEST_CASES = {
    "golden-mismatch": SelfTestCase(
        "golden", False, "failed", ("golden row", "expected", "(tolerance 0.0001)")
    ),
    "latency-budget": SelfTestCase(
        "latency",
        True,
        "rolled_back",
        (
            "latency p95 of",
            "single-row predictions",
            f"over the budget of {BUDGET_MS} ms",
            f"hardware profile {PROFILE}",
        ),
    ),
}


@pytest.mark.parametrize("case", SELF_TEST_CASES.values(), ids=SELF_TEST_CASES.keys())
def test_a_canary_that_fails_its_self_test_stops_the_rollout_at_the_canary(
    on_previous: Fleet, case: SelfTestCase
) -> None:
    """The canary downloads the release, installs it in its inactive slot and refuses it
    at the self-test (its processor does not reproduce the golden outputs, or its single-row
    latency is over the release's budget for its hardware profile). The rollout stops with
    the canary batch failed; the other batch never starts: its devices are still told the
    previous release, fetched no byte of the new one, and serve the previous one."""
    fleet = on_previous
    release = fleet.releases[case.release]
    canary, *rest = fleet.devices
    rollout = fleet.mo.create_rollout(
        FLEET, release, strategy="canary", canary={"count": 1},
        rollback_on_failure=case.rollback_on_failure,
    )  # fmt: skip
    assert [b.size for b in rollout.batches] == [1, 3]
    done = fleet.mo.wait_rollout(rollout.id, timeout_s=60, poll_s=0.2)

    assert done.state == case.ends, done
    assert done.reason and "exceed max_failures 0" in done.reason
    assert [(b.state, b.failed) for b in done.batches] == [("failed", 1), ("waiting", 0)]
    assert done.failures == 1 and done.current_batch == 0
    why = row(done, canary).error or ""
    assert row(done, canary).phase == "failed" and all(s in why for s in case.says), why
    step = journal(canary)
    assert (step["step"], step["release_id"], step["reason"]) == ("failed", release, why)
    assert downloaded(fleet, canary, release)  # it got as far as the self-test
    assert serving(fleet, canary) == fleet.previous
    if case.rollback_on_failure:  # told its previous release again, it says it serves it
        assert desired(fleet, canary) == fleet.previous
        back = (fleet.previous, "active", None, fleet.previous)
        wait("the canary to report its previous release", lambda: _status(fleet, canary) == back,
             fleet)  # fmt: skip
    else:  # still told the release, it goes on refusing it
        assert desired(fleet, canary) == release
        assert _status(fleet, canary) == (release, "failed", why, fleet.previous)

    for d in rest:
        r = row(done, d)
        assert (r.batch, r.phase, r.assigned_release_id) == (1, "pending", fleet.previous), r
        assert desired(fleet, d) == fleet.previous
        decision = fleet.world.admin.device_desired_state(d.id).decisions[0]
        assert f"batch 1 of rollout {rollout.id} never started" in decision.candidates[0].why
        assert not downloaded(fleet, d, release), f"{d.name} fetched the release"
        assert journal(d)["release_id"] != release
        assert serving(fleet, d) == fleet.previous


# -- 2. errors in the health window ----------------------------------------------------------

HEALTH = {"window_s": 120, "min_requests": 5, "max_error_rate": 0.2, "max_crashes": 1}
"""A window long enough never to end during the test: the error rate decides."""


@pytest.mark.parametrize("rollback_on_failure", [True, False], ids=["rollback", "no-rollback"])
def test_a_release_that_errors_in_its_health_window_is_rolled_back_by_the_device(
    on_previous: Fleet, rollback_on_failure: bool
) -> None:
    """The canary passes the self-test, switches, and serves the release; then the
    application sends rows the model fails on (500 `inference-failed`). Once
    `min_requests` arrived with an error rate over the limit, the agent returns to the
    previous slot by itself and reports `rolled_back` with the reason. The rollout stops:
    `rolled_back` (the canary is told its previous release again) or, without
    `rollback_on_failure`, `failed` (it is still told the new release, and does not try it
    again under this rollout). The other devices never hear of it."""
    fleet = on_previous
    release = fleet.releases["health"]
    canary, *rest = fleet.devices
    rollout = fleet.mo.create_rollout(
        FLEET, release, strategy="canary", canary={"count": 1}, health=HEALTH,
        rollback_on_failure=rollback_on_failure,
    )  # fmt: skip

    def switched() -> bool:
        s = reported(fleet, canary)
        return bool(s and (s["release_id"], s["phase"]) == (release, "active"))

    wait("the canary serves the release in its health window", switched, fleet)
    assert journal(canary)["step"] == "switched"
    assert canary.agent is not None
    activated = f"activated {MODEL} release {release} "
    tries = canary.agent.tail(1000).count(activated)
    assert fleet.mo.get_rollout(rollout.id).state == "running"
    traffic = [dict(fleet.world.rows[0], heart_rate=LIMIT_HEART_RATE + 50)]
    for _ in range(HEALTH["min_requests"]):
        r = _predict(canary, traffic)
        assert r.status_code == 500 and r.json()["type"].endswith("/inference-failed"), r.text
    done = fleet.mo.wait_rollout(rollout.id, timeout_s=30, poll_s=0.2)

    assert done.state == ("rolled_back" if rollback_on_failure else "failed"), done
    assert [(b.state, b.failed) for b in done.batches] == [("failed", 1), ("waiting", 0)]
    why = row(done, canary).error or ""
    assert row(done, canary).phase == "rolled_back", done
    assert "5 of 5 predict requests failed in the health window" in why, why
    assert "over the limit of 0.2" in why
    step = journal(canary)
    assert (step["step"], step["release_id"], step["reason"]) == ("rolled_back", release, why)
    assert step["previous"]["release_id"] == fleet.previous
    # back on the previous release, which answers the same rows
    answer = _predict(canary, traffic)
    assert answer.status_code == 200 and answer.json()["release_id"] == fleet.previous
    assert serving(fleet, canary) == fleet.previous
    if rollback_on_failure:
        assert desired(fleet, canary) == fleet.previous
        assert row(done, canary).assigned_release_id == fleet.previous
    else:
        # still told the release: the device keeps reporting it rolled back, never retries
        assert desired(fleet, canary) == release
        seen = fleet.world.admin.get_device(canary.id).last_seen_at
        wait("two more polls and reports", lambda: fleet.world.admin.get_device(canary.id)
             .last_seen_at > seen + timedelta(seconds=2 * POLL_WAIT_S), fleet)  # fmt: skip
        status = reported(fleet, canary)
        assert status is not None
        assert (status["release_id"], status["phase"]) == (release, "rolled_back"), status
        assert status["serving_release_id"] == fleet.previous
        assert serving(fleet, canary) == fleet.previous
        assert canary.agent.tail(1000).count(activated) == tries

    for d in rest:
        assert (row(done, d).phase, desired(fleet, d)) == ("pending", fleet.previous)
        assert not downloaded(fleet, d, release), f"{d.name} fetched the release"
        assert serving(fleet, d) == fleet.previous


# -- 3. a device offline through a rollout --------------------------------------------------


def _history(fleet: Fleet, at: datetime) -> dict[str, int | None]:
    h = fleet.world.admin.fleet_history(FLEET, at=at)
    return {d.device_name: d.releases.get(MODEL) for d in h.devices}


def test_a_device_cut_off_through_a_rollout_catches_up_when_it_returns(
    on_previous: Fleet,
) -> None:
    """gw-p4 loses its link to the control plane (the relay cuts it) and keeps serving
    its release meanwhile. The rollout delivers to the other three; gw-p4 reports nothing,
    so after `pending_timeout_s` it stops blocking its batch and the rollout succeeds,
    with gw-p4 counted out but still assigned the release. When the link returns the
    agent installs the release by itself and reports it. History tells what ran where
    before the rollout, while gw-p4 was away, and after it came back."""
    fleet = on_previous
    release = fleet.releases["next"]
    *online, away = fleet.devices
    before = datetime.now(UTC)
    fleet.relay.down()
    try:
        rollout = fleet.mo.create_rollout(
            FLEET, release, health={"window_s": 1}, pending_timeout_s=5
        )
        done = fleet.mo.wait_rollout(rollout.id, timeout_s=60, poll_s=0.2)

        assert done.state == "succeeded", done
        [batch] = done.batches
        assert (batch.healthy, batch.timed_out) == (3, 1), batch
        away_row = row(done, away)
        assert (away_row.phase, away_row.timed_out, away_row.healthy) == ("pending", True, False)
        assert away_row.assigned_release_id == release  # it still gets the release
        assert desired(fleet, away) == release
        for d in online:
            assert row(done, d).healthy and row(done, d).committed, row(done, d)
            assert serving(fleet, d) == release
        assert serving(fleet, away) == fleet.previous  # cut off, it serves what it had
        assert not downloaded(fleet, away, release)
        during = datetime.now(UTC)
    finally:
        fleet.relay.up()

    def caught_up() -> bool:
        s = reported(fleet, away)
        return bool(
            s and (s["release_id"], s["phase"], s["committed"]) == (release, "active", True)
        )

    wait("gw-p4 to install and commit the release after it returns", caught_up, fleet)
    assert serving(fleet, away) == release
    after = datetime.now(UTC)
    names = [d.name for d in fleet.devices]
    assert _history(fleet, before) == dict.fromkeys(names, fleet.previous)
    assert _history(fleet, during) == {**dict.fromkeys(names, release), away.name: fleet.previous}
    assert _history(fleet, after) == dict.fromkeys(names, release)
    # the rollout's own record of the device follows it too (and its batch counts)
    after_rollout = fleet.mo.get_rollout(rollout.id)
    assert after_rollout.state == "succeeded"
    assert (after_rollout.batches[0].healthy, after_rollout.batches[0].timed_out) == (4, 0)
    back = row(after_rollout, away)
    assert (back.phase, back.committed, back.timed_out) == ("active", True, False), back
