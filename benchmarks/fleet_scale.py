"""Many simulated devices against one server on the embedded default (SQLite, local blobs).

Each simulated device is the agent's own code (`farpoint.agent.loop.Agent`: its signed
client, status reports with heartbeat and telemetry windows, its sync loop, trusted
delivery and activation), many per process, spread over several worker processes. The
server is a real `farpoint server` process.

Two measurements:

* Check-ins: every device checks in once per `--interval` seconds, at a random phase. A
  check-in is what the agent's heartbeat does (close the telemetry window, send a signed
  status report with heartbeat and the queued window) followed by a desired-state poll
  that the server answers 304 Not Modified. Latency is the time of both requests as the
  device sees it. Server CPU is its user+system time over the window; memory its peak RSS.
* Rollout: `--rollout-devices` of the devices run the agent's sync loop (30 s long polls,
  as `farpoint agent run` does) while a release is rolled out to their fleet all at once.
  A device counts as on the new release when its status report saying the release is
  active was delivered, after full verification (director and image repository metadata
  through python-tuf, trust policy with the approvals' and evaluation's signatures, OMS
  model signature, model digest), installation in its inactive slot and the self-test
  with golden vectors in ONNX Runtime. `rollout_99pct_s` runs from the request that
  starts the rollout to the moment 99 % of those devices had reported.

    .venv/bin/python benchmarks/fleet_scale.py [--devices 10000] [--interval 60]
        [--measure-s 120] [--rollout-devices 1000] [--workers 4] [--json]
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import heapq
import json
import math
import multiprocessing as mp
import os
import random
import shutil
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from proc_stats import cpu_s, rss_mb  # benchmarks/ is on sys.path

MODEL = "vitals-bench"
RING = "canary-ring"


# --- worker process ------------------------------------------------------------------


def _worker(conn: Any, worker_id: int) -> None:
    """Serve the parent's commands until "exit"; every answer is a dict."""
    import logging

    logging.basicConfig(level=logging.ERROR)
    state: dict[str, Any] = {"agents": []}
    while True:
        cmd, args = conn.recv()
        if cmd == "exit":
            conn.send({"ok": True})
            conn.close()
            os._exit(0)
        try:
            out = _COMMANDS[cmd](state, **args)
        except Exception as exc:  # the parent reports it and stops everything
            import traceback

            out = {"error": f"worker {worker_id} {cmd}: {exc!r}\n{traceback.format_exc()}"}
        conn.send(out)


def _enroll(
    state: dict[str, Any],
    base_url: str,
    token: str,
    root: str,
    devices: list[tuple[str, dict[str, str]]],
    threads: int,
) -> dict[str, Any]:
    from farpoint.agent.enroll import enroll
    from farpoint.sdk import Client

    local = threading.local()

    def one(item: tuple[str, dict[str, str]]) -> Path:
        name, labels = item
        if not hasattr(local, "itops"):
            local.itops = Client(base_url, token, timeout=120)
        secret = local.itops.create_enrollment_token(labels=labels, expires_in_s=3600).token
        state_dir = Path(root) / name
        enroll(base_url, secret, state_dir, name, {})
        return state_dir

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=threads) as pool:
        dirs = list(pool.map(one, devices))
    state["dirs"] = dirs
    return {"enrolled": len(dirs), "s": time.perf_counter() - started}


def _load(state: dict[str, Any]) -> dict[str, Any]:
    """One Agent per enrolled state directory, and its first desired state (its etag)."""
    from farpoint.agent.loop import Agent

    class SimAgent(Agent):
        """The agent, noting when a report saying the target release is active went out."""

        target: tuple[str, int] | None = None
        active_at: float | None = None
        requests = 0
        requests_before = 0
        requests_to_active: int | None = None

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            signed = self.client._request

            def counted(*a: Any, **kw: Any) -> Any:
                self.requests += 1
                return signed(*a, **kw)

            self.client._request = counted  # type: ignore[method-assign]

        def report(self) -> bool:
            delivered = super().report()
            if delivered and self.target is not None and self.active_at is None:
                model, release_id = self.target
                for s in self.registry.statuses():
                    if (s["model"], s["release_id"], s["phase"]) == (model, release_id, "active"):
                        self.active_at = time.time()
                        self.requests_to_active = self.requests - self.requests_before
            return delivered

    started = time.perf_counter()
    agents = []
    for d in state["dirs"]:
        a = SimAgent(d, port=0, poll_wait_s=30, heartbeat_s=60, resync_s=3600)
        a.bench_etag = a.client.desired_state(None, 0)["etag"]  # type: ignore[attr-defined,index]
        agents.append(a)
    state["agents"] = agents
    # Thousands of agents in one process make a heap no device has: freeze them out of the
    # collector so its pauses do not show up as the server's latency.
    gc.collect()
    gc.freeze()
    return {"loaded": len(agents), "s": time.perf_counter() - started}


