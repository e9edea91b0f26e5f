"""Helpers for rollout tests: fleets, rollouts, signed status reports, desired states."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from release_fixtures import Device

from conftest import bearer

DESIRED = "/api/v1/devices/self/desired-state"
STATUS = "/api/v1/devices/self/status"


def fleet(api: Any, token: str, name: str, **selector: str) -> dict[str, Any]:
    r = api.post("/api/v1/fleets", json={"name": name, "selector": selector}, headers=bearer(token))
    assert r.status_code == 201, r.text
    out: dict[str, Any] = r.json()
    return out


def rollout(api: Any, token: str, fleet_name: str, release_id: int, **settings: Any) -> Any:
    """POST /rollouts; the response, whatever its status."""
    body = {"fleet": fleet_name, "release_id": release_id, **settings}
    return api.post("/api/v1/rollouts", json=body, headers=bearer(token))


def started(api: Any, token: str, fleet_name: str, release_id: int, **settings: Any) -> dict:
    r = rollout(api, token, fleet_name, release_id, **settings)
    assert r.status_code == 201, r.text
    out: dict[str, Any] = r.json()
    return out


def get(api: Any, token: str, rollout_id: int) -> dict[str, Any]:
    """GET /rollouts/{id}, after checking the batch counters against the device rows."""
    check_counters(api.app, rollout_id)
    r = api.get(f"/api/v1/rollouts/{rollout_id}", headers=bearer(token))
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    return out


def check_counters(app: FastAPI, rollout_id: int) -> None:
    """The per-batch counters the controller keeps equal a count of the device rows."""
    from collections import Counter

    from farpoint.server.rollouts import repository as repo
    from farpoint.server.rollouts.rules import classify
    from farpoint.server.rollouts.tables import Rollout

    with app.state.ctx.db.session() as s:
        rollout = s.get(Rollout, rollout_id)
        assert rollout is not None
        counted: Counter[tuple[int, str]] = Counter()
        for batch, phase, committed, timed_out, n in repo.recount(s, rollout_id):
            counted[(batch, classify(phase, committed, timed_out, rollout.window_s))] += n
        for b in repo.batches(s, rollout_id):
            kept = {"healthy": b.healthy, "failed": b.failed, "timed_out": b.timed_out}
            found = {cls: counted[(b.idx, cls)] for cls in kept}
            assert kept == found, f"batch {b.idx} of rollout {rollout_id}: {kept} != {found}"


def act(api: Any, token: str, rollout_id: int, verb: str) -> Any:
    return api.post(f"/api/v1/rollouts/{rollout_id}/{verb}", headers=bearer(token))


def report(
    dev: Device,
    release_id: int | None,
    phase: str,
    *,
    committed: bool = False,
    rollout_id: int | None = None,
    serving: Any = "unset",
    error: str | None = None,
    model: str = "vitals",
) -> None:
    """A signed status report of one model, as an agent of issue 4 sends it."""
    entry: dict[str, Any] = {
        "model": model,
        "release_id": release_id,
        "phase": phase,
        "error": error,
        "committed": committed,
        "rollout_id": rollout_id,
    }
    if serving != "unset":
        entry["serving_release_id"] = serving
    r = dev.post_json(STATUS, {"models": [entry], "heartbeat": {"uptime_s": 5}})
    assert r.status_code == 204, r.text


def healthy(dev: Device, release_id: int, rollout_id: int | None = None) -> None:
    """The device reports the release active and committed (its health window passed)."""
    report(dev, release_id, "active", committed=True, rollout_id=rollout_id, serving=release_id)


def desired(dev: Device, model: str = "vitals") -> tuple[int | None, int | None]:
    """(release id, rollout id) the device's desired state names for `model`."""
    r = dev.get(DESIRED)
    assert r.status_code == 200, r.text
    for m in r.json()["models"]:
        if m["model"] == model:
            return m["release_id"], m["rollout_id"]
    return None, None


def by_name(out: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {d["device_name"]: d for d in out["devices"]}


def tick(app: FastAPI) -> bool:
    """One pass of the rollout controller's timer, now."""
    changed: bool = app.state.rollout_controller.tick()
    return changed


class Clock:
    """The app's clock, frozen until a test moves it (`clock.advance(3600)`)."""

    def __init__(self, app: FastAPI) -> None:
        import time

        self.now = time.time()
        app.state.ctx.clock = lambda: self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
