"""Single-row predict through the agent's local API, beside in-process ONNX Runtime and
scikit-learn's `predict` on the same model and the same rows, in one run.

The model is the demo's (`farpoint.examples.vitals`): a scikit-learn pipeline (scaling,
one-hot ward, logistic regression) trained on generated rows, converted to single-file
ONNX by `farpoint.ml.onnx_export` (parity checked), nothing downloaded. The local API is
the agent's own `LocalApi` (stdlib HTTP server: JSON parsing, input checks against the
signed signature, ONNX Runtime, prediction ids, telemetry counting) in a process of its
own, as on a device where the application is another process; the client keeps one
connection alive (`http.client`), sends a pre-encoded `{"rows": [row]}` and parses the
answer. In-process ONNX Runtime runs the same model with the agent's session options on
feeds built beforehand; scikit-learn predicts a one-row DataFrame built beforehand. The
three run interleaved in rounds, so drift on a shared machine hits them alike.

    .venv/bin/python benchmarks/inference.py [--requests 3000] [--rounds 5] [--json]
"""

from __future__ import annotations

import argparse
import http.client
import json
import math
import multiprocessing
import statistics
import time
from multiprocessing.connection import Connection
from typing import Any

import numpy as np


def _model() -> tuple[Any, Any, list[str], list[dict[str, Any]], dict[str, Any]]:
    """(sklearn pipeline, converted ONNX, features, benchmark rows, manifest)."""
    from farpoint.core.digest import digest_bytes
    from farpoint.examples import vitals
    from farpoint.ml.onnx_export import convert_sklearn

    frame = vitals.generate(n_rows=5000, seed=3)
    train, holdout = vitals.split(frame, holdout_fraction=0.2, seed=3)
    pipeline = vitals.train_model(train, seed=3)
    converted = convert_sklearn(pipeline, train, vitals.FEATURES)
    rows = [
        {k: (v.item() if hasattr(v, "item") else v) for k, v in r.items()}
        for r in holdout[vitals.FEATURES].head(500).to_dict(orient="records")
    ]
    manifest = {
        "schema": "farpoint.release-manifest/v1",
        "release_id": 1,
        "model": "deterioration",
        "model_version": 1,
        "model_ref": "deterioration@1",
        "model_digest": digest_bytes(converted.onnx_bytes),
        "model_size": len(converted.onnx_bytes),
        "signature": converted.signature,
        "label_column": vitals.LABEL,
        "classes": converted.classes,
        "golden": converted.golden,
    }
    return pipeline, converted, vitals.FEATURES, rows, manifest


def _serve(onnx_bytes: bytes, manifest: dict[str, Any], conn: Connection) -> None:
    """The device's process: the agent's local API over the model, until told to stop."""
    import tempfile
    from pathlib import Path

    from farpoint.agent.local_api import LocalApi
    from farpoint.agent.payloads import parse_manifest
    from farpoint.agent.registry import Registry
    from farpoint.agent.runtime import load_model
    from farpoint.agent.state import CurrentRelease
    from farpoint.agent.telemetry import InferenceStats

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.onnx"
        path.write_bytes(onnx_bytes)
        parsed = parse_manifest(manifest)
        loaded = load_model(path, parsed)
        loaded.self_test()
        registry = Registry()
        registry.activate(
            loaded,
            CurrentRelease(
                parsed["model"], "slot-a", 1, "sha256:" + "0" * 64, parsed["model_digest"], ""
            ),
        )
        stats = InferenceStats()
        api = LocalApi(registry, stats, "127.0.0.1", 0)
        api.start()
        conn.send(api.port)
        conn.recv()  # stop
        conn.send(stats.snapshot())
        api.stop()


