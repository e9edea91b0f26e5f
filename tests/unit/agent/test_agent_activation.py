"""Safe activation against the fake control plane: the journal, the health window with its
automatic rollback, restarts inside a window, the latency budget, the free-disk check.

The clock is the test's (`Clock`): moving it ends a health window without sleeping.
"""

from __future__ import annotations

import json
import platform
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from agent_fakes import Clock, FakeControlPlane, OnnxModel, Release, failing_model, padded_model

from farpoint.agent.enroll import enroll
from farpoint.agent.loop import Agent

pytestmark = pytest.mark.timeout(60)

MODEL = "churn"
AgentFactory = Callable[..., Agent]
WATCH = {"window_s": 300, "min_requests": 5, "max_error_rate": 0.2, "max_crashes": 1}


@pytest.fixture
def start_agent(enrolled: Path, clock: Clock) -> Iterator[AgentFactory]:
    agents: list[Agent] = []

    def start(state_dir: Path = enrolled, **kwargs: Any) -> Agent:
        kwargs.setdefault("resync_s", 1.0)  # re-read the director every second, as a test may need
        agent = Agent(state_dir, poll_wait_s=1, heartbeat_s=0.5, clock=clock, **kwargs)
        agent.start()
        agents.append(agent)
        return agent

    yield start
    for agent in agents:
        agent.close()


