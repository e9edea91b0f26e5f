"""The rollout controller, driven by devices that sign their status reports, on every
configured database: strategies, health gates, approval, pause/resume/abort, rollback,
pending timeouts, superseding."""

from __future__ import annotations

import pytest
from release_fixtures import enroll_device, make_release
from rollout_helpers import (
    Clock,
    act,
    by_name,
    desired,
    fleet,
    get,
    healthy,
    report,
    rollout,
    started,
    tick,
)

from conftest import bearer


@pytest.fixture
def people(token_for):
    return token_for("it-ops"), token_for("mlops-engineer")


def _devices(app, api, ops, *names, **labels):
    return [enroll_device(app, api, ops, n, labels=dict(labels)) for n in names]


def test_fleets_count_matching_devices_and_refuse_duplicates(app, api, token_for):
    ops = token_for("it-ops")
    enroll_device(app, api, ops, "a", labels={"site": "icu"})
    enroll_device(app, api, ops, "b", labels={"site": "er"})
    r = api.post(
        "/api/v1/fleets", json={"name": "icu", "selector": {"site": "icu"}}, headers=bearer(ops)
    )
    assert r.status_code == 201
    assert r.json()["device_count"] == 1 and r.json()["desired_release_id"] is None
    mlops = token_for("mlops-engineer")
    assert (
        api.post("/api/v1/fleets", json={"name": "all"}, headers=bearer(mlops)).status_code == 201
    )
    r = api.post("/api/v1/fleets", json={"name": "icu"}, headers=bearer(ops))
    assert r.status_code == 409
    reader = bearer(token_for("business"))
    listed = api.get("/api/v1/fleets", headers=reader).json()["items"]
    assert {f["name"]: f["device_count"] for f in listed} == {"all": 2, "icu": 1}
    enroll_device(app, api, ops, "c", labels={"site": "icu"})
    assert api.get("/api/v1/fleets/icu", headers=reader).json()["device_count"] == 2
    assert api.get("/api/v1/fleets/nope", headers=reader).status_code == 404


def test_fleet_and_rollout_roles(api, token_for):
    ds = bearer(token_for("data-scientist"))
    assert api.post("/api/v1/fleets", json={"name": "x"}, headers=ds).status_code == 403
    assert api.post("/api/v1/fleets", json={"name": "x"}).status_code == 401
    ops = token_for("it-ops")
    assert api.post("/api/v1/fleets", json={"name": "x"}, headers=bearer(ops)).status_code == 201
    assert rollout(api, ops, "x", 1).status_code == 403
    assert api.get("/api/v1/rollouts").status_code == 401
    assert api.get("/api/v1/rollouts", headers=ds).json() == {"items": [], "next_cursor": None}
    assert act(api, ops, 1, "pause").status_code == 403


def test_unknown_fleet_release_or_rollout_is_404_and_bad_settings_422(app, api, people):
    _ops, mlops = people
    release = make_release(app)
    assert rollout(api, mlops, "ghost", release.id).status_code == 404
    fleet(api, mlops, "all")
    r = rollout(api, mlops, "all", 9999)
    assert r.status_code == 404 and "9999" in r.json()["detail"]
    for verb in ("pause", "resume", "approve", "abort"):
        assert act(api, mlops, 9999, verb).status_code == 404
    r = rollout(api, mlops, "all", release.id, strategy="canary")
    assert r.status_code == 422 and "strategy canary needs canary" in r.json()["detail"]
    r = rollout(api, mlops, "all", release.id, strategy="batches", batches={"count": 2, "size": 3})
    assert r.status_code == 422 and "exactly one of" in r.json()["detail"]
    r = rollout(api, mlops, "all", release.id, success_threshold=1.5)
    assert r.status_code == 422 and "success_threshold" in r.json()["detail"]
    assert api.get("/api/v1/rollouts", headers=bearer(mlops)).json()["items"] == []


