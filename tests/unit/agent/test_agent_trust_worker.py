"""The trust worker: the agent's verification in a short-lived child process. The agent
activates through it as in process, refusals come back as the same reasons, the
injected clocks hold inside it, it exits when idle and a dead worker is replaced."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from agent_fakes import Clock, FakeControlPlane, OnnxModel, TrustKeys

from farpoint.agent.client import LinkDown
from farpoint.agent.loop import Agent
from farpoint.agent.trust import TrustWorker, WorkerDelivery
from farpoint.agent.trust_worker import serve
from farpoint.agent.trusted import SyncRefused

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def worker(enrolled: Path) -> Iterator[TrustWorker]:
    w = TrustWorker(enrolled, linger_s=2.0, timeout_s=30.0)
    yield w
    w.close()


@pytest.fixture
def start_agent(enrolled: Path, clock: Clock, worker: TrustWorker) -> Iterator[Callable[[], Agent]]:
    agents: list[Agent] = []

    def start() -> Agent:
        agent = Agent(enrolled, poll_wait_s=1, heartbeat_s=0.5, clock=clock, trust_worker=worker)
        agent.start()
        agents.append(agent)
        return agent

    yield start
    for agent in agents:
        agent.close()


def _serving(agent: Agent) -> int | None:
    active = agent.registry.get("churn")
    return None if active is None else active.current.release_id


def test_the_agent_activates_through_the_worker_and_refuses_as_in_process(
    control_plane: FakeControlPlane,
    start_agent: Callable[[], Agent],
    worker: TrustWorker,
    model_a: OnnxModel,
    model_b: OnnxModel,
    trust_keys: TrustKeys,
) -> None:
    cp = control_plane
    agent = start_agent()
    cp.wait_for(lambda c: bool(c.devices))
    cp.deploy(cp.release(1, model_a))
    cp.wait_for(lambda c: "active" in c.phases("churn", 1))
    assert _serving(agent) == 1 and worker.started >= 1
    assert cp.bad_signatures == 0  # the worker signs with the device's key and clock

    cp.deploy(cp.release(2, model_b, signer=trust_keys.rogue))
    error = cp.failure("churn", 2)
    assert error.startswith("image repository refused") and "releases" in error
    assert _serving(agent) == 1
    assert cp.count("/api/v1/tuf/image/targets/releases/2/") == 0


def test_the_trust_clock_holds_inside_the_worker(
    control_plane: FakeControlPlane,
    enrolled: Path,
    worker: TrustWorker,
    model_a: OnnxModel,
) -> None:
    cp = control_plane
    signing = Clock()
    trusting = Clock()
    from farpoint.agent.client import DeviceClient
    from farpoint.agent.state import load_identity

    identity, key = load_identity(enrolled)
    client = DeviceClient(identity.server_url, identity.device_id, key, signing)
    delivery = WorkerDelivery(client, enrolled, worker, signing, trusting)
    release = cp.release(1, model_a)
    cp.deploy(release, expires=trusting.dt(60))
    assert [d.release_id for d in delivery.sync().releases] == [1]
    trusting.offset = 120  # the device's expiry clock is two minutes later: expired
    cp.deploy(release, expires=trusting.dt(-60))
    with pytest.raises(SyncRefused, match="director metadata expired"):
        delivery.sync()


def test_an_idle_worker_exits_and_a_dead_one_is_replaced(
    control_plane: FakeControlPlane,
    enrolled: Path,
    model_a: OnnxModel,
) -> None:
    from farpoint.agent.client import DeviceClient
    from farpoint.agent.state import load_identity

    cp = control_plane
    cp.deploy(cp.release(1, model_a))
    identity, key = load_identity(enrolled)
    client = DeviceClient(identity.server_url, identity.device_id, key, time.time)
    worker = TrustWorker(enrolled, linger_s=0.3, timeout_s=30.0)
    try:
        delivery = WorkerDelivery(client, enrolled, worker, time.time, time.time)
        [directed] = delivery.sync().releases
        first = worker.pid
        assert first is not None
        deadline = time.monotonic() + 10
        while worker.pid is not None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert worker.pid is None  # it exited on its own once idle
        trusted = delivery.verify_release(directed)  # a new one is started for this
        assert trusted.release.manifest["release_id"] == 1 and worker.started == 2
        assert worker.pid is not None and worker.pid != first

        worker._proc.kill()  # type: ignore[union-attr]  # a worker that dies
        worker._proc.wait()  # type: ignore[union-attr]
        assert [d.release_id for d in delivery.sync().releases] == [1]
        assert worker.started == 3
    finally:
        worker.close()


def test_a_worker_that_cannot_start_fails_as_a_link_down(tmp_path: Path) -> None:
    worker = TrustWorker(tmp_path / "not-enrolled", linger_s=1.0, timeout_s=30.0)
    try:
        with pytest.raises(LinkDown, match="exited"):
            worker.call({"op": "sync"})
    finally:
        worker.close()


def test_serve_answers_every_request_and_stops_at_the_end_of_input(
    control_plane: FakeControlPlane, enrolled: Path, model_a: OnnxModel
) -> None:
    control_plane.deploy(control_plane.release(1, model_a))
    requests = [
        json.dumps({"op": "sync"}),
        "not json",
        json.dumps({"op": "nonsense"}),
        json.dumps({"op": "verify", "release": {"model": "churn"}}),
    ]
    stdin = io.StringIO("\n".join(requests) + "\n")
    out = io.StringIO()
    assert serve(enrolled, stdin, out, linger_s=1.0, readable=lambda _s, _t: True) == 0
    answers = [json.loads(line) for line in out.getvalue().splitlines()]
    assert answers[0]["ok"] is True and answers[0]["releases"][0]["release_id"] == 1
    assert answers[1] == {"ok": False, "kind": "internal", "message": answers[1]["message"]}
    assert "not JSON" in answers[1]["message"]
    assert answers[2]["kind"] == "internal" and "unknown op" in answers[2]["message"]
    assert answers[3]["kind"] == "payload" and "missing field" in answers[3]["message"]
