"""Lead time from raw data to every device serving, with 5 and 50 devices.

Runs `farpoint demo --devices N --exit --json` for each N and prints the figures. With
--json the last line is one JSON object: {"lead_time_s_5": ..., "lead_time_s_50": ...}.

    .venv/bin/python benchmarks/lead_time.py [--devices 5 50] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time


def run(devices: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="farpoint-lead-") as home:
        env = dict(os.environ, FARPOINT_HOME=home)
        started = time.perf_counter()
        out = subprocess.run(
            [
                sys.executable,
                "-m",
                "farpoint",
                "demo",
                "--devices",
                str(devices),
                "--exit",
                "--json",
            ],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        wall = time.perf_counter() - started
    if out.returncode != 0:
        sys.stderr.write(out.stderr[-4000:])
        raise SystemExit(f"demo with {devices} devices failed (exit {out.returncode})")
    summary: dict[str, object] = json.loads(out.stdout.strip().splitlines()[-1])
    summary["wall_s"] = round(wall, 2)
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, nargs="+", default=[5, 50])
    parser.add_argument("--json", action="store_true", help="end with one JSON line")
    args = parser.parse_args()
    figures: dict[str, float] = {}
    print(f"{'devices':>8} {'serving':>8} {'lead time s':>12} {'rollout s':>10} {'wall s':>8}")
    for n in args.devices:
        s = run(n)
        stages = s["stages_s"]
        assert isinstance(stages, dict)
        print(
            f"{n:>8} {s['devices_serving']:>8} {s['lead_time_s']:>12.2f} "
            f"{stages.get('rollout', 0.0):>10.2f} {s['wall_s']:>8.2f}"
        )
        print("         stages: " + ", ".join(f"{k} {v:.2f}" for k, v in stages.items()))
        figures[f"lead_time_s_{n}"] = float(s["lead_time_s"])  # type: ignore[arg-type]
        figures[f"devices_serving_{n}"] = float(s["devices_serving"])  # type: ignore[arg-type]
    if args.json:
        print(json.dumps(figures))


if __name__ == "__main__":
    main()