def test_all_at_once_succeeds_when_every_device_commits(app, api, people):
    ops, mlops = people
    a, b = _devices(app, api, ops, "a", "b", site="icu")
    enroll_device(app, api, ops, "outside", labels={"site": "er"})
    v1 = make_release(app)
    fleet(api, mlops, "icu", site="icu")
    out = started(api, mlops, "icu", v1.id, health={"window_s": 30})
    assert (out["state"], out["from_release_id"], out["current_batch"]) == ("running", None, 0)
    assert [(x["index"], x["size"], x["state"]) for x in out["batches"]] == [(0, 2, "running")]
    assert [d["device_name"] for d in out["devices"]] == ["a", "b"]
    assert desired(a) == (v1.id, out["id"])
    state = a.get("/api/v1/devices/self/desired-state").json()
    assert state["models"][0]["health"]["window_s"] == 30

    report(a, v1.id, "downloading", rollout_id=out["id"])
    for dev in (a, b):
        report(dev, v1.id, "active", committed=False, rollout_id=out["id"], serving=v1.id)
    mid = get(api, mlops, out["id"])
    assert mid["state"] == "running", "active inside its health window is not yet healthy"
    assert mid["progress"]["active"] == 2 and mid["batches"][0]["in_progress"] == 2
    assert not any(d["healthy"] for d in mid["devices"])
    healthy(a, v1.id, out["id"])
    assert get(api, mlops, out["id"])["state"] == "running"
    healthy(b, v1.id, out["id"])
    done = get(api, mlops, out["id"])
    assert done["state"] == "succeeded" and done["finished_at"] is not None
    assert done["batches"][0]["state"] == "succeeded" and done["batches"][0]["healthy"] == 2
    assert all(d["committed"] and d["healthy"] for d in done["devices"])


def test_without_a_health_window_active_is_healthy(app, api, people):
    ops, mlops = people
    (a,) = _devices(app, api, ops, "a")
    release = make_release(app)
    fleet(api, mlops, "all")
    out = started(api, mlops, "all", release.id, health={"window_s": 0})
    report(a, release.id, "active", rollout_id=out["id"])
    done = get(api, mlops, out["id"])
    assert done["state"] == "succeeded"
    assert (done["devices"][0]["committed"], done["devices"][0]["healthy"]) == (False, True)


def test_a_failing_canary_stops_the_rollout_and_leaves_the_rest_untouched(app, api, people):
    ops, mlops = people
    devices = _devices(app, api, ops, "a", "b", "c", site="icu")
    canary_dev = enroll_device(app, api, ops, "z", labels={"site": "icu", "ring": "canary"})
    v1, v2 = make_release(app), make_release(app)
    fleet(api, mlops, "icu", site="icu")
    first = started(api, mlops, "icu", v1.id, health={"window_s": 0})
    for dev in [*devices, canary_dev]:
        report(dev, v1.id, "active", rollout_id=first["id"])
    assert get(api, mlops, first["id"])["state"] == "succeeded"

    out = started(
        api,
        mlops,
        "icu",
        v2.id,
        strategy="canary",
        canary={"count": 1, "selector": {"ring": "canary"}},
        batches={"count": 2},
    )
    assert out["from_release_id"] == v1.id
    assert [(x["index"], x["size"], x["state"]) for x in out["batches"]] == [
        (0, 1, "running"),
        (1, 2, "waiting"),
        (2, 1, "waiting"),
    ]
    rows = by_name(out)
    assert rows["z"]["batch"] == 0, "the selector's match is the canary"
    assert desired(canary_dev) == (v2.id, out["id"])
    for dev in devices:
        assert desired(dev) == (v1.id, first["id"])

    report(canary_dev, v2.id, "failed", rollout_id=out["id"], error="self-test: output differs")
    stopped = get(api, mlops, out["id"])
    assert stopped["state"] == "rolled_back" and stopped["finished_at"] is not None
    assert "exceed max_failures 0" in stopped["reason"]
    assert [x["state"] for x in stopped["batches"]] == ["failed", "waiting", "waiting"]
    assert by_name(stopped)["z"]["error"] == "self-test: output differs"
    # The canary is sent back; nobody else was ever told about v2.
    assert desired(canary_dev) == (v1.id, first["id"])
    for dev in devices:
        assert desired(dev) == (v1.id, first["id"])
        assert by_name(stopped)[dev.name]["phase"] == "pending"