def _predict(agent: Agent, rows: list[dict[str, Any]]) -> tuple[int, Any]:
    req = urllib.request.Request(
        f"http://127.0.0.1:{agent.port}/v1/models/{MODEL}:predict",
        data=json.dumps({"rows": rows}).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def _status(cp: FakeControlPlane) -> dict[str, Any]:
    return cp.last_status(MODEL) or {}


def _journal(state: Path) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((state / "models" / MODEL / "journal.json").read_text())
    return doc


def _current(state: Path) -> dict[str, Any] | None:
    path = state / "models" / MODEL / "current.json"
    return json.loads(path.read_text()) if path.exists() else None


def _wait_status(cp: FakeControlPlane, **want: Any) -> dict[str, Any]:
    def ok(c: FakeControlPlane) -> bool:
        last = _status(c)
        return all(last.get(k) == v for k, v in want.items())

    cp.wait_for(ok)
    return _status(cp)


def _first(
    cp: FakeControlPlane, start: AgentFactory, model: OnnxModel, rollout_id: int = 1, **kw: Any
) -> tuple[Agent, Release]:
    agent = start(**kw)
    cp.wait_for(lambda c: bool(c.devices))
    release = cp.release(1, model)
    cp.deploy(release, rollout_id=rollout_id, health=WATCH)
    _wait_status(cp, release_id=1, phase="active", rollout_id=rollout_id)
    return agent, release


def test_a_switch_is_reported_uncommitted_until_its_window_passes(
    control_plane: FakeControlPlane, start_agent: AgentFactory, model_a: OnnxModel, clock: Clock
) -> None:
    cp = control_plane
    agent, _ = _first(cp, start_agent, model_a, rollout_id=7)
    status = _status(cp)
    assert (status["committed"], status["serving_release_id"], status["rollout_id"]) == (
        False,
        1,
        7,
    )
    journal = _journal(agent.state_dir)
    assert journal["step"] == "switched" and journal["release_id"] == 1
    assert journal["window_end"] == pytest.approx(journal["switched_at"] + 300)
    assert journal["rollout_id"] == 7 and journal["previous"] is None

    clock.offset += 301  # the window is over, healthy: nothing went wrong
    status = _wait_status(cp, release_id=1, committed=True)
    assert (status["phase"], status["serving_release_id"]) == ("active", 1)
    assert _journal(agent.state_dir)["step"] == "committed"


def test_inference_failures_in_the_window_roll_back_and_the_rollout_is_not_retried(
    control_plane: FakeControlPlane,
    start_agent: AgentFactory,
    model_a: OnnxModel,
    model_b: OnnxModel,
) -> None:
    cp = control_plane
    agent, _ = _first(cp, start_agent, model_a)
    bad = cp.release(2, failing_model(model_b))
    cp.deploy(bad, rollout_id=2, health=WATCH)
    _wait_status(cp, release_id=2, phase="active", rollout_id=2)  # it passed its self-test

    poison = [{"f0": 500.0, "f1": 0.0, "f2": 0.0}]
    for _ in range(5):
        code, doc = _predict(agent, poison)
        assert code == 500 and doc["type"].endswith("/inference-failed")
    status = _wait_status(cp, release_id=2, phase="rolled_back")
    assert status["serving_release_id"] == 1 and status["committed"] is False
    assert status["error"] == (
        "5 of 5 predict requests failed in the health window: error rate 1.000 is over the "
        "limit of 0.2"
    )
    assert status["rollout_id"] == 2
    code, doc = _predict(agent, model_a.rows)
    assert code == 200 and doc["release_id"] == 1
    assert [p["label"] for p in doc["predictions"]] == model_a.labels
    assert _current(agent.state_dir)["release_id"] == 1  # type: ignore[index]
    journal = _journal(agent.state_dir)
    assert journal["step"] == "rolled_back"
    assert journal["rolled_back"][-1]["rollout_id"] == 2

    # the director still names release 2 under rollout 2: never applied again, even
    # after a restart
    installs = cp.count("/api/v1/devices/self/releases/2/attestations")
    polls = cp.count("/api/v1/devices/self/desired-state")
    cp.wait_for(lambda c: c.count("/api/v1/devices/self/desired-state") >= polls + 2)
    agent.close()
    again = start_agent()
    assert _predict(again, model_a.rows)[1]["release_id"] == 1
    polls = cp.count("/api/v1/devices/self/desired-state")
    cp.wait_for(lambda c: c.count("/api/v1/devices/self/desired-state") >= polls + 2)
    assert cp.count("/api/v1/devices/self/releases/2/attestations") == installs
    assert again.registry.statuses()[0]["phase"] == "rolled_back"

    # a new rollout of the same release earns it a new try
    cp.deploy(bad, rollout_id=3, health=WATCH)
    _wait_status(cp, release_id=2, phase="active", rollout_id=3)
    assert _predict(again, model_b.rows)[1]["release_id"] == 2


def test_the_callers_bad_input_does_not_count_against_the_release(
    control_plane: FakeControlPlane, start_agent: AgentFactory, model_a: OnnxModel, clock: Clock
) -> None:
    cp = control_plane
    agent, _ = _first(cp, start_agent, model_a)
    for _ in range(10):
        code, _doc = _predict(agent, [{"f0": 1.0}])  # missing fields: a 400, the caller's fault
        assert code == 400
    clock.offset += 301
    _wait_status(cp, release_id=1, committed=True)


def test_latency_over_the_windows_limit_rolls_back(
    control_plane: FakeControlPlane,
    start_agent: AgentFactory,
    model_a: OnnxModel,
    model_b: OnnxModel,
) -> None:
    cp = control_plane
    agent, _ = _first(cp, start_agent, model_a)
    cp.deploy(cp.release(2, model_b), rollout_id=2, health={**WATCH, "max_latency_p95_ms": 1e-6})
    _wait_status(cp, release_id=2, phase="active", rollout_id=2)
    for _ in range(5):
        assert _predict(agent, model_b.rows)[0] == 200
    status = _wait_status(cp, release_id=2, phase="rolled_back")
    assert "latency p95 of" in status["error"] and "over the limit of 1e-06 ms" in status["error"]
    assert status["serving_release_id"] == 1


def test_a_failing_first_release_stops_being_served(
    control_plane: FakeControlPlane, start_agent: AgentFactory, model_a: OnnxModel
) -> None:
    cp = control_plane
    agent, _ = _first(cp, start_agent, failing_model(model_a))
    for _ in range(5):
        assert _predict(agent, [{"f0": 500.0, "f1": 0.0, "f2": 0.0}])[0] == 500
    status = _wait_status(cp, release_id=1, phase="failed")
    assert "there is no previous release to return to: churn is not served" in status["error"]
    assert status["serving_release_id"] is None
    assert _predict(agent, model_a.rows)[0] == 404
    assert _current(agent.state_dir) is None


def test_restarts_inside_the_window_count_as_crashes_and_roll_back(
    control_plane: FakeControlPlane,
    start_agent: AgentFactory,
    model_a: OnnxModel,
    model_b: OnnxModel,
) -> None:
    cp = control_plane
    agent, _ = _first(cp, start_agent, model_a)
    cp.deploy(cp.release(2, model_b), rollout_id=2, health=WATCH)
    _wait_status(cp, release_id=2, phase="active", rollout_id=2)
    agent.close()

    second = start_agent()  # one restart: within max_crashes = 1
    assert _journal(second.state_dir)["crashes"] == 1
    assert _predict(second, model_b.rows)[1]["release_id"] == 2
    assert second.registry.statuses()[0]["committed"] is False
    second.close()

    third = start_agent()  # the second: over the limit, rolled back before it serves
    assert _predict(third, model_a.rows)[1]["release_id"] == 1
    status = _wait_status(cp, release_id=2, phase="rolled_back")
    assert status["error"] == (
        "the agent restarted 2 times in the health window (at most 1 allowed)"
    )
    assert status["serving_release_id"] == 1


def test_a_window_that_ended_while_the_agent_was_down_commits_at_start(
    control_plane: FakeControlPlane, start_agent: AgentFactory, model_a: OnnxModel, clock: Clock
) -> None:
    agent, _ = _first(control_plane, start_agent, model_a)
    agent.close()
    clock.offset += 301
    again = _restarted_offline(agent.state_dir, clock)  # decided from the journal alone
    try:
        status = again.registry.statuses()[0]
        assert (status["phase"], status["committed"]) == ("active", True)
        assert _journal(agent.state_dir)["step"] == "committed"
        assert _journal(agent.state_dir)["crashes"] == 0
    finally:
        again.close()


def _restarted_offline(state: Path, clock: Clock) -> Agent:
    """An agent that only loads what is installed: no sync, no heartbeat, no server."""
    agent = Agent(state, clock=clock)
    agent._api.start()  # so that close() can stop it
    agent.load_installed()
    return agent


def _interrupted_after_the_journal(state: Path, step: str) -> None:
    """The files as a kill leaves them between the journal's write and current.json's."""
    journal = _journal(state)
    journal["step"] = step
    journal["reason"] = "testing" if step == "rolled_back" else None
    (state / "models" / MODEL / "journal.json").write_text(json.dumps(journal))
    named = journal["previous"] if step == "switched" else journal["target"]
    (state / "models" / MODEL / "current.json").write_text(json.dumps(named))


@pytest.mark.parametrize("step", ["switched", "rolled_back"])
def test_a_switch_or_rollback_cut_short_is_finished_at_start(
    control_plane: FakeControlPlane,
    start_agent: AgentFactory,
    model_a: OnnxModel,
    model_b: OnnxModel,
    clock: Clock,
    step: str,
) -> None:
    cp = control_plane
    agent, _ = _first(cp, start_agent, model_a)
    cp.deploy(cp.release(2, model_b), rollout_id=2, health=WATCH)
    _wait_status(cp, release_id=2, phase="active", rollout_id=2)
    agent.close()
    _interrupted_after_the_journal(agent.state_dir, step)

    again = _restarted_offline(agent.state_dir, clock)
    try:
        want = 2 if step == "switched" else 1
        active = again.registry.get(MODEL)
        assert active is not None and active.current.release_id == want
        assert _current(agent.state_dir)["release_id"] == want  # type: ignore[index]
        status = again.registry.statuses()[0]
        assert status["phase"] == ("active" if step == "switched" else "rolled_back")
    finally:
        again.close()


def test_a_release_over_its_latency_budget_fails_its_self_test(
    control_plane: FakeControlPlane,
    start_agent: AgentFactory,
    model_a: OnnxModel,
    model_b: OnnxModel,
) -> None:
    cp = control_plane
    agent, _ = _first(cp, start_agent, model_a)

    def budget(manifest: dict[str, Any]) -> None:
        manifest["budgets"] = {"latency_p95_ms": {"default": 1e-6}}

    cp.deploy(cp.release(2, model_b, edit=budget), rollout_id=2)
    error = cp.failure(MODEL, 2)
    assert error.startswith("latency p95 of ")
    assert "single-row predictions of the golden rows is over the budget of 1e-06 ms" in error
    assert f"the default (no budget for hardware profile {platform.machine()})" in error
    assert cp.phases(MODEL, 2) == ["downloading", "verifying", "installing", "failed"]
    assert _predict(agent, model_a.rows)[1]["release_id"] == 1
    assert not (agent.state_dir / "models" / MODEL / "slot-b").exists()  # discarded
    journal = _journal(agent.state_dir)
    assert (journal["step"], journal["release_id"]) == ("failed", 2)


def test_the_budget_of_the_devices_hardware_profile_applies(
    control_plane: FakeControlPlane,
    start_agent: AgentFactory,
    model_a: OnnxModel,
    model_b: OnnxModel,
    tmp_path: Path,
) -> None:
    cp = control_plane
    state = tmp_path / "jetson"
    enroll(cp.url, cp.token(), state, "edge-2", {"hardware-profile": "jetson-orin"})
    agent = start_agent(state)

    def generous_here(manifest: dict[str, Any]) -> None:
        manifest["budgets"] = {"latency_p95_ms": {"default": 1e-6, "jetson-orin": 1e6}}

    def strict_here(manifest: dict[str, Any]) -> None:
        manifest["budgets"] = {"latency_p95_ms": {"default": 1e6, "jetson-orin": 1e-6}}

    cp.deploy(cp.release(1, model_a, edit=generous_here))
    _wait_status(cp, release_id=1, phase="active")
    cp.deploy(cp.release(2, model_b, edit=strict_here))
    error = cp.failure(MODEL, 2)
    assert "over the budget of 1e-06 ms for hardware profile jetson-orin" in error
    assert _predict(agent, model_a.rows)[1]["release_id"] == 1


def test_a_download_that_does_not_fit_on_disk_is_refused_with_the_numbers(
    control_plane: FakeControlPlane, start_agent: AgentFactory, model_a: OnnxModel
) -> None:
    cp = control_plane
    start_agent(free_disk=lambda path: 1000)
    cp.wait_for(lambda c: bool(c.devices))
    cp.deploy(cp.release(1, model_a))
    error = cp.failure(MODEL, 1)
    assert error == (
        f"not enough free disk to download the model: it needs {len(model_a.data)} B plus "
        f"a margin of {16 << 20} B, and the state directory's filesystem has 1000 B free"
    )
    assert cp.count("/api/v1/tuf/image/targets/releases/1/model.onnx") == 0


def test_the_bandwidth_limit_paces_the_download(
    control_plane: FakeControlPlane, start_agent: AgentFactory, model_a: OnnxModel
) -> None:
    cp = control_plane
    big = padded_model(model_a, 96_000)
    rate = 64_000
    agent = start_agent(max_download_bytes_per_s=rate)
    cp.wait_for(lambda c: bool(c.devices))
    cp.deploy(cp.release(1, big))
    cp.wait_for(lambda c: "downloading" in c.phases(MODEL, 1))
    began = time.monotonic()
    _wait_status(cp, release_id=1, phase="installing")
    # a lower bound the token bucket guarantees (its first burst is rate / 16 bytes)
    assert time.monotonic() - began >= (len(big.data) - rate / 16) / rate
    _wait_status(cp, release_id=1, phase="active")
    assert _predict(agent, model_a.rows)[1]["release_id"] == 1


def test_a_release_the_director_names_first_is_applied_with_its_desired_settings(
    control_plane: FakeControlPlane,
    start_agent: AgentFactory,
    model_a: OnnxModel,
    model_b: OnnxModel,
) -> None:
    cp = control_plane
    agent, _ = _first(cp, start_agent, model_a)
    cp.hold_polls = True  # the desired state's change reaches the device late
    cp.deploy(cp.release(2, model_b), rollout_id=5, health={**WATCH, "window_s": 77})
    # a periodic re-sync finds the director naming release 2 before any poll delivers
    # the desired state: the agent asks for it before it applies the release
    _wait_status(cp, release_id=2, phase="active")
    journal = _journal(agent.state_dir)
    assert (journal["rollout_id"], journal["health"]["window_s"]) == (5, 77)
    assert journal["window_end"] == pytest.approx(journal["switched_at"] + 77)
    assert _status(cp)["rollout_id"] == 5
