"""Fleets and rollouts, driven by device status reports, on every configured database."""

from __future__ import annotations

from release_fixtures import enroll_device, make_release

from conftest import bearer

DESIRED = "/api/v1/devices/self/desired-state"


def _rollout(api, token: str, fleet: str, release_id: int):
    body = {"fleet": fleet, "release_id": release_id}
    return api.post("/api/v1/rollouts", json=body, headers=bearer(token))


def _get(api, token: str, rollout_id: int) -> dict:
    r = api.get(f"/api/v1/rollouts/{rollout_id}", headers=bearer(token))
    assert r.status_code == 200, r.text
    return r.json()


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
    assert _rollout(api, ops, "x", 1).status_code == 403
    assert api.get("/api/v1/rollouts").status_code == 401
    assert api.get("/api/v1/rollouts", headers=ds).json() == {"items": [], "next_cursor": None}


def test_unknown_fleet_or_release_is_404(app, api, token_for):
    mlops = token_for("mlops-engineer")
    release = make_release(app)
    assert _rollout(api, mlops, "ghost", release.id).status_code == 404
    api.post("/api/v1/fleets", json={"name": "all"}, headers=bearer(mlops))
    r = _rollout(api, mlops, "all", 9999)
    assert r.status_code == 404 and "9999" in r.json()["detail"]


def test_status_reports_drive_a_rollout_to_success(app, api, token_for):
    ops, mlops = token_for("it-ops"), token_for("mlops-engineer")
    a = enroll_device(app, api, ops, "a", labels={"site": "icu"})
    b = enroll_device(app, api, ops, "b", labels={"site": "icu"})
    enroll_device(app, api, ops, "outside", labels={"site": "er"})
    v1, v2 = make_release(app), make_release(app)
    api.post(
        "/api/v1/fleets", json={"name": "icu", "selector": {"site": "icu"}}, headers=bearer(mlops)
    )

    first = _rollout(api, mlops, "icu", v1.id).json()
    assert first["state"] == "running" and first["from_release_id"] is None
    assert first["progress"]["pending"] == 2
    assert [d["device_name"] for d in first["devices"]] == ["a", "b"]
    for dev in (a, b):
        assert dev.report(("vitals", v1.id, "active")).status_code == 204
    done = _get(api, mlops, first["id"])
    assert done["state"] == "succeeded" and done["finished_at"] is not None
    assert done["progress"]["active"] == 2

    second = _rollout(api, mlops, "icu", v2.id).json()
    assert second["from_release_id"] == v1.id and second["model"] == "vitals"
    fleet = api.get("/api/v1/fleets/icu", headers=bearer(mlops)).json()
    assert fleet["desired_release_id"] == v2.id
    # Still active on the old release: pending for this rollout.
    a.report(("vitals", v1.id, "active"))
    assert _get(api, mlops, second["id"])["progress"]["pending"] == 2
    a.report(("vitals", v2.id, "downloading"))
    a.report(("vitals", v2.id, "active"))
    mid = _get(api, mlops, second["id"])
    assert mid["state"] == "running"
    assert (mid["progress"]["active"], mid["progress"]["pending"]) == (1, 1)
    b.report(("vitals", v2.id, "active"))
    assert _get(api, mlops, second["id"])["state"] == "succeeded"
    # A finished rollout keeps its record when devices move on.
    assert _get(api, mlops, first["id"])["progress"]["active"] == 2


def test_a_failed_device_fails_the_rollout(app, api, token_for):
    ops, mlops = token_for("it-ops"), token_for("mlops-engineer")
    a = enroll_device(app, api, ops, "a")
    b = enroll_device(app, api, ops, "b")
    release = make_release(app)
    api.post("/api/v1/fleets", json={"name": "all"}, headers=bearer(mlops))
    rollout = _rollout(api, mlops, "all", release.id).json()
    a.report(("vitals", release.id, "failed"), error="self-test: output differs from golden")
    assert _get(api, mlops, rollout["id"])["state"] == "running"  # b has not finished
    b.report(("vitals", release.id, "active"))
    out = _get(api, mlops, rollout["id"])
    assert out["state"] == "failed" and out["finished_at"] is not None
    failed = [d for d in out["devices"] if d["phase"] == "failed"]
    assert [(d["device_name"], d["error"]) for d in failed] == [
        ("a", "self-test: output differs from golden")
    ]


def test_rollout_of_an_empty_fleet_succeeds_at_once(app, api, token_for):
    mlops = token_for("mlops-engineer")
    release = make_release(app)
    api.post(
        "/api/v1/fleets",
        json={"name": "nobody", "selector": {"site": "moon"}},
        headers=bearer(mlops),
    )
    out = _rollout(api, mlops, "nobody", release.id).json()
    assert out["state"] == "succeeded" and out["devices"] == []


def test_device_joining_later_gets_the_release_but_is_not_awaited(app, api, token_for):
    ops, mlops = token_for("it-ops"), token_for("mlops-engineer")
    release = make_release(app)
    api.post("/api/v1/fleets", json={"name": "all"}, headers=bearer(mlops))
    rollout = _rollout(api, mlops, "all", release.id).json()
    assert rollout["state"] == "succeeded"
    late = enroll_device(app, api, ops, "late")
    [model] = late.get(DESIRED).json()["models"]
    assert model["release_id"] == release.id


def test_newest_rollout_wins_across_fleets(app, api, token_for):
    ops, mlops = token_for("it-ops"), token_for("mlops-engineer")
    dev = enroll_device(app, api, ops, "bed", labels={"site": "icu"})
    v1, v2 = make_release(app), make_release(app)
    h = bearer(mlops)
    api.post("/api/v1/fleets", json={"name": "all"}, headers=h)
    api.post("/api/v1/fleets", json={"name": "icu", "selector": {"site": "icu"}}, headers=h)
    _rollout(api, mlops, "icu", v2.id)
    _rollout(api, mlops, "all", v1.id)
    [model] = dev.get(DESIRED).json()["models"]
    assert (model["fleet"], model["release_id"]) == ("all", v1.id)


def test_new_rollout_supersedes_a_running_one(app, api, token_for):
    ops, mlops = token_for("it-ops"), token_for("mlops-engineer")
    enroll_device(app, api, ops, "a")
    v1, v2 = make_release(app), make_release(app)
    api.post("/api/v1/fleets", json={"name": "all"}, headers=bearer(mlops))
    first = _rollout(api, mlops, "all", v1.id).json()
    _rollout(api, mlops, "all", v2.id)
    assert _get(api, mlops, first["id"])["state"] == "aborted"


def test_rollout_list_pages(app, api, token_for):
    mlops = token_for("mlops-engineer")
    release = make_release(app)
    api.post("/api/v1/fleets", json={"name": "all"}, headers=bearer(mlops))
    ids = [_rollout(api, mlops, "all", release.id).json()["id"] for _ in range(3)]
    page = api.get("/api/v1/rollouts?limit=2", headers=bearer(mlops)).json()
    assert [r["id"] for r in page["items"]] == ids[:2]
    rest = api.get(f"/api/v1/rollouts?limit=2&cursor={page['next_cursor']}", headers=bearer(mlops))
    assert [r["id"] for r in rest.json()["items"]] == ids[2:]
    assert api.get("/api/v1/rollouts/9999", headers=bearer(mlops)).status_code == 404