def test_batches_start_one_after_another_on_health(app, api, people):
    ops, mlops = people
    a, b, c, d, e = _devices(app, api, ops, "a", "b", "c", "d", "e")
    release = make_release(app)
    fleet(api, mlops, "all")
    out = started(api, mlops, "all", release.id, strategy="batches", batches={"size": 2})
    assert [x["size"] for x in out["batches"]] == [2, 2, 1]
    assert [x["in_progress"] for x in out["batches"]] == [2, 0, 0], "waiting batches: none"
    assert [desired(x)[0] for x in (a, b, c, d, e)] == [release.id] * 2 + [None] * 3

    healthy(a, release.id, out["id"])
    assert desired(c) == (None, None), "one healthy of two is below the threshold 1.0"
    healthy(b, release.id, out["id"])
    mid = get(api, mlops, out["id"])
    assert (mid["current_batch"], [x["state"] for x in mid["batches"]]) == (
        1,
        ["succeeded", "running", "waiting"],
    )
    assert [desired(x)[0] for x in (c, d, e)] == [release.id, release.id, None]
    healthy(c, release.id, out["id"])
    healthy(d, release.id, out["id"])
    healthy(e, release.id, out["id"])
    assert get(api, mlops, out["id"])["state"] == "succeeded"


def test_a_success_threshold_below_one_and_tolerated_failures(app, api, people):
    ops, mlops = people
    a, b, c, d = _devices(app, api, ops, "a", "b", "c", "d")
    release = make_release(app)
    fleet(api, mlops, "all")
    out = started(
        api,
        mlops,
        "all",
        release.id,
        strategy="batches",
        batches={"count": 2},
        success_threshold=0.5,
        max_failures=1,
    )
    report(a, release.id, "failed", rollout_id=out["id"], error="disk full")
    healthy(b, release.id, out["id"])
    mid = get(api, mlops, out["id"])
    assert mid["state"] == "running" and mid["current_batch"] == 1 and mid["failures"] == 1
    healthy(c, release.id, out["id"])
    healthy(d, release.id, out["id"])
    assert get(api, mlops, out["id"])["state"] == "succeeded"


def test_approval_gates_each_next_batch(app, api, people):
    ops, mlops = people
    a, b = _devices(app, api, ops, "a", "b")
    release = make_release(app)
    fleet(api, mlops, "all")
    out = started(
        api,
        mlops,
        "all",
        release.id,
        strategy="batches",
        batches={"count": 2},
        approve_between_batches=True,
    )
    assert act(api, mlops, out["id"], "approve").status_code == 409  # nothing to approve yet
    healthy(a, release.id, out["id"])
    waiting = get(api, mlops, out["id"])
    assert waiting["state"] == "paused"
    assert waiting["paused_reason"] == "awaiting approval of batch 1"
    assert desired(b) == (None, None)
    r = act(api, mlops, out["id"], "resume")
    assert r.status_code == 409 and "/approve" in r.json()["detail"]

    r = act(api, mlops, out["id"], "approve")
    assert r.status_code == 200, r.text
    assert (r.json()["state"], r.json()["current_batch"]) == ("running", 1)
    assert desired(b) == (release.id, out["id"])
    healthy(b, release.id, out["id"])
    assert get(api, mlops, out["id"])["state"] == "succeeded"  # no approval after the last


def test_pause_resume_and_abort(app, api, people, token_for):
    ops, mlops = people
    a, b, c = _devices(app, api, ops, "a", "b", "c")
    release = make_release(app)
    fleet(api, mlops, "all")
    out = started(api, mlops, "all", release.id, strategy="batches", batches={"size": 1})
    r = act(api, mlops, out["id"], "pause")
    assert r.status_code == 200 and r.json()["state"] == "paused"
    assert r.json()["paused_reason"].startswith("paused by u-mlops-")
    assert act(api, mlops, out["id"], "pause").status_code == 409
    healthy(a, release.id, out["id"])
    assert desired(b) == (None, None), "a paused rollout starts no batch"
    r = act(api, mlops, out["id"], "resume")
    assert r.status_code == 200 and r.json()["current_batch"] == 1
    assert desired(b) == (release.id, out["id"])

    r = act(api, mlops, out["id"], "abort")
    assert r.status_code == 200
    assert r.json()["state"] == "aborted" and r.json()["reason"].startswith("aborted by u-mlops-")
    assert [x["state"] for x in r.json()["batches"]] == ["succeeded", "stopped", "waiting"]
    healthy(b, release.id, out["id"])
    assert get(api, mlops, out["id"])["state"] == "aborted", "an aborted rollout stays so"
    # Devices keep what they were assigned; the batch never started stays as it was.
    assert [desired(x)[0] for x in (a, b, c)] == [release.id, release.id, None]
    for verb in ("pause", "resume", "abort", "approve"):
        assert act(api, mlops, out["id"], verb).status_code == 409
    entries = api.get("/api/v1/audit", headers=bearer(token_for("business"))).json()["items"]
    actions = [e["action"] for e in entries if e["subject"] == f"rollout/{out['id']}"]
    assert actions == ["rollout.create", "rollout.pause", "rollout.resume", "rollout.abort"]


