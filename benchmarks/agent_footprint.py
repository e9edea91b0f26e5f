"""Resident memory and CPU of an idle agent serving a small model, against a bare Python
process that only loads the same model in ONNX Runtime.

The agent is the real `farpoint agent run` process (default settings: 30 s long polls,
10 s heartbeats), enrolled with the agent tests' control plane (a real TUF repository and
director, in a process of its own), after it verified, installed and self-tested the
release and serves it, and once its trust worker (the child process that runs python-tuf
and the signature checks during a sync) has exited, idle. Memory is the sum of VmRSS over
the agent's process and all its descendants, sampled every second through the idle window
(the peak is reported); CPU is the process tree's user+system time over the window's wall
time. The baseline process
imports onnxruntime and opens an InferenceSession on the same model file, nothing else.
Both run with MALLOC_ARENA_MAX=2, as the files in deploy/ start the agent.

    .venv/bin/python benchmarks/agent_footprint.py [--idle-s 60] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from fake_control_plane import ControlPlane, fakes  # benchmarks/ is on sys.path
from proc_stats import cpu_s, rss_mb, tree

from farpoint.agent.enroll import enroll
from farpoint.examples.processes import start_agent

_AS_DEPLOYED = {**os.environ, "MALLOC_ARENA_MAX": "2"}
"""The environment deploy/ runs the agent with (systemd unit, Containerfile); the baseline
process gets the same, so the two differ only in what they run."""


def _small_model() -> fakes.OnnxModel:
    return fakes._train(0)  # a scikit-learn pipeline on three features, as ONNX


def _baseline_rss_mb(model_path: Path) -> float:
    code = (
        "import sys, time, onnxruntime as ort\n"
        f"s = ort.InferenceSession({str(model_path)!r}, providers=['CPUExecutionProvider'])\n"
        "print('ready', flush=True)\n"
        "time.sleep(60)\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=_AS_DEPLOYED
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        time.sleep(1.0)
        return rss_mb([proc.pid])
    finally:
        proc.kill()
        proc.wait()


def run(idle_s: float) -> dict[str, float]:
    cp = ControlPlane(_small_model)
    children = []
    try:
        with tempfile.TemporaryDirectory(prefix="farpoint-footprint-") as tmp:
            state = Path(tmp) / "device"
            enroll(cp.url, cp.first_token, state, "footprint-1", {})
            cp.ask("deploy")
            child, _port = start_agent(state, poll_wait=30, heartbeat_s=10, env=_AS_DEPLOYED)
            children.append(child)
            deadline = time.monotonic() + 60
            while "active" not in cp.ask("phases"):
                if time.monotonic() > deadline or child.proc.poll() is not None:
                    raise RuntimeError(f"the agent did not activate the release:\n{child.tail()}")
                time.sleep(0.2)
            activated = time.monotonic()
            pid = child.proc.pid
            # Idle means after the sync's work: the trust worker (python-tuf and the
            # signature checks, in a child process) exits once it has been idle a while.
            while len(tree(pid)) > 1:
                if time.monotonic() - activated > 120:
                    raise RuntimeError("the agent's trust worker did not exit within 120 s")
                time.sleep(0.5)
            worker_exit_s = time.monotonic() - activated
            time.sleep(2.0)
            samples = []
            cpu_start, wall_start = cpu_s(tree(pid)), time.monotonic()
            requests_start = cp.ask("requests")
            while time.monotonic() - wall_start < idle_s:
                samples.append(rss_mb(tree(pid)))
                time.sleep(1.0)
            wall = time.monotonic() - wall_start
            cpu = cpu_s(tree(pid)) - cpu_start
            requests = cp.ask("requests") - requests_start
            model_path = next((state / "blobs").iterdir())
            baseline = _baseline_rss_mb(model_path)
    finally:
        for child in children:
            child.stop()
        cp.stop()
    rss = max(samples)
    return {
        "idle_s": round(wall, 1),
        "rss_mb": round(rss, 1),
        "rss_mean_mb": round(sum(samples) / len(samples), 1),
        "onnxruntime_baseline_rss_mb": round(baseline, 1),
        "overhead_mb": round(rss - baseline, 1),
        "cpu_percent": round(100.0 * cpu / wall, 3),
        "requests_to_server": requests,
        "trust_worker_exited_after_s": round(worker_exit_s, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--idle-s", type=float, default=60.0)
    parser.add_argument("--json", action="store_true", help="end with one JSON line")
    args = parser.parse_args()
    r = run(args.idle_s)
    print(f"idle agent serving a small model, {r['idle_s']} s:")
    print(f"  resident memory, all its processes (peak):  {r['rss_mb']} MB "
          f"(mean {r['rss_mean_mb']} MB)")  # fmt: skip
    print(f"  bare Python + onnxruntime + the model:      {r['onnxruntime_baseline_rss_mb']} MB")
    print(f"  overhead of the agent:                      {r['overhead_mb']} MB")
    print(f"  CPU, share of one core:                     {r['cpu_percent']} %")
    print(f"  requests to the control plane while idle:   {r['requests_to_server']}")
    print(f"  (the trust worker exited {r['trust_worker_exited_after_s']} s after activation)")
    if args.json:
        print(json.dumps(r))


if __name__ == "__main__":
    main()
