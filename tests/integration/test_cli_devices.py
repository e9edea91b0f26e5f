"""`farpoint device ...` against the real app in process: tokens for a fleet and with
approval, approve, reject, decommission, diagnostics request and show."""

from __future__ import annotations

import json

from release_fixtures import Device, enrollment_token

from conftest import bearer
from farpoint.core import keys


def _enroll(app, api, token: str, name: str) -> Device:
    key = keys.generate_private_key()
    body = {
        "token": token,
        "name": name,
        "public_key_pem": keys.public_key_pem(key.public_key()).decode(),
    }
    r = api.post("/api/v1/devices/enroll", json=body)
    assert r.status_code == 201, r.text
    out = r.json()
    return Device(app=app, api=api, id=out["device_id"], name=name, key=key, labels=out["labels"])


def test_tokens_approval_and_decommissioning_from_the_cli(app, api, cli, token_for):
    ops = token_for("it-ops")
    enrollment_token(api, ops)  # trust initialized
    api.post(
        "/api/v1/fleets", json={"name": "ward-a", "selector": {"ward": "a"}}, headers=bearer(ops)
    )

    r = cli(ops, "device", "token", "create", "--fleet", "ward-a", "--requires-approval", "--json")
    assert r.exit_code == 0, r.output
    created = json.loads(r.output)
    assert created["fleet"] == "ward-a" and created["requires_approval"] is True
    dev = _enroll(app, api, created["token"], "bed-1")
    assert dev.labels == {"ward": "a"}

    r = cli(ops, "device", "list", "--state", "pending", "--json")
    assert [d["name"] for d in json.loads(r.output)] == ["bed-1"]
    r = cli(ops, "device", "list", "--state", "pending")
    assert "pending" in r.output
    r = cli(ops, "device", "approve", dev.id)
    assert r.exit_code == 0 and "approved: it is now active" in r.output
    r = cli(ops, "device", "approve", dev.id)
    assert r.exit_code == 1 and "not pending" in r.output
    assert json.loads(cli(ops, "device", "list", "--state", "pending", "--json").output) == []

    second = _enroll(app, api, enrollment_token(api, ops, requires_approval=True)["token"], "bed-2")
    r = cli(ops, "device", "reject", second.id)
    assert r.exit_code == 0 and "it is now rejected" in r.output

    r = cli(ops, "device", "decommission", dev.id, "--json")
    assert r.exit_code == 0 and json.loads(r.output)["state"] == "decommissioned"
    r = cli(ops, "device", "show", dev.id)
    assert "decommissioned by u-" in r.output
    r = cli(token_for("business"), "device", "decommission", second.id)
    assert r.exit_code == 1 and "it-ops" in r.output


def test_diagnostics_request_and_show_from_the_cli(app, api, cli, token_for):
    ops = token_for("it-ops")
    dev = _enroll(app, api, enrollment_token(api, ops)["token"], "bed-3")
    r = cli(ops, "device", "diagnostics", "show", dev.id)
    assert r.exit_code == 0 and "no diagnostics yet" in r.output

    r = cli(ops, "device", "diagnostics", "request", dev.id, "--json")
    assert r.exit_code == 0, r.output
    rid = json.loads(r.output)["id"]
    assert dev.get("/api/v1/devices/self/desired-state").json()["diagnostics"] == {"id": rid}
    upload = {
        "logs": [{"at": 1700000000.0, "level": "WARNING", "logger": "farpoint.agent",
                  "message": "sync: link down; retrying"}],
        "errors": [{"at": 1700000001.0, "level": "ERROR", "logger": "farpoint.agent",
                    "message": "release 4 refused: self-test failed"}],
        "dropped_lines": 3,
        "agent": {"device_id": dev.id},
    }  # fmt: skip
    assert dev.post_json(f"/api/v1/devices/self/diagnostics/{rid}", upload).status_code == 204

    r = cli(ops, "device", "diagnostics", "show", dev.id)
    assert r.exit_code == 0, r.output
    assert "sync: link down; retrying" in r.output
    assert "self-test failed" in r.output and "3 older line(s)" in r.output
    r = cli(ops, "device", "diagnostics", "show", dev.id, "--json")
    assert json.loads(r.output)[0]["bundle"]["dropped_lines"] == 3
    # --wait gives up, exit 1, saying why, when the device does not answer in time
    r = cli(ops, "device", "diagnostics", "request", dev.id, "--wait", "0.1", "--json")
    assert r.exit_code == 1 and "has not answered" in r.output