def test_a_health_window_rollback_returns_every_touched_device(app, api, people):
    ops, mlops = people
    a, b, c, d = _devices(app, api, ops, "a", "b", "c", "d")
    v1, v2 = make_release(app), make_release(app)
    fleet(api, mlops, "all")
    first = started(api, mlops, "all", v1.id, health={"window_s": 0})
    for dev in (a, b, c, d):
        report(dev, v1.id, "active", rollout_id=first["id"])
    out = started(api, mlops, "all", v2.id, strategy="batches", batches={"count": 2})
    healthy(a, v2.id, out["id"])
    # b's health window failed: the agent went back to v1 on its own.
    report(b, v2.id, "rolled_back", rollout_id=out["id"], serving=v1.id, error="error rate 0.4")
    done = get(api, mlops, out["id"])
    assert done["state"] == "rolled_back"
    assert "2 device(s) returned to their previous release" in done["reason"]
    assert [desired(x) for x in (a, b, c, d)] == [(v1.id, first["id"])] * 4
    rows = by_name(done)
    assert rows["a"]["assigned_release_id"] == v1.id and rows["c"]["phase"] == "pending"


def test_without_rollback_a_failed_rollout_leaves_devices_where_they_are(app, api, people):
    ops, mlops = people
    a, b = _devices(app, api, ops, "a", "b")
    release = make_release(app)
    fleet(api, mlops, "all")
    out = started(api, mlops, "all", release.id, rollback_on_failure=False)
    healthy(a, release.id, out["id"])
    report(b, release.id, "failed", rollout_id=out["id"], error="no space")
    done = get(api, mlops, out["id"])
    assert done["state"] == "failed" and done["batches"][0]["state"] == "failed"
    assert desired(a) == (release.id, out["id"])
    # A device joining a fleet whose rollout failed is not given the failing release.
    late = enroll_device(app, api, ops, "late")
    assert desired(late) == (None, None)


def test_a_silent_device_stops_blocking_its_batch_after_the_pending_timeout(app, api, people):
    ops, mlops = people
    clock = Clock(app)
    a, b, c = _devices(app, api, ops, "a", "b", "c")
    release = make_release(app)
    fleet(api, mlops, "all")
    out = started(
        api,
        mlops,
        "all",
        release.id,
        strategy="batches",
        batches={"size": 2},
        pending_timeout_s=600,
    )
    healthy(a, release.id, out["id"])
    clock.advance(599)
    report(b, None, "pending")  # heard from, but no progress on the release
    assert tick(app) is False
    assert get(api, mlops, out["id"])["current_batch"] == 0
    clock.advance(2)
    assert tick(app) is True, "the next batch starts: long-polls must be woken"
    mid = get(api, mlops, out["id"])
    assert by_name(mid)["b"]["timed_out"] is True
    assert mid["batches"][0] == {**mid["batches"][0], "healthy": 1, "timed_out": 1}
    assert mid["current_batch"] == 1 and desired(c) == (release.id, out["id"])
    # The device still has the release waiting for it, and counts again once it moves.
    assert desired(b) == (release.id, out["id"])
    report(b, None, "pending")
    assert by_name(get(api, mlops, out["id"]))["b"]["timed_out"] is True
    report(b, release.id, "downloading", rollout_id=out["id"])
    assert by_name(get(api, mlops, out["id"]))["b"]["timed_out"] is False