def _ms(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    p99 = ordered[max(0, math.ceil(0.99 * len(ordered)) - 1)]  # nearest rank
    return statistics.median(ordered) * 1e3, p99 * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000, help="timed calls per way")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds")
    parser.add_argument("--warmup", type=int, default=300, help="untimed calls per way")
    parser.add_argument("--json", action="store_true", help="end with one JSON line")
    args = parser.parse_args()

    import onnxruntime as ort
    import pandas as pd

    pipeline, converted, features, rows, manifest = _model()
    specs = {s["name"]: s for s in converted.signature["inputs"]}

    def feeds(row: dict[str, Any]) -> dict[str, np.ndarray]:
        out = {}
        for name, spec in specs.items():
            dtype = object if spec["dtype"] == "string" else np.float32
            out[name] = np.array([[row[name]]], dtype=dtype)
        return out

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(
        converted.onnx_bytes, sess_options=options, providers=["CPUExecutionProvider"]
    )
    outputs = [o.name for o in session.get_outputs()]
    ort_feeds = [feeds(r) for r in rows]
    frames = [pd.DataFrame([r], columns=features) for r in rows]
    bodies = [json.dumps({"rows": [r]}).encode() for r in rows]

    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    device = ctx.Process(target=_serve, args=(converted.onnx_bytes, manifest, child), daemon=True)
    device.start()
    try:
        if not parent.poll(120):
            raise SystemExit("the local API did not start within 120 s")
        port = parent.recv()
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        headers = {"Content-Type": "application/json"}
        path = "/v1/models/deterioration:predict"
        api_labels: dict[int, Any] = {}

        def via_api(i: int) -> None:
            conn.request("POST", path, bodies[i % len(bodies)], headers)
            resp = conn.getresponse()
            doc = json.loads(resp.read())
            if resp.status != 200:
                raise SystemExit(f"the local API answered {resp.status}: {doc}")
            api_labels.setdefault(i % len(bodies), doc["predictions"][0]["label"])

        def via_ort(i: int) -> None:
            session.run(outputs, ort_feeds[i % len(ort_feeds)])

        def via_sklearn(i: int) -> None:
            pipeline.predict(frames[i % len(frames)])

        ways = {"api": via_api, "onnxruntime": via_ort, "sklearn": via_sklearn}
        samples: dict[str, list[float]] = {k: [] for k in ways}
        for fn in ways.values():
            for i in range(args.warmup):
                fn(i)
        per_round = max(1, args.requests // args.rounds)
        clock = time.perf_counter
        for r in range(args.rounds):
            for name, fn in ways.items():
                out = samples[name]
                for i in range(r * per_round, (r + 1) * per_round):
                    t0 = clock()
                    fn(i)
                    out.append(clock() - t0)
        conn.close()
        parent.send("stop")
        counted = parent.recv() if parent.poll(10) else {}
    finally:
        device.join(10)
        if device.is_alive():
            device.kill()

    mismatches = sum(
        1 for i, label in api_labels.items() if label != pipeline.predict(frames[i])[0].item()
    )
    figures: dict[str, Any] = {}
    for name in ways:
        p50, p99 = _ms(samples[name])
        figures[f"{name}_p50_ms"] = round(p50, 4)
        figures[f"{name}_p99_ms"] = round(p99, 4)
    figures["api_overhead_p50_ms"] = round(figures["api_p50_ms"] - figures["onnxruntime_p50_ms"], 4)
    figures["speedup_p50_vs_sklearn"] = round(figures["sklearn_p50_ms"] / figures["api_p50_ms"], 2)
    figures["requests_per_way"] = len(samples["api"])
    figures["label_mismatches_api_vs_sklearn"] = mismatches
    figures["rows_compared"] = len(api_labels)
    figures["api_requests_counted"] = counted.get("deterioration", {}).get("requests", 0)

    print(f"single-row predict, {len(samples['api'])} calls each, {args.rounds} rounds")
    print(f"{'way':<38}{'p50 ms':>10}{'p99 ms':>10}")
    for name, label in (
        ("api", "agent local API (HTTP, keep-alive)"),
        ("onnxruntime", "ONNX Runtime in process"),
        ("sklearn", "scikit-learn predict"),
    ):
        print(f"{label:<38}{figures[f'{name}_p50_ms']:>10.3f}{figures[f'{name}_p99_ms']:>10.3f}")
    print(
        f"labels: {mismatches} of {len(api_labels)} rows differ between the API and "
        f"scikit-learn; the agent counted {figures['api_requests_counted']} requests"
    )
    if args.json:
        print(json.dumps(figures))


if __name__ == "__main__":
    main()
