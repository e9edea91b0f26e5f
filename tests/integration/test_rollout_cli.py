"""`farpoint rollout|fleet history|device desired-state` against the real app in process,
with devices reporting while the CLI waits: the exit codes a pipeline relies on."""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime

import pytest
from release_fixtures import enroll_device, make_release
from rollout_helpers import Clock, fleet, healthy, report

from conftest import bearer

pytestmark = pytest.mark.timeout(120)


def _later(fn, delay_s=0.3, once=None):
    """Run `fn` in a thread after `delay_s` (and once `once()` holds: bounded), while the
    CLI is waiting."""

    def go():
        time.sleep(delay_s)
        deadline = time.monotonic() + 30
        while once is not None and not once() and time.monotonic() < deadline:
            time.sleep(0.05)
        fn()

    worker = threading.Thread(target=go)
    worker.start()
    return worker


@pytest.fixture
def ward(app, api, token_for):
    ops, mlops = token_for("it-ops"), token_for("mlops-engineer")
    devices = [enroll_device(app, api, ops, n) for n in ("a", "b", "c")]
    canary = enroll_device(app, api, ops, "z", labels={"ring": "canary"})
    fleet(api, mlops, "ward")
    return mlops, devices, canary


def test_create_takes_the_strategy_options(app, cli, ward):
    mlops, _devices, _canary = ward
    release = make_release(app)
    r = cli(mlops, "rollout", "create", "--fleet", "ward", "--release", str(release.id),
            "--canary", "1", "--canary-selector", "ring=canary", "--batch-size", "2",
            "--health-window", "0", "--pending-timeout", "10m", "--max-failures", "1",
            "--approve-between-batches", "--json")  # fmt: skip
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["strategy"] == "canary" and [b["size"] for b in out["batches"]] == [1, 2, 1]
    assert out["devices"][0]["device_name"] == "z"
    settings = out["settings"]
    assert settings["canary"] == {"count": 1, "percent": None, "selector": {"ring": "canary"}}
    assert (settings["health"]["window_s"], settings["pending_timeout_s"]) == (0, 600)
    assert settings["max_failures"] == 1 and settings["approve_between_batches"] is True

    r = cli(mlops, "rollout", "create", "--fleet", "ward", "--release", str(release.id),
            "--strategy", "all-at-once", "--batches", "2")  # fmt: skip
    assert r.exit_code == 1
    assert "all-at-once takes neither canary nor batches" in r.stderr


def test_wait_exits_0_1_or_3(app, api, cli, ward):
    mlops, devices, canary = ward
    release = make_release(app)
    args = ["rollout", "create", "--fleet", "ward", "--release", str(release.id)]

    def exists(rollout_id):
        # reports made before the CLI created the rollout would count for the one before
        return lambda: api.get(f"/api/v1/rollouts/{rollout_id}", headers=bearer(mlops)).is_success

    r = cli(mlops, *args, "--wait", "--timeout", "0.2", "--json")
    assert r.exit_code == 3, r.output
    assert "is still running after 0.2 s" in r.stderr

    def all_healthy():
        for dev in [*devices, canary]:
            healthy(dev, release.id)

    worker = _later(all_healthy, once=exists(2))
    r = cli(mlops, *args, "--wait", "--timeout", "30")
    worker.join()
    assert r.exit_code == 0, r.output
    assert "succeeded" in r.stdout and "4/4 healthy" in r.stdout
    assert "z" in r.stdout

    worker = _later(
        lambda: report(canary, release.id, "failed", error="self-test: latency 9 ms > 2 ms"),
        once=exists(3),
    )
    r = cli(mlops, *args, "--canary", "1", "--canary-selector", "ring=canary", "--wait",
            "--timeout", "30", "--json")  # fmt: skip
    worker.join()
    assert r.exit_code == 1, r.output
    assert json.loads(r.stdout)["state"] == "rolled_back"
    assert "error: rollout 3 rolled_back on z" in r.stderr


def test_pause_resume_approve_abort_show_list(app, cli, ward):
    mlops, devices, _canary = ward
    release = make_release(app)
    r = cli(mlops, "rollout", "create", "--fleet", "ward", "--release", str(release.id),
            "--batches", "2", "--approve-between-batches", "--health-window", "0",
            "--json")  # fmt: skip
    rollout_id = json.loads(r.stdout)["id"]
    r = cli(mlops, "rollout", "approve", str(rollout_id))
    assert r.exit_code == 1 and "not awaiting approval" in r.stderr
    for dev in devices[:2]:
        report(dev, release.id, "active")
    shown = cli(mlops, "rollout", "show", str(rollout_id))
    assert shown.exit_code == 0 and "awaiting approval of batch 1" in shown.stdout
    r = cli(mlops, "rollout", "approve", str(rollout_id), "--json")
    assert r.exit_code == 0 and json.loads(r.stdout)["current_batch"] == 1
    assert cli(mlops, "rollout", "pause", str(rollout_id)).exit_code == 0
    r = cli(mlops, "rollout", "resume", str(rollout_id), "--json")
    assert r.exit_code == 0 and json.loads(r.stdout)["state"] == "running"
    r = cli(mlops, "rollout", "abort", str(rollout_id))
    assert r.exit_code == 0 and "aborted" in r.stdout
    r = cli(mlops, "rollout", "abort", str(rollout_id))
    assert r.exit_code == 1 and "is aborted; it cannot be aborted" in r.stderr
    listed = cli(mlops, "rollout", "list", "--state", "aborted")
    assert listed.exit_code == 0 and "ward" in listed.stdout and "2/2" in listed.stdout
    assert "(none)" in cli(mlops, "rollout", "list", "--state", "running").stdout


def test_fleet_history_and_device_desired_state(app, api, cli, ward):
    mlops, devices, _canary = ward
    clock = Clock(app)
    v1, v2 = make_release(app), make_release(app)
    r = cli(mlops, "rollout", "create", "--fleet", "ward", "--release", str(v1.id), "--json")
    first = json.loads(r.stdout)["id"]
    healthy(devices[0], v1.id, first)
    before = datetime.fromtimestamp(clock.now, UTC).isoformat()
    clock.advance(60)
    r = cli(mlops, "rollout", "create", "--fleet", "ward", "--release", str(v2.id), "--json")
    healthy(devices[0], v2.id, json.loads(r.stdout)["id"])

    past = cli(mlops, "fleet", "history", "ward", "--at", before, "--json")
    assert past.exit_code == 0, past.output
    rows = {d["device_name"]: d["releases"] for d in json.loads(past.stdout)["devices"]}
    assert rows == {"a": {"vitals": v1.id}, "b": {}, "c": {}, "z": {}}
    now = cli(mlops, "fleet", "history", "ward")
    assert now.exit_code == 0 and "vitals" in now.stdout
    bad = cli(mlops, "fleet", "history", "ward", "--at", "yesterday")
    assert bad.exit_code == 1 and "not an ISO 8601 instant" in bad.stderr

    why = cli(mlops, "device", "desired-state", devices[0].id)
    assert why.exit_code == 0, why.output
    assert f"vitals: release {v2.id}" in why.stdout and "fleet ward decides" in why.stdout