def test_a_device_counted_out_catches_up_after_the_rollout_ended(app, api, people):
    """The rollout succeeded without a silent device; when the device comes back and
    takes the release, the rollout's record of it (row and batch counters) follows it to
    healthy, and nothing else of the ended rollout changes."""
    ops, mlops = people
    clock = Clock(app)
    a, b = _devices(app, api, ops, "a", "b")
    release, other = make_release(app), make_release(app)
    fleet(api, mlops, "all")
    out = started(api, mlops, "all", release.id, pending_timeout_s=600, health={"window_s": 60})
    healthy(a, release.id, out["id"])
    clock.advance(601)
    tick(app)
    done = get(api, mlops, out["id"])
    assert done["state"] == "succeeded" and by_name(done)["b"]["timed_out"] is True
    assert done["batches"][0] == {**done["batches"][0], "healthy": 1, "timed_out": 1}

    report(b, other.id, "downloading")  # about another release: says nothing of this one
    assert by_name(get(api, mlops, out["id"]))["b"]["phase"] == "pending"
    report(b, release.id, "downloading", rollout_id=out["id"])
    row = by_name(get(api, mlops, out["id"]))["b"]
    assert (row["phase"], row["timed_out"]) == ("downloading", False)
    report(b, release.id, "active", rollout_id=out["id"], serving=release.id)
    assert by_name(get(api, mlops, out["id"]))["b"]["healthy"] is False  # in its window
    healthy(b, release.id, out["id"])
    after = get(api, mlops, out["id"])
    assert by_name(after)["b"] == {**by_name(after)["b"], "phase": "active", "healthy": True}
    assert after["batches"][0] == {**after["batches"][0], "healthy": 2, "timed_out": 0}
    assert (after["state"], after["finished_at"]) == ("succeeded", done["finished_at"])
    # settled, its row no longer moves: a later release does not undo it
    report(b, other.id, "downloading")
    assert by_name(get(api, mlops, out["id"]))["b"]["phase"] == "active"


def test_a_device_in_its_health_window_gets_the_window_on_top_of_the_timeout(app, api, people):
    ops, mlops = people
    clock = Clock(app)
    a, b = _devices(app, api, ops, "a", "b")
    release = make_release(app)
    fleet(api, mlops, "all")
    out = started(api, mlops, "all", release.id, pending_timeout_s=600, health={"window_s": 300})
    healthy(a, release.id, out["id"])
    report(b, release.id, "active", rollout_id=out["id"])  # its window starts
    clock.advance(601)
    tick(app)
    assert by_name(get(api, mlops, out["id"]))["b"]["timed_out"] is False
    clock.advance(300)
    tick(app)
    done = get(api, mlops, out["id"])
    assert by_name(done)["b"]["timed_out"] is True and done["state"] == "succeeded"


def test_a_device_another_fleet_decides_for_stops_blocking_after_the_timeout(app, api, people):
    ops, mlops = people
    clock = Clock(app)
    a = enroll_device(app, api, ops, "a")
    x = enroll_device(app, api, ops, "x", labels={"site": "icu"})
    v1, v2 = make_release(app), make_release(app)
    fleet(api, mlops, "all")
    fleet(api, mlops, "icu", site="icu")
    first = started(api, mlops, "all", v1.id, pending_timeout_s=600)
    clock.advance(1)
    second = started(api, mlops, "icu", v2.id)
    assert desired(x) == (v2.id, second["id"]), "the newer fleet decides for x"
    healthy(a, v1.id, first["id"])
    healthy(x, v2.id, second["id"])
    assert get(api, mlops, first["id"])["state"] == "running"
    clock.advance(600)
    tick(app)
    done = get(api, mlops, first["id"])
    assert done["state"] == "succeeded" and by_name(done)["x"]["timed_out"] is True


def test_the_server_process_runs_the_timer_itself(tmp_path, db_url):
    import time

    from fastapi.testclient import TestClient

    from farpoint.server.app import create_app
    from farpoint.server.identity.service import bootstrap_admin
    from farpoint.server.settings import Settings

    app = create_app(Settings(home=tmp_path / "h2", database_url=db_url, rollout_tick_s=0.1))
    clock = Clock(app)
    with app.state.ctx.db.session() as s:
        admin = bootstrap_admin(s, "root2", 3600).token
    with TestClient(app) as api:
        enroll_device(app, api, admin, "a")
        release = make_release(app)
        fleet(api, admin, "all")
        out = started(api, admin, "all", release.id, pending_timeout_s=60)
        clock.advance(61)
        deadline = time.monotonic() + 10
        while not by_name(get(api, admin, out["id"]))["a"]["timed_out"]:
            assert time.monotonic() < deadline, "the controller's timer never ran"
            time.sleep(0.05)


