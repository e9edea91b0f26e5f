"""The `farpoint` command line against a fake server, through `make_client`."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from farpoint.cli import main as cli_main
from farpoint.sdk import Client
from farpoint.wire.devices import DeviceModelStatus, DeviceOut
from farpoint.wire.evaluations import EvaluationOut, GateResult
from farpoint.wire.identity import TeamOut

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
runner = CliRunner()


def problem(status: int, title: str, detail: str) -> httpx.Response:
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail}
    return httpx.Response(status, json=body, headers={"content-type": "application/problem+json"})


def evaluation(model: str) -> EvaluationOut:
    auc = 0.91 if model.startswith("good") else 0.62
    gates = [
        GateResult(
            name="auc-floor",
            metric="auc",
            op=">=",
            threshold=0.8,
            value=auc,
            passed=auc >= 0.8,
            reason="auc 0.91 >= 0.8" if auc >= 0.8 else "auc 0.62 is below 0.8",
        ),
        GateResult(
            name="size", metric="size_mb", op="<=", threshold=5, value=0.1, passed=True, reason="ok"
        ),
    ]
    return EvaluationOut(
        id=12,
        model=model,
        dataset="vitals@2",
        policy="ward@1",
        metrics={"auc": auc},
        group_metrics={},
        gates=gates,
        passed=all(g.passed for g in gates),
        created_by="ada",
        created_at=NOW,
    )


class FakeServer:
    """The endpoints the commands under test call."""

    def __init__(self) -> None:
        self.bodies: list[Any] = []

    def handle(self, request: httpx.Request) -> httpx.Response:
        path, method = request.url.path.removeprefix("/api/v1"), request.method
        if request.headers.get("authorization") != "Bearer good-token":
            return problem(401, "Not authenticated", "the token was revoked")
        if (method, path) == ("POST", "/evaluations"):
            body = json.loads(request.read())
            self.bodies.append(body)
            if body["policy"].startswith("missing"):
                return problem(404, "Not found", f"policy {body['policy']!r} does not exist")
            return httpx.Response(201, json=evaluation(body["model"]).model_dump(mode="json"))
        if (method, path) == ("GET", "/teams"):
            teams = [TeamOut(id=1, name="icu", created_at=NOW).model_dump(mode="json")]
            return httpx.Response(200, json={"items": teams, "next_cursor": None})
        if (method, path) == ("GET", "/devices"):
            device = DeviceOut(
                id="d-1",
                name="bed-1",
                labels={"ward": "a"},
                hardware={},
                key_id="k",
                enrolled_at=NOW,
                last_seen_at=NOW,
                online=True,
                models=[DeviceModelStatus(model="risk", release_id=2, phase="active")],
                heartbeat={},
            )
            items = [device.model_dump(mode="json")]
            return httpx.Response(200, json={"items": items, "next_cursor": None})
        if (method, path) == ("POST", "/datasets/vitals/versions"):
            self.bodies.append(request.read())
            return problem(422, "Invalid input", "unknown column role for 'age': 'featur'")
        return problem(404, "Not found", f"no route {method} {path}")


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> FakeServer:
    fake = FakeServer()

    def make_client(url: str, token: str | None) -> Client:
        return Client(url, token, transport=httpx.MockTransport(fake.handle))

    monkeypatch.setattr(cli_main, "make_client", make_client)
    monkeypatch.setattr("farpoint.sdk.rollouts.time.sleep", lambda s: None)
    return fake


def farpoint(*args: str) -> Any:
    return runner.invoke(
        cli_main.app, ["--server", "http://farpoint.test", "--token", "good-token", *args]
    )


EVALUATE = ["evaluate", "--dataset", "vitals@2", "--policy", "ward@1"]


def test_evaluate_passes_with_exit_0(server: FakeServer) -> None:
    result = farpoint(*EVALUATE, "--model", "good@1")
    assert result.exit_code == 0, result.output
    assert "✓" in result.stdout and "✗" not in result.stdout
    assert "passed" in result.stdout
    assert server.bodies == [{"model": "good@1", "dataset": "vitals@2", "policy": "ward@1"}]


def test_evaluate_exits_1_and_marks_the_failed_gate(server: FakeServer) -> None:
    result = farpoint(*EVALUATE, "--model", "weak@1")
    assert result.exit_code == 1
    assert "✗" in result.stdout
    assert "auc 0.62 is below 0.8" in result.stdout
    assert "failed: auc-floor" in result.stdout


def test_evaluate_json_parses_and_still_exits_1_on_a_failed_gate(server: FakeServer) -> None:
    result = farpoint(*EVALUATE, "--model", "weak@1", "--json")
    assert result.exit_code == 1
    data = json.loads(result.stdout)
    assert data["passed"] is False
    assert [g["passed"] for g in data["gates"]] == [False, True]


def test_a_refused_request_prints_title_and_detail_and_exits_1(server: FakeServer) -> None:
    result = runner.invoke(
        cli_main.app,
        [
            *("--server", "http://farpoint.test", "--token", "good-token", "evaluate"),
            *("--model", "good@1", "--dataset", "vitals@2", "--policy", "missing"),
        ],
    )
    assert result.exit_code == 1
    assert result.stderr.strip() == "error: Not found: policy 'missing' does not exist"
    assert "Traceback" not in result.output


def test_a_revoked_token_is_reported(server: FakeServer) -> None:
    result = runner.invoke(
        cli_main.app, ["--server", "http://farpoint.test", "--token", "old", "team", "list"]
    )
    assert result.exit_code == 1
    assert "error: Not authenticated: the token was revoked" in result.stderr


def test_token_and_server_come_from_the_environment(server: FakeServer) -> None:
    result = runner.invoke(
        cli_main.app,
        ["team", "list", "--json"],
        env={"FARPOINT_URL": "http://farpoint.test", "FARPOINT_TOKEN": "good-token"},
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)[0]["name"] == "icu"


def test_unreachable_server_exits_2_with_the_url(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno 111] Connection refused", request=request)

    monkeypatch.setattr(
        cli_main,
        "make_client",
        lambda url, token: Client(url, token, transport=httpx.MockTransport(refuse)),
    )
    result = runner.invoke(cli_main.app, ["--server", "http://10.1.2.3:8750", "team", "list"])
    assert result.exit_code == 2
    assert "error: cannot reach the Farpoint server at http://10.1.2.3:8750" in result.stderr
    assert "Connection refused" in result.stderr
    assert "Traceback" not in result.output


def test_list_json_is_a_json_list(server: FakeServer) -> None:
    result = farpoint("team", "list", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == [
        {"id": 1, "name": "icu", "created_at": "2025-03-01T12:00:00Z"}
    ]


def test_device_list_shows_each_models_phase(server: FakeServer) -> None:
    result = farpoint("device", "list")
    assert result.exit_code == 0, result.output
    assert "bed-1" in result.stdout
    assert re.search(r"risk: active\s+\(release 2\)|risk: active \(release", result.stdout)
    assert "ward=a" in result.stdout


def test_dataset_upload_sends_roles_and_reports_refusal(server: FakeServer, tmp_path: Path) -> None:
    data = tmp_path / "vitals.csv"
    data.write_text("age,y\n1,0\n")
    roles = tmp_path / "roles.json"
    roles.write_text(json.dumps({"age": "feature", "y": "ignored"}))
    result = farpoint(
        "dataset", "upload", "vitals", str(data), "--roles-file", str(roles), "--role", "y=label"
    )
    assert result.exit_code == 1
    assert "error: Invalid input: unknown column role" in result.stderr
    body = server.bodies[-1]
    assert b'{"age": "feature", "y": "label"}' in body  # the command line wins over the file


def test_malformed_role_is_a_usage_error(server: FakeServer, tmp_path: Path) -> None:
    data = tmp_path / "vitals.csv"
    data.write_text("age\n1\n")
    result = farpoint("dataset", "upload", "vitals", str(data), "--role", "age")
    assert result.exit_code == 2
    assert "is not KEY=VALUE" in result.output
    assert server.bodies == []


def test_bad_reference_is_a_usage_error(server: FakeServer) -> None:
    result = farpoint("model", "show", "risk@latest")
    assert result.exit_code == 2
    assert "NAME@VERSION" in result.output
