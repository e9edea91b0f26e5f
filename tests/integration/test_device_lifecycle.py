"""Fleet-scoped enrollment, approval, rejection, decommissioning and key rotation, on every
configured database."""

from __future__ import annotations

import base64

from release_fixtures import Device, enroll_device, enrollment_token, make_release
from sqlalchemy import func, select

from conftest import bearer
from farpoint.core import keys
from farpoint.core.key_rotation import sign_rotation
from farpoint.core.request_signing import sign_request
from farpoint.server.audit.tables import AuditEvent
from farpoint.server.devices.tables import EnrollmentToken

DESIRED = "/api/v1/devices/self/desired-state"
STATUS = "/api/v1/devices/self/status"
DIRECTOR = "/api/v1/tuf/director/targets.json"
KEY = "/api/v1/devices/self/key"


def _enroll(api, token: str, name: str, **extra) -> tuple[dict, keys.PrivateKey]:
    key = keys.generate_private_key()
    body = {
        "token": token,
        "name": name,
        "public_key_pem": keys.public_key_pem(key.public_key()).decode(),
        **extra,
    }
    r = api.post("/api/v1/devices/enroll", json=body)
    assert r.status_code == 201, r.text
    return r.json(), key


def _device(app, api, out: dict, key: keys.PrivateKey, name: str) -> Device:
    return Device(app=app, api=api, id=out["device_id"], name=name, key=key, labels=out["labels"])


def _fleet(api, token: str, name: str, **selector: str) -> dict:
    r = api.post("/api/v1/fleets", json={"name": name, "selector": selector}, headers=bearer(token))
    assert r.status_code == 201, r.text
    return r.json()


def _audit_actions(app) -> list[str]:
    with app.state.ctx.db.session() as s:
        return list(s.scalars(select(AuditEvent.action).order_by(AuditEvent.seq)))


# --- fleet-scoped tokens ----------------------------------------------------------------


def test_a_fleet_token_gives_the_device_the_fleets_selector_labels(app, api, token_for):
    ops = token_for("it-ops")
    _fleet(api, ops, "ward-a", ward="a", site="north")
    created = enrollment_token(api, ops, fleet="ward-a", labels={"floor": "2"})
    assert created["fleet"] == "ward-a"
    out, _ = _enroll(api, created["token"], "bed-1", labels={"ward": "b", "vendor": "acme"})
    # the selector wins over the device's proposal: the token names the fleet
    assert out["labels"] == {"ward": "a", "site": "north", "floor": "2", "vendor": "acme"}
    fleet = api.get("/api/v1/fleets/ward-a", headers=bearer(ops)).json()
    assert fleet["device_count"] == 1


def test_a_token_for_an_unknown_fleet_is_404_and_stores_nothing(app, api, token_for):
    ops = token_for("it-ops")
    enrollment_token(api, ops)  # trust initialized, one token exists
    r = api.post("/api/v1/enrollment-tokens", json={"fleet": "nope"}, headers=bearer(ops))
    assert r.status_code == 404 and "fleet 'nope' does not exist" in r.json()["detail"]
    with app.state.ctx.db.session() as s:
        assert s.scalar(select(func.count()).select_from(EnrollmentToken)) == 1


def test_token_labels_that_contradict_the_fleet_selector_are_422(app, api, token_for):
    ops = token_for("it-ops")
    enrollment_token(api, ops)
    _fleet(api, ops, "ward-a", ward="a")
    body = {"fleet": "ward-a", "labels": {"ward": "b"}}
    r = api.post("/api/v1/enrollment-tokens", json=body, headers=bearer(ops))
    assert r.status_code == 422 and "contradict the selector" in r.json()["detail"]


# --- approval ---------------------------------------------------------------------------