def _checkin(agent: Any) -> tuple[float, float, str]:
    """One heartbeat-and-poll; (report ms, poll ms, outcome)."""
    from farpoint.agent.client import LinkDown, ServerError

    t0 = time.perf_counter()
    agent.close_window()
    delivered = agent.report()
    t1 = time.perf_counter()
    try:
        got = agent.client.desired_state(agent.bench_etag, 0)
    except (LinkDown, ServerError) as exc:
        return (t1 - t0) * 1e3, (time.perf_counter() - t1) * 1e3, f"poll failed: {exc}"
    t2 = time.perf_counter()
    if not delivered:
        return (t1 - t0) * 1e3, (t2 - t1) * 1e3, "report not delivered"
    if got is not None:
        agent.bench_etag = got["etag"]
        return (t1 - t0) * 1e3, (t2 - t1) * 1e3, "poll answered 200, not 304"
    return (t1 - t0) * 1e3, (t2 - t1) * 1e3, "ok"


def _steady(
    state: dict[str, Any], start_at: float, interval_s: float, measure_s: float, threads: int
) -> dict[str, Any]:
    """Check every device in once per interval from `start_at` for `measure_s` seconds."""
    agents = state["agents"]
    rng = random.Random(len(agents))
    due = [(start_at + rng.uniform(0, interval_s), i) for i in range(len(agents))]
    heapq.heapify(due)
    end = start_at + measure_s
    results: list[tuple[float, float, float, float, str]] = []
    lock = threading.Lock()

    def run(i: int, at: float) -> None:
        began = time.time()
        r, p, outcome = _checkin(agents[i])
        with lock:
            results.append((at, began - at, r, p, outcome))

    with ThreadPoolExecutor(max_workers=threads) as pool:
        while due and due[0][0] < end:
            at, i = heapq.heappop(due)
            delay = at - time.time()
            if delay > 0:
                time.sleep(delay)
            pool.submit(run, i, at)
            heapq.heappush(due, (at + interval_s, i))
    return {"results": results}


def _ring_start(state: dict[str, Any], names: list[str], model: str, release_id: int) -> dict:
    """Run the real sync loop of the ring's devices; return once each has synced once and
    waits in its long poll."""
    wanted = set(names)
    ring = [a for a in state["agents"] if a.identity.name in wanted]
    for a in ring:
        a.target = (model, release_id)
        t = threading.Thread(target=a._sync_forever, daemon=True)
        t.start()
    deadline = time.monotonic() + 300
    while any(a._last_trust_sync is None for a in ring):
        if time.monotonic() > deadline:
            raise TimeoutError("ring devices did not finish their first sync in 300 s")
        time.sleep(0.1)
    time.sleep(0.5)  # into their long polls
    for a in ring:
        a.requests_before = a.requests  # the held poll counts before the rollout
    state["ring"] = ring
    return {"ring": len(ring)}


def _ring_wait(state: dict[str, Any], timeout_s: float) -> dict[str, Any]:
    ring = state["ring"]
    deadline = time.monotonic() + timeout_s
    while any(a.active_at is None for a in ring) and time.monotonic() < deadline:
        time.sleep(0.1)
    refusals = [
        f"{a.identity.name}: {s.get('error')}"
        for a in ring
        if a.active_at is None
        for s in a.registry.statuses()
        if s["phase"] == "failed"
    ]
    for a in ring:
        a.stop()
    return {
        "active_at": [a.active_at for a in ring],
        "requests": [a.requests_to_active for a in ring if a.requests_to_active is not None],
        "refusals": refusals[:5],
    }


_COMMANDS = {
    "enroll": _enroll,
    "load": _load,
    "steady": _steady,
    "ring_start": _ring_start,
    "ring_wait": _ring_wait,
}


# --- parent ---------------------------------------------------------------------------


