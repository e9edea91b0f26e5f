"""Which fleet decides a device's release (visible in the API), long-polls woken by the
controller, serving history at past instants, the controller's lease, and rollouts made
before migration 0002; on every configured database."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta, timezone

import pytest
from release_fixtures import enroll_device, make_release
from rollout_helpers import DESIRED, Clock, desired, fleet, healthy, report, started

from conftest import bearer

EXPLAIN = "/api/v1/devices/{}/desired-state"


def test_the_newest_fleet_decides_and_the_api_says_why(app, api, token_for):
    ops, mlops = token_for("it-ops"), token_for("mlops-engineer")
    bed = enroll_device(app, api, ops, "bed", labels={"site": "icu"})
    other = enroll_device(app, api, ops, "other", labels={"site": "icu", "ring": "canary"})
    v1, v2, v3 = make_release(app), make_release(app), make_release(app)
    fleet(api, mlops, "all")
    fleet(api, mlops, "icu", site="icu")
    r1 = started(api, mlops, "icu", v1.id)
    r2 = started(api, mlops, "all", v2.id)
    assert desired(bed) == (v2.id, r2["id"])

    reader = bearer(token_for("business"))
    out = api.get(EXPLAIN.format(bed.id), headers=reader).json()
    assert out["device_name"] == "bed" and out["state"]["models"][0]["release_id"] == v2.id
    [decision] = out["decisions"]
    assert (decision["winner"], decision["release_id"], decision["rollout_id"]) == (
        "all",
        v2.id,
        r2["id"],
    )
    assert decision["batch"] == 0
    assert decision["reason"].startswith("fleet all decides (its release was set most recently)")
    assert [(c["fleet"], c["rollout_id"], c["release_id"]) for c in decision["candidates"]] == [
        ("all", r2["id"], v2.id),
        ("icu", r1["id"], v1.id),
    ]

    # icu is now the newest; its canary is the other device, bed waits in batch 1 and keeps
    # what it had (v2, from the all fleet's rollout).
    r3 = started(
        api,
        mlops,
        "icu",
        v3.id,
        strategy="canary",
        canary={"count": 1, "selector": {"ring": "canary"}},
    )
    assert desired(other) == (v3.id, r3["id"])
    assert desired(bed) == (v2.id, r2["id"])
    [decision] = api.get(EXPLAIN.format(bed.id), headers=reader).json()["decisions"]
    assert (decision["winner"], decision["batch"]) == ("icu", 1)
    assert "waiting in batch 1 of rollout" in decision["reason"]
    healthy(other, v3.id, r3["id"])
    assert desired(bed) == (v3.id, r3["id"])


def test_a_fleet_with_nothing_for_a_device_yet_falls_through_to_the_next(app, api, token_for):
    ops, mlops = token_for("it-ops"), token_for("mlops-engineer")
    a, _b = (enroll_device(app, api, ops, n, labels={"site": "icu"}) for n in ("a", "b"))
    v1, v2 = make_release(app), make_release(app)
    fleet(api, mlops, "all")
    first = started(api, mlops, "all", v1.id)
    fleet(api, mlops, "icu", site="icu")
    second = started(api, mlops, "icu", v2.id, strategy="batches", batches={"count": 2})
    assert desired(a) == (v2.id, second["id"])
    # A device joining now is not in icu's snapshot and icu had no release before: the
    # all fleet, set earlier, gives it v1.
    newbie = enroll_device(app, api, ops, "newbie", labels={"site": "icu"})
    assert desired(newbie) == (v1.id, first["id"])
    reader = bearer(token_for("business"))
    [decision] = api.get(EXPLAIN.format(newbie.id), headers=reader).json()["decisions"]
    assert decision["winner"] == "all"
    assert "the fleets set more recently give nothing yet" in decision["reason"]
    assert decision["candidates"][0]["fleet"] == "icu"
    assert decision["candidates"][0]["release_id"] is None


def test_the_people_route_and_the_device_route_stay_apart(app, api, token_for):
    ops = token_for("it-ops")
    dev = enroll_device(app, api, ops, "bed")
    reader = bearer(token_for("business"))
    assert api.get(EXPLAIN.format("nope"), headers=reader).status_code == 404
    assert api.get(EXPLAIN.format(dev.id)).status_code == 401
    # `self` is the device's own, signed route; a bearer token does not open it.
    assert api.get(DESIRED, headers=reader).status_code == 401
    assert dev.get(DESIRED).status_code == 200
    out = api.get(EXPLAIN.format(dev.id), headers=reader).json()
    assert out["decisions"] == [] and out["state"]["models"] == []


@pytest.mark.timeout(60)
def test_a_batch_starting_wakes_the_long_polls_of_its_devices(app, api, token_for):
    ops, mlops = token_for("it-ops"), token_for("mlops-engineer")
    a, b = (enroll_device(app, api, ops, n) for n in ("a", "b"))
    release = make_release(app)
    fleet(api, mlops, "all")
    out = started(api, mlops, "all", release.id, strategy="batches", batches={"count": 2})
    etag = b.get(DESIRED).headers["etag"]

    def a_commits() -> None:
        time.sleep(0.3)
        healthy(a, release.id, out["id"])

    worker = threading.Thread(target=a_commits)
    begun = time.monotonic()
    worker.start()
    r = b.get(DESIRED + "?wait=5", headers={"If-None-Match": etag})
    elapsed = time.monotonic() - begun
    worker.join()
    assert r.status_code == 200 and r.json()["models"][0]["rollout_id"] == out["id"]
    assert elapsed < 4, "woken by the report, not by the poll slice or the timeout"


def test_history_answers_for_past_instants(app, api, token_for):
    ops, mlops = token_for("it-ops"), token_for("mlops-engineer")
    clock = Clock(app)
    a = enroll_device(app, api, ops, "a", labels={"site": "icu"})
    b = enroll_device(app, api, ops, "b", labels={"site": "icu"})
    enroll_device(app, api, ops, "outside", labels={"site": "er"})
    v1, v2 = make_release(app), make_release(app)
    fleet(api, mlops, "icu", site="icu")
    t0 = clock.now

    def at(offset: float) -> str:
        return datetime.fromtimestamp(t0 + offset, UTC).isoformat()

    def history(offset: float) -> dict[str, dict[str, int]]:
        r = api.get(f"/api/v1/fleets/icu/history?at={at(offset)}", headers=bearer(ops))
        assert r.status_code == 200, r.text
        return {d["device_name"]: d["releases"] for d in r.json()["devices"]}

    clock.advance(10)
    report(a, v1.id, "active")  # no serving_release_id: an active release is what it serves
    report(b, v1.id, "active", serving=v1.id)
    clock.advance(10)
    report(a, v2.id, "downloading")  # says nothing about what is served
    clock.advance(10)
    report(a, v2.id, "active", serving=v2.id)
    clock.advance(10)
    report(a, v2.id, "rolled_back", serving=v1.id, error="error rate 0.3")
    clock.advance(10)
    report(b, v2.id, "failed", serving=None, error="no previous release to go back to")

    assert history(5) == {"a": {}, "b": {}}
    assert history(15) == {"a": {"vitals": v1.id}, "b": {"vitals": v1.id}}
    assert history(25) == {"a": {"vitals": v1.id}, "b": {"vitals": v1.id}}
    assert history(35) == {"a": {"vitals": v2.id}, "b": {"vitals": v1.id}}
    assert history(45) == {"a": {"vitals": v1.id}, "b": {"vitals": v1.id}}
    assert history(55) == {"a": {"vitals": v1.id}, "b": {}}
    assert history(30) == {"a": {"vitals": v2.id}, "b": {"vitals": v1.id}}, "[start, end)"

    # An instant in another zone, or without one (read as UTC), means the same instant.
    local = datetime.fromtimestamp(t0 + 35, UTC).astimezone(timezone(timedelta(hours=2)))
    r = api.get("/api/v1/fleets/icu/history", params={"at": local.isoformat()}, headers=bearer(ops))
    assert {d["device_name"]: d["releases"] for d in r.json()["devices"]}["a"] == {"vitals": v2.id}
    naive = datetime.fromtimestamp(t0 + 35, UTC).replace(tzinfo=None).isoformat()
    r = api.get("/api/v1/fleets/icu/history", params={"at": naive}, headers=bearer(ops))
    assert r.json()["devices"][0]["releases"] == {"vitals": v2.id}
    r = api.get("/api/v1/fleets/icu/history?at=last-tuesday", headers=bearer(ops))
    assert r.status_code == 422 and "ISO 8601" in r.json()["detail"]
    assert api.get("/api/v1/fleets/ghost/history", headers=bearer(ops)).status_code == 404
    now = api.get("/api/v1/fleets/icu/history", headers=bearer(ops)).json()
    assert {d["device_name"] for d in now["devices"]} == {"a", "b"}


def test_one_replica_at_a_time_holds_the_controller_lease(tmp_path, db_url):
    from fastapi.testclient import TestClient

    from farpoint.server.app import create_app
    from farpoint.server.identity.service import bootstrap_admin
    from farpoint.server.rollouts.controller import LEASE, RolloutController
    from farpoint.server.rollouts.tables import ControllerLease
    from farpoint.server.settings import Settings

    app = create_app(Settings(home=tmp_path / "h", database_url=db_url, rollout_tick_s=0))
    clock = Clock(app)
    ctx = app.state.ctx
    ours, theirs = app.state.rollout_controller, RolloutController(ctx, 5.0)
    with ctx.db.session() as s:
        admin = bootstrap_admin(s, "root", 3600).token
    with TestClient(app) as api:
        a = enroll_device(app, api, admin, "a")
        release = make_release(app)
        fleet(api, admin, "all")
        out = started(api, admin, "all", release.id, pending_timeout_s=5)
        assert ours.tick() is False  # takes the lease (10 s); nothing due yet
        clock.advance(6)  # a is silent past the timeout now
        assert theirs.tick() is False, "the lease is ours: the other replica does nothing"
        r = api.get(f"/api/v1/rollouts/{out['id']}", headers=bearer(admin)).json()
        assert r["devices"][0]["timed_out"] is False
        # Ours stops renewing (a dead replica); once the lease expires the other takes over.
        clock.advance(5)
        assert theirs.tick() is False  # nothing to start: the only batch waits for a healthy one
        r = api.get(f"/api/v1/rollouts/{out['id']}", headers=bearer(admin)).json()
        assert r["devices"][0]["timed_out"] is True
        with ctx.db.session() as s:
            assert s.get(ControllerLease, LEASE).holder == theirs.holder
        assert ours.tick() is False
        healthy(a, release.id, out["id"])


def test_rollouts_made_before_batches_keep_working(tmp_path, db_url):
    """Migration 0002 turns a rollout of the first schema into one started batch."""
    from fastapi.testclient import TestClient
    from sqlalchemy import text

    from farpoint.server import migrate
    from farpoint.server.app import create_app
    from farpoint.server.identity.service import bootstrap_admin
    from farpoint.server.settings import Settings

    settings = Settings(home=tmp_path / "h", database_url=db_url, auto_migrate=False)
    app = create_app(settings)
    engine = app.state.ctx.db.engine
    migrate.upgrade(engine, "0001")
    migrate.upgrade(engine, "0008")  # today's dataset and model tables: make_release writes them
    release = make_release(app)
    now = datetime.now(UTC)
    legacy = [
        "INSERT INTO enrollment_tokens (id, secret_hash, labels, server_key_id, root_version, "
        "root_digest, created_by, created_at, expires_at) VALUES (1, 'h', '{}', 'k', 1, 'd', "
        "'ops', :now, :now)",
        "INSERT INTO devices (seq, id, name, public_key_pem, key_id, labels, hardware, heartbeat, "
        "enrollment_token_id, enrolled_at) VALUES (1, 'dev-1', 'bed', 'pem', 'k', '{}', '{}', "
        "'{}', 1, :now)",
        "INSERT INTO fleets (id, name, selector, created_by, created_at) "
        "VALUES (1, 'all', '{}', 'ops', :now)",
        "INSERT INTO fleet_releases (fleet_id, model, release_id, set_at) "
        "VALUES (1, 'vitals', :rel, :now)",
        "INSERT INTO rollouts (id, fleet_id, model, from_release_id, to_release_id, strategy, "
        "state, created_by, created_at) VALUES (1, 1, 'vitals', NULL, :rel, 'all-at-once', "
        "'running', 'mo', :now)",
        "INSERT INTO fleets (id, name, selector, created_by, created_at) "
        "VALUES (2, 'empty', '{\"site\": \"moon\"}', 'ops', :now)",
        "INSERT INTO rollouts (id, fleet_id, model, from_release_id, to_release_id, strategy, "
        "state, created_by, created_at, finished_at) VALUES (2, 2, 'vitals', NULL, :rel, "
        "'all-at-once', 'succeeded', 'mo', :now, :now)",
        "INSERT INTO rollout_devices (rollout_id, device_id, phase, updated_at) "
        "VALUES (1, 'dev-1', 'downloading', :now)",
    ]
    with engine.begin() as conn:
        for sql in legacy:
            conn.execute(text(sql), {"now": now, "rel": release.id})
    migrate.upgrade(engine)

    with app.state.ctx.db.session() as s:
        admin = bootstrap_admin(s, "root", 3600).token
    with TestClient(app) as api:
        out = api.get("/api/v1/rollouts/1", headers=bearer(admin)).json()
        assert (out["state"], out["current_batch"], out["settings"]["max_failures"]) == (
            "running",
            0,
            0,
        )
        assert [(b["index"], b["size"], b["state"]) for b in out["batches"]] == [(0, 1, "running")]
        assert out["devices"][0]["assigned_release_id"] == release.id
        empty = api.get("/api/v1/rollouts/2", headers=bearer(admin)).json()
        assert (empty["batches"], empty["current_batch"]) == ([], None)
        from farpoint.server.devices import service as devices_service

        with app.state.ctx.db.session() as s:
            [model] = devices_service.desired_state(s, "dev-1").models
        assert (model.release_id, model.rollout_id) == (release.id, 1)