def test_a_pending_device_only_reports_until_it_ops_approve_it(app, api, token_for):
    ops = token_for("it-ops")
    _fleet(api, ops, "all")
    created = enrollment_token(api, ops, requires_approval=True)
    assert created["requires_approval"] is True
    out, key = _enroll(api, created["token"], "bed-2", hardware={"architecture": "aarch64"})
    assert out["state"] == "pending"
    dev = _device(app, api, out, key, "bed-2")

    for path in (DESIRED, DIRECTOR):
        r = dev.get(path)
        assert r.status_code == 403, path
        problem = r.json()
        assert "waiting for IT operations to approve its enrollment" in problem["detail"]
        assert problem["device_state"] == "pending"
    # its status report is taken: IT operations see the device before they decide
    assert dev.report(("vitals", None, "pending")).status_code == 204
    pending = api.get("/api/v1/devices?state=pending", headers=bearer(ops)).json()["items"]
    assert [(d["name"], d["state"], d["heartbeat"]) for d in pending] == [
        ("bed-2", "pending", {"uptime_s": 5})
    ]
    assert pending[0]["hardware"] == {"architecture": "aarch64"}
    # a pending device is no fleet's target yet
    assert api.get("/api/v1/fleets/all", headers=bearer(ops)).json()["device_count"] == 0

    r = api.post(f"/api/v1/devices/{dev.id}/approve", headers=bearer(ops))
    assert r.status_code == 200, r.text
    approved = r.json()
    assert approved["state"] == "active" and approved["state_changed_by"].startswith("u-")
    assert dev.get(DESIRED).status_code == 200
    assert api.get("/api/v1/devices?state=pending", headers=bearer(ops)).json()["items"] == []
    assert api.get("/api/v1/fleets/all", headers=bearer(ops)).json()["device_count"] == 1
    assert "device.approve" in _audit_actions(app)

    again = api.post(f"/api/v1/devices/{dev.id}/approve", headers=bearer(ops))
    assert again.status_code == 409 and "not pending" in again.json()["detail"]


def test_approval_needs_it_ops(app, api, token_for):
    ops = token_for("it-ops")
    out, _ = _enroll(api, enrollment_token(api, ops, requires_approval=True)["token"], "bed-3")
    url = f"/api/v1/devices/{out['device_id']}/approve"
    r = api.post(url, headers=bearer(token_for("business")))
    assert r.status_code == 403
    shown = api.get(f"/api/v1/devices/{out['device_id']}", headers=bearer(ops)).json()
    assert shown["state"] == "pending"


def test_a_rejected_device_is_refused_everything(app, api, token_for):
    ops = token_for("it-ops")
    out, key = _enroll(api, enrollment_token(api, ops, requires_approval=True)["token"], "bed-4")
    dev = _device(app, api, out, key, "bed-4")
    r = api.post(f"/api/v1/devices/{dev.id}/reject", headers=bearer(ops))
    assert r.status_code == 200 and r.json()["state"] == "rejected"
    for r in (dev.get(DESIRED), dev.report(("vitals", None, "pending"))):
        assert r.status_code == 403 and "rejected its enrollment" in r.json()["detail"]
    assert api.post(f"/api/v1/devices/{dev.id}/approve", headers=bearer(ops)).status_code == 409


def test_only_a_correctly_signed_request_learns_the_devices_state(app, api, token_for):
    ops = token_for("it-ops")
    out, _ = _enroll(api, enrollment_token(api, ops, requires_approval=True)["token"], "bed-5")
    stranger = keys.generate_private_key()
    h = sign_request(stranger, out["device_id"], "GET", DESIRED, b"", app.state.ctx.clock())
    r = api.get(DESIRED, headers=h)
    assert r.status_code == 401 and "device_state" not in r.json()


# --- decommissioning --------------------------------------------------------------------


def test_a_decommissioned_device_is_refused_and_leaves_every_rollout(app, api, token_for):
    ops, mlops = token_for("it-ops"), token_for("mlops-engineer")
    kept = enroll_device(app, api, ops, "bed-6")
    gone = enroll_device(app, api, ops, "bed-7")
    _fleet(api, mlops, "all")
    release = make_release(app)
    body = {"fleet": "all", "release_id": release.id}
    assert api.post("/api/v1/rollouts", json=body, headers=bearer(mlops)).status_code == 201
    assert gone.report(("vitals", release.id, "active")).status_code == 204

    r = api.post(f"/api/v1/devices/{gone.id}/decommission", headers=bearer(ops))
    assert r.status_code == 200 and r.json()["state"] == "decommissioned"
    for r in (gone.get(DESIRED), gone.report(("vitals", release.id, "active")), gone.get(DIRECTOR)):
        assert r.status_code == 403
        assert "decommissioned" in r.json()["detail"]
        assert r.json()["device_state"] == "decommissioned"
    assert kept.get(DESIRED).status_code == 200

    # the record stays for history, with what it last reported
    shown = api.get(f"/api/v1/devices/{gone.id}", headers=bearer(ops)).json()
    assert shown["state"] == "decommissioned"
    assert [(m["release_id"], m["phase"]) for m in shown["models"]] == [(release.id, "active")]
    # a new rollout no longer targets it, and the fleet no longer counts it
    newer = make_release(app)
    body = {"fleet": "all", "release_id": newer.id}
    rollout = api.post("/api/v1/rollouts", json=body, headers=bearer(mlops)).json()
    assert [d["device_id"] for d in rollout["devices"]] == [kept.id]
    assert api.get("/api/v1/fleets/all", headers=bearer(ops)).json()["device_count"] == 1

    again = api.post(f"/api/v1/devices/{gone.id}/decommission", headers=bearer(ops))
    assert again.status_code == 409
    assert api.post("/api/v1/devices/nope/decommission", headers=bearer(ops)).status_code == 404
    assert _audit_actions(app).count("device.decommission") == 1