class Workers:
    def __init__(self, count: int) -> None:
        ctx = mp.get_context("spawn")
        self.conns, self.procs = [], []
        for i in range(count):
            parent, child = ctx.Pipe()
            p = ctx.Process(target=_worker, args=(child, i), daemon=True)
            p.start()
            self.conns.append(parent)
            self.procs.append(p)

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.procs if p.pid is not None]

    def call(self, cmd: str, per_worker: list[dict[str, Any]]) -> list[dict[str, Any]]:
        for conn, args in zip(self.conns, per_worker, strict=True):
            conn.send((cmd, args))
        out = [conn.recv() for conn in self.conns]
        errors = [o["error"] for o in out if "error" in o]
        if errors:
            raise RuntimeError("\n".join(errors))
        return out

    def close(self) -> None:
        for conn in self.conns:
            with contextlib.suppress(OSError):
                conn.send(("exit", {}))
        for p in self.procs:
            p.join(5)
            if p.is_alive():
                p.kill()


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))]


class ServerMeter:
    """CPU seconds and peak RSS of the server process, sampled from /proc; CPU seconds of
    the device processes beside it (they share the machine's cores)."""

    def __init__(self, pid: int, device_pids: list[int]) -> None:
        self.pid = pid
        self.device_pids = device_pids
        self.peak_rss = 0.0
        """MB."""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def cpu_s(self) -> float:
        return cpu_s([self.pid])

    def devices_cpu_s(self) -> float:
        return cpu_s(self.device_pids)

    def rss(self) -> float:
        return rss_mb([self.pid])

    def _sample(self) -> None:
        while not self._stop.wait(0.5):
            self.peak_rss = max(self.peak_rss, self.rss())

    def __enter__(self) -> ServerMeter:
        self.cpu0, self.t0, self.peak_rss = self.cpu_s(), time.monotonic(), self.rss()
        self.devices0 = self.devices_cpu_s()
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.cpu = self.cpu_s() - self.cpu0
        self.devices_cpu = self.devices_cpu_s() - self.devices0
        self.wall = time.monotonic() - self.t0


def _make_release(home: Path, base_url: str, admin: str) -> dict[str, Any]:
    """Users, the offline root of trust, a small model trained on generated data,
    evaluated, approved by two people and published: what a rollout delivers."""
    from farpoint.examples import vitals
    from farpoint.examples.demo import _init_trust, _sdk, _signing_key
    from farpoint.ml.policy import DEFAULT_POLICY_YAML
    from farpoint.sdk.publish import publish_release

    admin_client = _sdk(base_url, admin)
    admin_client.create_team("bench")
    tokens = {}
    for user, roles in (
        ("dana", ["data-scientist"]),
        ("sam", ["data-scientist"]),
        ("mo", ["mlops-engineer"]),
        ("ito", ["it-ops"]),
    ):
        admin_client.create_user(user, roles, teams=["bench"])
        tokens[user] = admin_client.create_token(user, description="bench").token
    ds, sam, mo = (_sdk(base_url, tokens[u]) for u in ("dana", "sam", "mo"))
    signing = {
        who: _signing_key(c, home / "keys" / who)
        for who, c in (("dana", ds), ("sam", sam), ("mo", mo))
    }
    root = _init_trust(admin_client, home / "offline", signing)
    frame = vitals.generate(n_rows=2_000, seed=3)
    train, holdout = vitals.split(frame, holdout_fraction=0.25, seed=3)
    data = home / "data"
    data.mkdir()
    train.to_csv(data / "train.csv", index=False)
    holdout.to_csv(data / "holdout.csv", index=False)
    v_train = ds.upload_dataset(
        "bench-train", data / "train.csv", roles=vitals.COLUMN_ROLES, team="bench"
    )
    v_hold = ds.upload_dataset(
        "bench-holdout", data / "holdout.csv", roles=vitals.COLUMN_ROLES, team="bench"
    )
    registered = ds.load_dataset(v_train.ref)
    model = vitals.train_model(registered, seed=3)
    run = ds.log_run(name="bench", params={}, metrics={}, datasets=[v_train.ref])
    mv = ds.register_sklearn_model(
        MODEL, model, registered, vitals.FEATURES, run_id=run.id, label_column=vitals.LABEL
    )
    policy = mo.create_policy("bench-policy", DEFAULT_POLICY_YAML)
    evaluation = ds.evaluate(mv.ref, v_hold.ref, policy.ref)
    if not evaluation.passed:
        raise SystemExit("the benchmark's model failed its evaluation; nothing to roll out")
    for ref in (v_train.ref, v_hold.ref):
        ds.attest_dataset(ref, signing["dana"])
    ds.attest_training(mv.ref, signing["dana"])
    ds.attest_evaluation(evaluation.id, signing["dana"])
    release = mo.create_release(mv.ref, evaluation_id=evaluation.id)
    sam.approve(release_id=release.id, role="data-scientist", key=signing["sam"])
    mo.approve(release_id=release.id, role="mlops-engineer", key=signing["mo"])
    publish_release(mo, release.id, signing["mo"], root=root)
    return {"release": release.id, "itops": tokens["ito"], "mlops": tokens["mo"]}


