"""The walking skeleton end to end: a real server and two real agents, through the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]


def test_demo_serves_the_release_on_every_device(tmp_path):
    env = dict(os.environ, FARPOINT_HOME=str(tmp_path / "home"))
    out = subprocess.run(
        [sys.executable, "-m", "farpoint", "demo", "--devices", "2", "--exit", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=280,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    assert summary["devices"] == 2
    assert summary["devices_serving"] == 2
    assert summary["release"] == 1
    assert summary["evaluation_passed"] is True
    for stage in (
        "data",
        "train",
        "register",
        "evaluate",
        "attest",
        "release",
        "enroll",
        "rollout",
    ):
        assert summary["stages_s"][stage] > 0
    assert summary["lead_time_s"] > 0
    # A second release over its latency budget: the canary refuses it, the rollout rolls
    # back, the other device never gets it (and still serves release 1, checked below).
    guard = summary["guard"]
    assert guard["release"] == 2 and guard["state"] == "rolled_back"
    assert guard["canary_refused"] == 1 and guard["others_untouched"] == guard["others"] == 1
    assert summary["stages_s"]["guard"] > 0
    # Each device's predictions equal scikit-learn's on the same held-out rows.
    assert summary["rows_compared_with_sklearn"] == 400
    assert summary["max_prob_diff_vs_sklearn"] < 1e-5
    # The chain from a device back to its data verifies on the client: the manifest, two
    # dataset attestations, training, evaluation and two approvals.
    assert summary["trace"] == {"links": 7, "signatures": 7, "verified": True}
    # People see the stages, the console links and a curl for a device.
    assert "Lead time from raw data" in out.stderr
    assert "/console/login?token=" in out.stderr
    assert "curl -s -X POST http://127.0.0.1:" in out.stderr