# --- key rotation -----------------------------------------------------------------------


def _rotation(dev: Device, new_key: keys.PrivateKey, old_key_id: str | None = None) -> dict:
    old = old_key_id or keys.key_id(dev.key.public_key())
    return {
        "public_key_pem": keys.public_key_pem(new_key.public_key()).decode(),
        "old_key_id": old,
        "proof_b64": base64.b64encode(sign_rotation(new_key, dev.id, old)).decode(),
    }


def test_key_rotation_replaces_the_key_and_refuses_the_old_one(app, api, token_for):
    ops = token_for("it-ops")
    dev = enroll_device(app, api, ops, "bed-8")
    old_key = dev.key
    new_key = keys.generate_private_key()
    body = _rotation(dev, new_key)
    r = dev.post_json(KEY, body)
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["key_id"] == keys.key_id(new_key.public_key())
    assert out["previous_key_id"] == keys.key_id(old_key.public_key())

    r = dev.get(DESIRED)  # still signed with the old key
    assert r.status_code == 401 and "does not verify" in r.json()["detail"]
    dev.key = new_key
    assert dev.get(DESIRED).status_code == 200
    shown = api.get(f"/api/v1/devices/{dev.id}", headers=bearer(ops)).json()
    assert shown["key_id"] == out["key_id"] and shown["key_rotated_at"] is not None

    # the answer was lost: the device retries, now with the new key, and is told the same
    retry = dev.post_json(KEY, body)
    assert retry.status_code == 200 and retry.json() == out
    assert _audit_actions(app).count("device.key-rotate") == 1


def test_a_rotation_without_a_valid_proof_of_the_new_key_changes_nothing(app, api, token_for):
    ops = token_for("it-ops")
    dev = enroll_device(app, api, ops, "bed-9")
    new_key, other = keys.generate_private_key(), keys.generate_private_key()
    body = _rotation(dev, new_key)
    body["proof_b64"] = _rotation(dev, other)["proof_b64"]  # signed by another key
    r = dev.post_json(KEY, body)
    assert r.status_code == 401 and "proof does not verify" in r.json()["detail"]
    # a proof made for another device does not carry over either
    body = _rotation(dev, new_key)
    other_device = enroll_device(app, api, ops, "bed-10")
    stolen = dict(body, old_key_id=keys.key_id(other_device.key.public_key()))
    assert other_device.post_json(KEY, stolen).status_code == 401
    r = dev.post_json(KEY, dict(body, public_key_pem="not a key"))
    assert r.status_code == 422 and "public_key_pem" in r.json()["detail"]
    wrong_old = _rotation(dev, new_key, old_key_id="sha256:" + "0" * 64)
    r = dev.post_json(KEY, wrong_old)
    assert r.status_code == 409 and "not the device's current key" in r.json()["detail"]
    assert dev.get(DESIRED).status_code == 200  # the old key still works
    assert "device.key-rotate" not in _audit_actions(app)


def test_a_pending_device_cannot_rotate_its_key(app, api, token_for):
    ops = token_for("it-ops")
    out, key = _enroll(api, enrollment_token(api, ops, requires_approval=True)["token"], "bed-11")
    dev = _device(app, api, out, key, "bed-11")
    r = dev.post_json(KEY, _rotation(dev, keys.generate_private_key()))
    assert r.status_code == 403 and r.json()["device_state"] == "pending"