def _split(items: list[Any], parts: int) -> list[list[Any]]:
    return [items[i::parts] for i in range(parts)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=10_000)
    parser.add_argument("--interval", type=float, default=60.0, help="check-in period, s")
    parser.add_argument("--measure-s", type=float, default=120.0, help="check-in window, s")
    parser.add_argument("--rollout-devices", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=4, help="device processes")
    parser.add_argument("--threads", type=int, default=16, help="check-in threads per worker")
    parser.add_argument("--json", action="store_true", help="end with one JSON line")
    args = parser.parse_args()
    if not 0 <= args.rollout_devices <= args.devices:
        parser.error("--rollout-devices must be between 0 and --devices")

    from farpoint.examples.demo import _admin_init, _sdk
    from farpoint.examples.processes import start_server, stop_all

    home = Path(tempfile.mkdtemp(prefix="farpoint-fleet-"))
    # Device state on tmpfs where there is one: the devices' own disks are not what is
    # measured; the server's database and blobs stay on the real disk.
    shm = Path("/dev/shm")
    device_root = Path(
        tempfile.mkdtemp(prefix="farpoint-fleet-devices-", dir=shm if shm.is_dir() else None)
    )
    env = dict(os.environ, FARPOINT_HOME=str(home / "server"), MALLOC_ARENA_MAX="2")
    children = []
    workers = None
    try:
        admin = _admin_init(env)
        server, base_url = start_server(home / "server", env, console=False)
        children.append(server)
        made = _make_release(home, base_url, admin)
        print(
            f"server {base_url} (SQLite and blobs in {home / 'server'}); release {made['release']}"
        )

        workers = Workers(args.workers)
        names = [
            (
                f"sim-{i:05d}",
                {"bench": "fleet", "ring": RING if i < args.rollout_devices else "rest"},
            )
            for i in range(args.devices)
        ]
        started = time.perf_counter()
        out = workers.call(
            "enroll",
            [
                {"base_url": base_url, "token": made["itops"], "root": str(device_root),
                 "devices": part, "threads": 8}
                for part in _split(names, args.workers)
            ],
        )  # fmt: skip
        enrolled = sum(o["enrolled"] for o in out)
        print(f"enrolled {enrolled} devices in {time.perf_counter() - started:.1f} s")
        out = workers.call("load", [{} for _ in range(args.workers)])
        print(f"loaded {sum(o['loaded'] for o in out)} agents, first polls answered")

        # check-ins
        start_at = time.time() + 2.0
        with ServerMeter(server.proc.pid, workers.pids) as meter:
            out = workers.call(
                "steady",
                [
                    {"start_at": start_at, "interval_s": args.interval,
                     "measure_s": args.measure_s, "threads": args.threads}
                    for _ in range(args.workers)
                ],
            )  # fmt: skip
        results = [r for o in out for r in o["results"]]
        ok = [r for r in results if r[4] == "ok"]
        failures: dict[str, int] = {}
        for r in results:
            if r[4] != "ok":
                failures[r[4][:120]] = failures.get(r[4][:120], 0) + 1
        checkin_ms = [r[2] + r[3] for r in ok]
        lag_ms = [r[1] * 1e3 for r in results]
        figures: dict[str, Any] = {
            "devices": enrolled,
            "interval_s": args.interval,
            "measure_s": args.measure_s,
            "checkins": len(results),
            "checkins_failed": len(results) - len(ok),
            "checkins_per_s": round(len(ok) / args.measure_s, 1),
            "p50_ms": round(_pct(checkin_ms, 50), 2),
            "p99_ms": round(_pct(checkin_ms, 99), 2),
            "max_ms": round(max(checkin_ms, default=float("nan")), 2),
            "report_p50_ms": round(_pct([r[2] for r in ok], 50), 2),
            "report_p99_ms": round(_pct([r[2] for r in ok], 99), 2),
            "poll_p50_ms": round(_pct([r[3] for r in ok], 50), 2),
            "poll_p99_ms": round(_pct([r[3] for r in ok], 99), 2),
            "schedule_lag_p99_ms": round(_pct(lag_ms, 99), 2),
            "server_cpu_percent": round(100 * meter.cpu / meter.wall, 1),
            "server_peak_rss_mb": round(meter.peak_rss, 1),
            "devices_cpu_percent": round(100 * meter.devices_cpu / meter.wall, 1),
        }
        print(
            f"check-ins: {figures['checkins']} in {args.measure_s:.0f} s "
            f"({figures['checkins_per_s']}/s, {figures['checkins_failed']} failed); "
            f"latency p50 {figures['p50_ms']} ms, p99 {figures['p99_ms']} ms "
            f"(report p99 {figures['report_p99_ms']}, poll p99 {figures['poll_p99_ms']}); "
            f"server CPU {figures['server_cpu_percent']} % of one core, "
            f"peak RSS {figures['server_peak_rss_mb']} MB; the device processes used "
            f"{figures['devices_cpu_percent']} %"
        )
        for why, n in sorted(failures.items(), key=lambda kv: -kv[1])[:5]:
            print(f"  {n} × {why}")

        # rollout
        if args.rollout_devices:
            ring = [n for n, labels in names if labels["ring"] == RING]
            mlops, itops = _sdk(base_url, made["mlops"]), _sdk(base_url, made["itops"])
            itops.create_fleet(RING, {"ring": RING})
            workers.call(
                "ring_start",
                [{"names": part, "model": MODEL, "release_id": made["release"]}
                 for part in _split(ring, args.workers)],
            )  # fmt: skip
            print(f"{len(ring)} ring devices long-polling; starting the rollout")
            with ServerMeter(server.proc.pid, workers.pids) as rmeter:
                t0 = time.time()
                rollout = mlops.create_rollout(RING, made["release"], health={"window_s": 0})
                out = workers.call("ring_wait", [{"timeout_s": 300} for _ in range(args.workers)])
            active = sorted(t - t0 for o in out for t in o["active_at"] if t is not None)
            need = math.ceil(0.99 * len(ring))
            figures["rollout_devices"] = len(ring)
            figures["rollout_active"] = len(active)
            figures["rollout_50pct_s"] = (
                round(active[len(ring) // 2 - 1], 2) if len(active) >= len(ring) // 2 else None
            )
            figures["rollout_99pct_s"] = round(active[need - 1], 2) if len(active) >= need else None
            figures["rollout_all_s"] = round(active[-1], 2) if len(active) == len(ring) else None
            counts = [n for o in out for n in o["requests"]]
            figures["rollout_requests_per_device"] = _pct(counts, 50) if counts else None
            figures["rollout_server_cpu_ms_per_device"] = round(1e3 * rmeter.cpu / len(ring), 1)
            figures["rollout_server_cpu_percent"] = round(100 * rmeter.cpu / rmeter.wall, 1)
            figures["rollout_devices_cpu_percent"] = round(
                100 * rmeter.devices_cpu / rmeter.wall, 1
            )
            state = mlops.get_rollout(rollout.id)
            figures["rollout_state"] = state.state
            print(
                f"rollout {rollout.id}: {len(active)} of {len(ring)} devices active; 50 % after "
                f"{figures['rollout_50pct_s']} s, 99 % after {figures['rollout_99pct_s']} s, "
                f"all after {figures['rollout_all_s']} s; server CPU "
                f"{figures['rollout_server_cpu_percent']} %, device processes "
                f"{figures['rollout_devices_cpu_percent']} %; rollout {state.state}"
            )
            print(
                f"  each device made {figures['rollout_requests_per_device']} signed requests "
                f"(median) from the rollout's start to its report; the server spent "
                f"{figures['rollout_server_cpu_ms_per_device']} ms of CPU per device"
            )
            for o in out:
                for line in o["refusals"]:
                    print(f"  refused: {line}")
        if args.json:
            print(json.dumps(figures))
    finally:
        if workers is not None:
            workers.close()
        stop_all(children)
        shutil.rmtree(device_root, ignore_errors=True)
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
