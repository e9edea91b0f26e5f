"""The agent's telemetry reaching a control plane: windows queued on disk, sent oldest
first within the body limit, kept while offline and across restarts, each seq once."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from agent_fakes import Clock, FakeControlPlane, OnnxModel

from farpoint.agent.loop import MAX_REPORT_BYTES, Agent
from farpoint.agent.outbox import Outbox

pytestmark = pytest.mark.timeout(60)

AgentFactory = Callable[[], Agent]


@pytest.fixture
def start_agent(enrolled: Path, clock: Clock) -> Iterator[AgentFactory]:
    agents: list[Agent] = []

    def start() -> Agent:
        agent = Agent(enrolled, poll_wait_s=1, heartbeat_s=0.3, clock=clock)
        agent.start()
        agents.append(agent)
        return agent

    yield start
    for agent in agents:
        agent.close()


def _post(agent: Agent, path: str, body: Any) -> Any:
    req = urllib.request.Request(
        f"http://127.0.0.1:{agent.port}{path}", data=json.dumps(body).encode(), method="POST"
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())


def _serving(cp: FakeControlPlane, start: AgentFactory, model: OnnxModel) -> Agent:
    agent = start()
    cp.wait_for(lambda c: bool(c.devices))
    cp.deploy(cp.release(1, model))
    cp.wait_for(lambda c: "active" in c.phases("churn", 1))
    return agent


def _windows(cp: FakeControlPlane) -> list[dict[str, Any]]:
    return [w for r in cp.reports for w in r.get("telemetry", [])]


def _inferences(windows: list[dict[str, Any]]) -> int:
    return sum(w["models"].get("churn", {}).get("inferences", 0) for w in windows)


def test_windows_reach_the_server_with_counts_feedback_and_resources(
    control_plane: FakeControlPlane, start_agent: AgentFactory, model_a: OnnxModel
) -> None:
    wire = pytest.importorskip("farpoint.wire.devices")
    agent = _serving(control_plane, start_agent, model_a)
    doc = _post(agent, "/v1/models/churn:predict", {"rows": model_a.rows})
    first = doc["predictions"][0]
    _post(
        agent,
        "/v1/feedback",
        {"prediction_id": first["id"], "label": 1, "attributes": {"sex": "F"}},
    )
    control_plane.wait_for(
        lambda c: (
            _inferences(_windows(c)) == len(model_a.rows)
            and any(w["models"].get("churn", {}).get("feedback") for w in _windows(c))
        )
    )
    windows = _windows(control_plane)
    seqs = [w["seq"] for w in windows]
    assert seqs == sorted(set(seqs)) == list(range(seqs[0], seqs[0] + len(seqs)))
    churn = next(w["models"]["churn"] for w in windows if "churn" in w["models"])
    assert churn["release_id"] == 1
    feedback = next(w["models"]["churn"]["feedback"] for w in windows if "churn" in w["models"]
                    and w["models"]["churn"]["feedback"])  # fmt: skip
    assert feedback == [
        {"attribute": "sex", "group": "F", "label": "1", "predicted": str(first["label"]),
         "count": 1}
    ]  # fmt: skip
    assert all(w["resources"]["rss_bytes"] > 0 for w in windows if w["resources"])
    for report in control_plane.reports:
        wire.DeviceStatusReport.model_validate_json(json.dumps(report))
    control_plane.wait_for(lambda c: agent.outbox.pending == 0)


def test_while_offline_windows_queue_and_arrive_later_in_order(
    control_plane: FakeControlPlane, start_agent: AgentFactory, model_a: OnnxModel
) -> None:
    agent = _serving(control_plane, start_agent, model_a)
    control_plane.refuse_status = lambda doc: 503
    delivered_before = {w["seq"] for w in _windows(control_plane)}
    for _ in range(3):  # across several windows
        _post(agent, "/v1/models/churn:predict", {"rows": model_a.rows[:2]})
        pending = agent.outbox.pending
        control_plane.wait_for(lambda c, n=pending: agent.outbox.pending > n)
    assert _inferences(_windows(control_plane)) == 0
    queued = agent.outbox.pending
    assert queued >= 3 and (agent.state_dir / "telemetry").is_dir()
    control_plane.refuse_status = None
    control_plane.wait_for(lambda c: _inferences(_windows(c)) == 6)
    control_plane.wait_for(lambda c: agent.outbox.pending == 0)
    late = [w for w in _windows(control_plane) if w["seq"] not in delivered_before]
    seqs = [w["seq"] for w in late]
    assert len(seqs) >= queued and seqs == list(range(seqs[0], seqs[0] + len(seqs)))
    starts = [w["start"] for w in late]
    assert starts == sorted(starts)  # oldest first


def test_queued_windows_survive_a_restart_and_seqs_go_on(
    control_plane: FakeControlPlane, start_agent: AgentFactory, model_a: OnnxModel
) -> None:
    agent = _serving(control_plane, start_agent, model_a)
    control_plane.refuse_status = lambda doc: 503
    _post(agent, "/v1/models/churn:predict", {"rows": model_a.rows})
    agent.close()  # the open window goes to disk too
    assert agent.outbox.pending >= 1
    highest_sent = max((w["seq"] for w in _windows(control_plane)), default=-1)
    control_plane.refuse_status = None
    start_agent()
    control_plane.wait_for(lambda c: _inferences(_windows(c)) == len(model_a.rows))
    seqs = [w["seq"] for w in _windows(control_plane)]
    assert len(seqs) == len(set(seqs)) and min(s for s in seqs if s > highest_sent) > highest_sent


def test_a_backlog_goes_in_reports_within_the_body_limit(
    control_plane: FakeControlPlane, start_agent: AgentFactory, enrolled: Path
) -> None:
    backlog = Outbox(enrolled / "telemetry")
    for i in range(200):
        backlog.append(
            {"start": f"2026-12-01T00:{i // 60:02d}:{i % 60:02d}+00:00",
             "end": f"2026-12-01T00:{i // 60:02d}:{i % 60:02d}+00:00",
             "models": {}, "resources": {"cpu_percent": 1.0, "pad": float(i)}}
        )  # fmt: skip
    for i in range(40):  # records of ~1.3 KiB each
        backlog.append(
            {"start": "2026-12-01T01:00:00+00:00", "end": "2026-12-01T01:00:00+00:00",
             "models": {f"m{j}": {"release_id": i, "requests": 1, "inferences": 1, "errors": 0,
                                  "input_errors": 0, "latency_ms": [], "predictions": {},
                                  "feedback": [], "confusion": []} for j in range(8)},
             "resources": {}}
        )  # fmt: skip
    start_agent()
    control_plane.wait_for(lambda c: len(_windows(c)) >= 240)
    seqs = [w["seq"] for w in _windows(control_plane)]
    assert seqs[:240] == list(range(240))
    sizes = [len(json.dumps(r, separators=(",", ":"))) for r in control_plane.reports]
    assert max(sizes) <= MAX_REPORT_BYTES
    assert sum(1 for r in control_plane.reports if r.get("telemetry")) >= 2


def test_a_record_the_server_refuses_is_dropped_and_counted_not_retried_forever(
    control_plane: FakeControlPlane, start_agent: AgentFactory, enrolled: Path
) -> None:
    backlog = Outbox(enrolled / "telemetry")
    for i in range(3):
        backlog.append({"start": f"s{i}", "end": "e", "models": {}, "resources": {}})
    # seq 1 is (deliberately) not a valid record for the server
    control_plane.refuse_status = lambda doc: (
        422 if any(w["seq"] == 1 for w in doc.get("telemetry", [])) else None
    )
    start_agent()
    control_plane.wait_for(lambda c: any(r.get("dropped_telemetry") for r in c.reports))
    control_plane.wait_for(lambda c: {0, 2} <= {w["seq"] for w in _windows(c)})
    assert 1 not in {w["seq"] for w in _windows(control_plane)}
    assert (
        next(r["dropped_telemetry"] for r in control_plane.reports if r.get("dropped_telemetry"))
        == 1
    )


def test_the_agents_report_limit_is_the_servers() -> None:
    device_auth = pytest.importorskip("farpoint.server.device_auth")
    assert device_auth.MAX_DEVICE_BODY == MAX_REPORT_BYTES