def test_a_new_rollout_supersedes_a_running_one_and_keeps_each_devices_release(app, api, people):
    ops, mlops = people
    a, b = _devices(app, api, ops, "a", "b")
    v1, v2, v3 = make_release(app), make_release(app), make_release(app)
    fleet(api, mlops, "all")
    first = started(api, mlops, "all", v1.id, health={"window_s": 0})
    for dev in (a, b):
        report(dev, v1.id, "active", rollout_id=first["id"])
    second = started(api, mlops, "all", v2.id, strategy="batches", batches={"size": 1})
    assert [desired(x)[0] for x in (a, b)] == [v2.id, v1.id]
    third = started(api, mlops, "all", v3.id, strategy="batches", batches={"size": 1})
    old = get(api, mlops, second["id"])
    assert old["state"] == "aborted" and old["reason"] == f"superseded by rollout {third['id']}"
    # The superseded rollout had not reached its last batch: the fleet was still on v1.
    assert third["from_release_id"] == v1.id
    # b never got v2 from the superseded rollout: it keeps v1 until its batch starts.
    assert desired(a) == (v3.id, third["id"])
    assert desired(b) == (v1.id, first["id"])
    assert by_name(third)["b"]["previous_release_id"] == v1.id


def test_devices_joining_during_a_rollout_wait_for_its_last_batch(app, api, people):
    ops, mlops = people
    a, b = _devices(app, api, ops, "a", "b")
    release = make_release(app)
    fleet(api, mlops, "all")
    out = started(api, mlops, "all", release.id, strategy="batches", batches={"count": 2})
    early = enroll_device(app, api, ops, "early")
    assert desired(early) == (None, None)
    healthy(a, release.id, out["id"])
    assert desired(early) == (release.id, out["id"]), "the last batch started"
    assert all(d["device_name"] != "early" for d in get(api, mlops, out["id"])["devices"])
    healthy(b, release.id, out["id"])
    assert get(api, mlops, out["id"])["state"] == "succeeded", "joiners are not awaited"


def test_rollout_of_an_empty_fleet_succeeds_at_once(app, api, people):
    ops, mlops = people
    release = make_release(app)
    fleet(api, mlops, "nobody", site="moon")
    out = started(api, mlops, "nobody", release.id, strategy="canary", canary={"percent": 10})
    assert out["state"] == "succeeded" and out["devices"] == [] and out["batches"] == []
    late = enroll_device(app, api, ops, "late", labels={"site": "moon"})
    assert desired(late) == (release.id, out["id"])


def test_an_old_failure_under_another_rollout_does_not_count(app, api, people):
    ops, mlops = people
    (a,) = _devices(app, api, ops, "a")
    release = make_release(app)
    fleet(api, mlops, "all")
    first = started(api, mlops, "all", release.id)
    report(a, release.id, "rolled_back", rollout_id=first["id"], serving=None)
    assert get(api, mlops, first["id"])["state"] == "rolled_back"
    second = started(api, mlops, "all", release.id)  # a new id earns a new try
    report(a, release.id, "rolled_back", rollout_id=first["id"], serving=None)
    assert get(api, mlops, second["id"])["state"] == "running"
    healthy(a, release.id, second["id"])
    assert get(api, mlops, second["id"])["state"] == "succeeded"


def test_rollout_list_pages_and_filters(app, api, people):
    ops, mlops = people
    enroll_device(app, api, ops, "a")
    release = make_release(app)
    fleet(api, mlops, "all")
    fleet(api, mlops, "other", site="x")
    ids = [started(api, mlops, "all", release.id)["id"] for _ in range(3)]
    started(api, mlops, "other", release.id)
    h = bearer(mlops)
    page = api.get("/api/v1/rollouts?limit=2&fleet=all", headers=h).json()
    assert [r["id"] for r in page["items"]] == ids[:2]
    assert "devices" not in page["items"][0]
    rest = api.get(f"/api/v1/rollouts?limit=2&fleet=all&cursor={page['next_cursor']}", headers=h)
    assert [r["id"] for r in rest.json()["items"]] == ids[2:]
    aborted = api.get("/api/v1/rollouts?state=aborted", headers=h).json()["items"]
    assert [r["id"] for r in aborted] == ids[:2], "superseded"
    both = api.get("/api/v1/rollouts?state=running&state=succeeded", headers=h).json()["items"]
    assert [r["id"] for r in both] == [ids[2], ids[2] + 1]
    assert api.get("/api/v1/rollouts?fleet=ghost", headers=h).status_code == 404
    assert api.get("/api/v1/rollouts?state=bogus", headers=h).status_code == 422
    assert api.get("/api/v1/rollouts/9999", headers=h).status_code == 404
