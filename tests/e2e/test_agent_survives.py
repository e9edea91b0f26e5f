"""The agent survives the real world: SIGKILL at random points of its updates, and a
control plane stopped in the middle of a download.

Both run against a real `farpoint server` and real `farpoint agent run` processes, in the
world of the attack suite (`tests/security/harness.py`: people with their own keys, an
offline root, releases approved and published by a release manager), so every release an
agent takes here passes the whole chain of trust. A large model version (an MLP of
about 4 MB) makes downloads long enough to interrupt under the agent's bandwidth limit.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import sys
import time
import warnings
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "security"))

from harness import MODEL, ModelVersion, World, build_world
from relay import Relay

from farpoint.examples.processes import Child, start_agent, start_server

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.timeout(240),
    pytest.mark.xdist_group("agent-survives"),
]

KILLS = 20
"""Kills at a random delay after an update began."""
AIMED = 2
"""More kills aimed at the install and self-test (the journal's `installed` step, a
few tens of milliseconds that random delays seldom hit)."""
KILL_RATE = 5_000_000
"""Bytes per second for the agent under SIGKILL: the large model takes most of a second."""
RESUME_RATE = 500_000
"""Bytes per second for the agent whose server is stopped: about eight seconds."""


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    yield from build_world(tmp_path_factory.mktemp("survive"))


@pytest.fixture(scope="module")
def large_release(world: World) -> int:
    """A release of a wide MLP (about 4 MB of ONNX), evaluated, approved and published."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    from farpoint.examples import vitals

    dana = world.people["dana"]
    ds = dana.client
    data = ds.load_dataset("vitals@1")
    run = ds.log_run(
        name="wide", params={"hidden": [1024, 1024]}, metrics={}, datasets=["vitals@1"]
    )
    model = vitals.train_model(data, seed=7)
    model.set_params(
        classifier=MLPClassifier(hidden_layer_sizes=(1024, 1024), max_iter=3, random_state=1)
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(data[vitals.FEATURES], data[vitals.LABEL])
    mv = ds.register_sklearn_model(
        MODEL, model, data, vitals.FEATURES, run_id=run.id, label_column=vitals.LABEL
    )
    evaluation = ds.evaluate(mv.ref, "holdout@1", "lenient")
    assert evaluation.passed, evaluation.gates
    ds.attest_evaluation(evaluation.id, dana.key)
    world.versions.append(ModelVersion(mv.ref, mv.digest, evaluation.id))
    return world.release(len(world.versions))


# -- what the device holds and serves ------------------------------------------------------


def _sha256(path: Path) -> str:
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


def _verified_on_disk(world: World, state: Path) -> int:
    """The release current.json names, after checking its slot byte for byte against the
    release the server signed: the manifest's digest, the model's digest, and theirs."""
    model_dir = state / "models" / MODEL
    current = json.loads((model_dir / "current.json").read_text())
    slot = model_dir / current["slot"]
    release = world.admin.get_release(current["release_id"])
    assert _sha256(slot / "manifest.json") == current["manifest_digest"] == release.manifest_digest
    assert _sha256(slot / "model.onnx") == current["model_digest"] == release.model_digest
    return int(current["release_id"])


def _served(port: int, world: World) -> int:
    r = httpx.post(
        f"http://127.0.0.1:{port}/v1/models/{MODEL}:predict", json={"rows": world.rows}, timeout=10
    )
    assert r.status_code == 200, r.text
    assert len(r.json()["predictions"]) == len(world.rows)
    return int(r.json()["release_id"])


def _serving_verified(world: World, state: Path, port: int) -> int:
    """The local API answers, with the release whose slot verifies (read around the
    answer, so that a switch in between is seen as one)."""
    for _ in range(20):
        before = _verified_on_disk(world, state)
        served = _served(port, world)
        if before == served == _verified_on_disk(world, state):
            return served
    raise AssertionError("the served release kept changing under the check")


def _journal(state: Path) -> dict[str, Any] | None:
    path = state / "models" / MODEL / "journal.json"
    return json.loads(path.read_text()) if path.exists() else None


def _wait(what: str, check: Any, timeout_s: float, agent: Child | None = None) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        got = check()
        if got:
            return got
        time.sleep(0.02)
    tail = agent.tail(30) if agent else ""
    raise AssertionError(f"{what} within {timeout_s} s\n{tail}")


def _kill(child: Child) -> None:
    os.killpg(child.proc.pid, signal.SIGKILL)
    child.proc.wait(timeout=10)


def _evict_cache(state: Path) -> None:
    """Empty the blob cache (the slots keep their own links): every update downloads
    again, so kills land in downloads too. Partial downloads stay, to be resumed."""
    for blob in (state / "blobs").iterdir():
        if not blob.name.endswith(".partial"):
            blob.unlink()


def test_sigkill_at_random_points_of_updates_always_leaves_a_verified_release(
    world: World, large_release: int
) -> None:
    """Why a real server: the director, the image repository and the trust policy are the
    ones a device meets in the field, and a killed agent must resume against them.

    Each round deploys the release the device does not serve (alternating a small and the
    large one), waits until the agent's journal shows that update begun, kills the agent
    with SIGKILL after a random delay (so kills land in the download, the switch and the
    health window; a few are aimed at the install and self-test instead), checks the
    slot current.json names on disk, restarts the agent and checks that its local API
    answers with that release. The blob cache is emptied at each kill so that every
    update downloads (the interrupted download itself is kept and resumed).
    """
    small, large = world.good_release, large_release
    world.admin.create_fleet("ward-k", {"ward": "k"})
    device = world.enroll("k", {"ward": "k"}, via=world.base_url)
    state = device.state_dir
    args = ["--max-download-bytes-per-s", str(KILL_RATE)]
    rng = random.Random(int(os.environ.get("FARPOINT_TEST_SEED", "4")))

    def start() -> tuple[Child, int]:
        child, port = start_agent(
            state, poll_wait=2, heartbeat_s=2, env=world.agent_env(), extra_args=args
        )
        world.children.append(child)
        return child, port

    child, port = start()
    try:
        world.rollout(small, "ward-k")
        _wait("the device serves the first release", lambda: _served_or_none(port, world) == small,
              60, child)  # fmt: skip
        steps: Counter[str] = Counter()
        left = {"random": KILLS, "installed": AIMED}
        while left["random"] > 0 or left["installed"] > 0:
            served = _serving_verified(world, state, port)
            target = large if served == small else small
            aim = "random"  # (also when only aimed kills are left but the target is small)
            if target == large and left["installed"] and (not left["random"] or rng.random() < 0.3):
                aim = "installed"  # the large model's install lasts long enough to hit
            left[aim] = max(0, left[aim] - 1)
            world.rollout(target, "ward-k")
            _wait(
                f"the agent began the update to release {target}",
                lambda t=target: (_journal(state) or {}).get("release_id") == t,
                30,
                child,
            )
            if aim == "installed":
                _wait("the install", lambda: (_journal(state) or {}).get("step") != "downloading",
                      30, child)  # fmt: skip
            else:
                time.sleep(rng.uniform(0.0, 1.2))
            _kill(child)
            steps[(_journal(state) or {}).get("step", "none")] += 1
            _verified_on_disk(world, state)
            _evict_cache(state)
            child, port = start()
            _serving_verified(world, state, port)
        print(f"journal steps at the {sum(steps.values())} kills: {dict(steps)}")
        assert sum(steps.values()) >= KILLS + AIMED
        # the kills covered the download, the install and self-test, and the window
        assert steps["downloading"] >= 1 and steps["switched"] >= 1, steps
        assert steps["installed"] >= 1, steps
        # and after it all, an update still goes through to the end
        served = _serving_verified(world, state, port)
        target = large if served == small else small
        world.rollout(target, "ward-k")
        _wait("the last update", lambda: _served_or_none(port, world) == target, 60, child)
        assert _serving_verified(world, state, port) == target
    finally:
        child.stop()


def _served_or_none(port: int, world: World) -> int | None:
    try:
        return _served(port, world)
    except (httpx.HTTPError, AssertionError):
        return None


def test_a_download_resumes_where_it_was_after_the_server_restarts(
    world: World, large_release: int
) -> None:
    """The agent reaches the server through a byte-counting relay (tests/e2e/relay.py).
    While the large model downloads at 500 kB/s, the control plane goes away: the link is
    cut and the server stopped (SIGTERM); then the server starts again on its port with
    the same home, and the link comes back. The agent must ask for the rest with
    `Range: bytes=N-` from what it holds, and in all receive the model about once (plus
    at most the one chunk it was reading when the link broke)."""
    port = int(world.base_url.rsplit(":", 1)[1])
    relay = Relay(port)
    try:
        world.admin.create_fleet("ward-c", {"ward": "c"})
        device = world.enroll("c", {"ward": "c"}, via=relay.url)
        state = device.state_dir
        agent, _ = start_agent(
            state, poll_wait=2, heartbeat_s=2, env=world.agent_env(),
            extra_args=["--max-download-bytes-per-s", str(RESUME_RATE)],
        )  # fmt: skip
        world.children.append(agent)
        release = world.admin.get_release(large_release)
        length = release.manifest["model_size"]
        partial = state / "blobs" / f".{release.model_digest.split(':')[1]}.partial"
        model_path = f"/releases/{large_release}/model.onnx"

        world.rollout(large_release, "ward-c")

        def quarter() -> bool:
            return partial.exists() and partial.stat().st_size >= length // 4

        _wait("a quarter of the model downloaded", quarter, 60, agent)
        relay.down()
        world.server.stop()
        held = partial.stat().st_size
        assert held < length, "the download finished before the server stopped"
        server, _ = start_server(world.home, world.env, console=False, port=port)
        world.server = server
        world.children.append(server)
        relay.up()

        phase, error = world.wait_report(large_release, device="c", timeout_s=90)
        assert (phase, error) == ("active", "")
        blob = state / "blobs" / release.model_digest.split(":")[1]
        assert _sha256(blob) == release.model_digest

        gets = relay.exchanges(model_path)
        assert [(g.method, g.status) for g in gets] == [("GET", 200), ("GET", 206)], gets
        first, resumed = gets
        assert first.range is None and first.body_bytes < length
        assert resumed.range is not None and resumed.range.startswith("bytes=")
        offset = int(resumed.range.removeprefix("bytes=").rstrip("-"))
        assert held <= offset <= first.body_bytes  # from what it held, not from zero
        assert first.body_bytes - offset <= 64 * 1024  # at most the chunk in flight
        assert resumed.body_bytes == length - offset
        assert first.body_bytes + resumed.body_bytes <= length + 64 * 1024
        agent.stop()
    finally:
        relay.close()
