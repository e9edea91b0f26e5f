"""Telemetry end to end: real agent processes count predictions and feedback, queue their
windows, and the real server's summary sums them exactly across devices."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from farpoint.examples import vitals
from farpoint.examples.demo import MODEL, DemoResult, Reporter, run_demo
from farpoint.examples.processes import Child
from farpoint.sdk import Client

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

ROWS_PER_DEVICE = 30


def _exercise(result: DemoResult, children: list[Child], seen: dict[str, Any]) -> None:
    """With server and agents running: predict, post ground truth, read the summary."""
    frame = vitals.generate(n_rows=20_000, seed=7)
    _, holdout = vitals.split(frame, holdout_fraction=0.2, seed=7)
    expected: dict[tuple[str, str], list[int]] = {}  # (sex, label==predicted) tallies
    correct = total = 0
    for k, device in enumerate(result.devices):
        sample = holdout.iloc[k * ROWS_PER_DEVICE : (k + 1) * ROWS_PER_DEVICE]
        rows = [
            {f: (v.item() if hasattr(v, "item") else v) for f, v in r.items()}
            for r in sample[vitals.FEATURES].to_dict(orient="records")
        ]
        base = f"http://127.0.0.1:{device['port']}"
        answer = httpx.post(f"{base}/v1/models/{MODEL}:predict", json={"rows": rows}, timeout=30)
        answer.raise_for_status()
        bad = httpx.post(f"{base}/v1/models/{MODEL}:predict", json={"rows": [{}]}, timeout=30)
        assert bad.status_code == 400
        for p, truth, sex in zip(
            answer.json()["predictions"], sample[vitals.LABEL], sample["sex"], strict=True
        ):
            r = httpx.post(
                f"{base}/v1/feedback",
                json={"prediction_id": p["id"], "label": int(truth), "attributes": {"sex": sex}},
                timeout=30,
            )
            assert r.status_code == 200, r.text
            right = int(p["label"] == int(truth))
            tally = expected.setdefault(("sex", sex), [0, 0])
            tally[0] += 1
            tally[1] += right
            correct += right
            total += 1
    seen["expected_groups"] = expected
    seen["expected_accuracy"] = correct / total
    client = Client(result.base_url, result.tokens["ai-engineer"])
    deadline = time.monotonic() + 60  # the agents' heartbeat is 5 s
    while True:
        summary = client.telemetry_summary(release_id=result.release)
        models = summary.models
        if models and models[0].feedback.count == total:
            break
        if time.monotonic() > deadline:
            raise AssertionError(f"feedback never reached the server: {summary}")
        time.sleep(0.5)
    seen["summary"] = summary
    seen["device"] = client.device_telemetry(client.list_devices()[0].id)


def test_agents_counts_reach_the_servers_summary_exactly(tmp_path) -> None:
    seen: dict[str, Any] = {}
    result = run_demo(
        tmp_path / "demo",
        2,
        Reporter(quiet_stdout=True),
        keep_running=lambda res, children: _exercise(res, children, seen),
    )
    summary = seen["summary"]
    assert summary.devices == 2
    [m] = summary.models
    assert (m.model, m.release_id, m.devices) == (MODEL, result.release, 2)
    # the demo's own check sent 200 rows to each device; we sent 30 more and one bad row
    assert m.inferences == 2 * (200 + ROWS_PER_DEVICE)
    assert (m.requests, m.input_errors, m.errors) == (2 * 3, 2, 0)
    assert sum(m.latency.counts) == 2 * 2 and m.latency.p50_ms is not None
    assert sum(m.predictions.values()) == m.inferences
    fb = m.feedback
    assert fb.count == 2 * ROWS_PER_DEVICE
    assert fb.accuracy == pytest.approx(seen["expected_accuracy"])
    got = {(g.attribute, g.group): [g.count, g.correct] for g in fb.groups}
    assert got == seen["expected_groups"]
    windows = seen["device"].items
    assert windows and all(w.resources.get("rss_bytes", 1) > 0 for w in windows)
    assert [w.seq for w in windows] == sorted({w.seq for w in windows})
