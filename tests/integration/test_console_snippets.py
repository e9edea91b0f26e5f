"""What the console tells people to paste works against a real agent's local API, and the
AI-engineering view reads on-device latency from the telemetry summary."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "unit" / "agent"))
from agent_fakes import _train, make_manifest

from farpoint.agent.local_api import LocalApi
from farpoint.agent.payloads import parse_manifest
from farpoint.agent.registry import Registry
from farpoint.agent.runtime import load_model
from farpoint.agent.state import CurrentRelease
from farpoint.agent.telemetry import InferenceStats
from farpoint.core.telemetry import LATENCY_BUCKETS
from farpoint.server.telemetry import rules
from farpoint.wire.telemetry import TelemetrySummary

pytestmark = pytest.mark.timeout(60)
app_developer = pytest.importorskip("farpoint.console.pages.app_developer")
ai_engineering = pytest.importorskip("farpoint.console.pages.ai_engineering")


@pytest.fixture(scope="module")
def agent_api() -> Iterator[tuple[LocalApi, InferenceStats, dict]]:
    model = _train(0)
    manifest = make_manifest(7, model)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.onnx"
        path.write_bytes(model.data)
        registry = Registry()
        current = CurrentRelease("churn", "slot-a", 7, "sha256:" + "1" * 64, model.digest, "")
        registry.activate(load_model(path, parse_manifest(manifest)), current)
        stats = InferenceStats()
        api = LocalApi(registry, stats, "127.0.0.1", 0)
        api.start()
        yield api, stats, manifest
        api.stop()


def _bash(snippet: str, port: int, **replace: str) -> dict:
    script = snippet.replace("PORT=8080", f"PORT={port}")
    for old, new in replace.items():
        script = script.replace(old, new)
    out = subprocess.run(
        ["bash", "-c", script], capture_output=True, text=True, timeout=20, check=True
    )
    return json.loads(out.stdout)


def test_the_predict_and_feedback_snippets_work_on_a_device(agent_api) -> None:
    api, stats, manifest = agent_api
    row = manifest["golden"]["rows"][0]
    answer = _bash(app_developer.curl_snippet("churn", row), api.port)
    [prediction] = answer["predictions"]
    assert prediction["label"] == manifest["golden"]["labels"][0]
    label = manifest["classes"][0]
    fed = _bash(app_developer.feedback_snippet(label), api.port, PREDICTION_ID=prediction["id"])
    assert (fed["prediction_id"], fed["label"]) == (prediction["id"], str(label))
    [(_, window)] = stats.close_window()
    assert window["feedback"][0]["attribute"] == "sex" and window["feedback"][0]["count"] == 1


def test_the_ai_engineering_view_shows_latency_bounds_from_the_summary() -> None:
    totals = rules.ModelTotals(
        model="churn", release_id=7, devices=3, windows=9, requests=200, errors=2,
        latency={2: 150, 4: 46, LATENCY_BUCKETS - 1: 4},
    )  # fmt: skip
    now = datetime.now(UTC)
    summary = TelemetrySummary(
        release_id=None, fleet=None, model=None, since=now, until=now, devices=3,
        models=[rules.model_summary(totals)],
    )  # fmt: skip
    [row] = ai_engineering.latency_rows(summary)
    assert (row["release"], row["devices"], row["requests"]) == (7, 3, 200)
    assert (row["p50"], row["p95"], row["p99"]) == ("≤ 0.5", "≤ 2.5", "> 2500")
    assert row["failures"] == "1.00%"
