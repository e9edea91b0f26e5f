"""Enrollment, device listing and the device-signed endpoints, on every configured database."""

from __future__ import annotations

import base64
import hashlib

import pytest
from release_fixtures import enroll_device, enrollment_token, make_release
from sqlalchemy import func, select
from tuf_fixtures import ensure_trust

from conftest import bearer
from farpoint.core import dsse, keys
from farpoint.core.request_signing import HEADER_SIGNATURE, HEADER_TIMESTAMP, sign_request
from farpoint.server.devices.tables import Device, EnrollmentToken

DESIRED = "/api/v1/devices/self/desired-state"


def _enroll_body(token: str, name: str, key: keys.PrivateKey | None = None, **extra):
    key = key or keys.generate_private_key()
    pem = keys.public_key_pem(key.public_key()).decode()
    return {"token": token, "name": name, "public_key_pem": pem, **extra}


def _device_count(app) -> int:
    with app.state.ctx.db.session() as s:
        return s.scalar(select(func.count()).select_from(Device))


def _fleet_and_rollout(api, token: str, release_id: int, fleet: str = "all", **selector):
    h = bearer(token)
    r = api.post("/api/v1/fleets", json={"name": fleet, "selector": selector}, headers=h)
    assert r.status_code == 201, r.text
    r = api.post("/api/v1/rollouts", json={"fleet": fleet, "release_id": release_id}, headers=h)
    assert r.status_code == 201, r.text
    return r.json()


# --- enrollment ----------------------------------------------------------------------


def test_enrollment_happy_path(app, api, token_for):
    ops = token_for("it-ops")
    created = enrollment_token(api, ops)
    ctx = app.state.ctx
    assert created["server_key_id"] == ctx.signing_key_id
    prefix, _secret, root_hex = created["token"].split(".")
    served = api.get("/api/v1/tuf/image/metadata/1.root.json", headers=bearer(ops)).content
    assert prefix == "fpe1" and root_hex == hashlib.sha256(served).hexdigest()
    assert created["root_digest"] == "sha256:" + root_hex

    key = keys.generate_private_key()
    r = api.post("/api/v1/devices/enroll", json=_enroll_body(created["token"], "bed-12", key))
    assert r.status_code == 201, r.text
    out = r.json()
    # The device checks the root it receives against the hex the token carried.
    root = base64.b64decode(out["root_json_b64"])
    assert hashlib.sha256(root).hexdigest() == root_hex and root == served
    assert out["root_digest"] == "sha256:" + root_hex

    device = api.get(f"/api/v1/devices/{out['device_id']}", headers=bearer(ops)).json()
    assert device["name"] == "bed-12"
    assert device["key_id"] == keys.key_id(key.public_key())
    assert device["online"] is True
    listed = api.get("/api/v1/devices", headers=bearer(token_for("business"))).json()
    assert [d["id"] for d in listed["items"]] == [out["device_id"]]


def test_only_a_hash_of_the_token_secret_is_stored(app, api, token_for):
    token = enrollment_token(api, token_for("it-ops"))["token"]
    secret = token.split(".")[1]
    with app.state.ctx.db.session() as s:
        row = s.scalars(select(EnrollmentToken)).one()
        assert secret not in row.secret_hash


def test_reused_token_is_409_and_stores_nothing(app, api, token_for):
    token = enrollment_token(api, token_for("it-ops"))["token"]
    assert api.post("/api/v1/devices/enroll", json=_enroll_body(token, "a")).status_code == 201
    r = api.post("/api/v1/devices/enroll", json=_enroll_body(token, "b"))
    assert r.status_code == 409
    assert r.headers["content-type"].startswith("application/problem+json")
    assert "this enrollment token was already used" in r.json()["detail"]
    assert _device_count(app) == 1


def test_concurrent_enrollments_with_one_token_enroll_one_device(app, api, token_for):
    from concurrent.futures import ThreadPoolExecutor

    token = enrollment_token(api, token_for("it-ops"))["token"]

    def attempt(i: int) -> int:
        return api.post(
            "/api/v1/devices/enroll", json=_enroll_body(token, f"racer-{i}")
        ).status_code

    with ThreadPoolExecutor(max_workers=6) as pool:
        codes = sorted(pool.map(attempt, range(6)))
    assert codes == [201, 409, 409, 409, 409, 409]
    assert _device_count(app) == 1


def test_expired_token_is_401(app, api, token_for):
    token = enrollment_token(api, token_for("it-ops"), expires_in_s=60)["token"]
    real_clock = app.state.ctx.clock
    app.state.ctx.clock = lambda: real_clock() + 61
    r = api.post("/api/v1/devices/enroll", json=_enroll_body(token, "late"))
    assert r.status_code == 401 and "expired" in r.json()["detail"]
    assert _device_count(app) == 0


def test_unknown_and_malformed_tokens_are_401(api, token_for):
    good = enrollment_token(api, token_for("it-ops"))["token"]
    forged = "fpe1.not-the-secret." + good.split(".")[2]
    for bad in (forged, "nonsense", "fpe1..abc"):
        r = api.post("/api/v1/devices/enroll", json=_enroll_body(bad, "x"))
        assert r.status_code == 401, bad


def test_malformed_key_is_422_and_leaves_the_token_usable(app, api, token_for):
    token = enrollment_token(api, token_for("it-ops"))["token"]
    body = {"token": token, "name": "x", "public_key_pem": "-----BEGIN PUBLIC KEY-----\nAA=="}
    r = api.post("/api/v1/devices/enroll", json=body)
    assert r.status_code == 422 and "public_key_pem" in r.json()["detail"]
    assert api.post("/api/v1/devices/enroll", json=_enroll_body(token, "x")).status_code == 201


def test_duplicate_device_name_is_409_and_leaves_the_token_usable(app, api, token_for):
    ops = token_for("it-ops")
    enroll_device(app, api, ops, "bed-1")
    token = enrollment_token(api, ops)["token"]
    r = api.post("/api/v1/devices/enroll", json=_enroll_body(token, "bed-1"))
    assert r.status_code == 409 and "bed-1" in r.json()["detail"]
    assert _device_count(app) == 1
    assert api.post("/api/v1/devices/enroll", json=_enroll_body(token, "bed-2")).status_code == 201


def test_token_labels_win_over_the_device_proposal(app, api, token_for):
    token = enrollment_token(api, token_for("it-ops"), labels={"site": "icu"})["token"]
    body = _enroll_body(token, "bed-3", labels={"site": "lobby", "floor": "2"})
    out = api.post("/api/v1/devices/enroll", json=body).json()
    assert out["labels"] == {"site": "icu", "floor": "2"}


def test_enrollment_token_before_trust_init_is_409(app, api, token_for):
    r = api.post("/api/v1/enrollment-tokens", json={}, headers=bearer(token_for("it-ops")))
    assert r.status_code == 409
    assert "farpoint trust init" in r.json()["detail"]
    with app.state.ctx.db.session() as s:
        assert s.scalar(select(func.count()).select_from(EnrollmentToken)) == 0


def test_enrollment_token_roles(app, api, token_for, admin_token):
    ensure_trust(app)
    url = "/api/v1/enrollment-tokens"
    assert api.post(url, json={}, headers=bearer(token_for("it-ops"))).status_code == 201
    assert api.post(url, json={}, headers=bearer(admin_token)).status_code == 201
    r = api.post(url, json={}, headers=bearer(token_for("data-scientist")))
    assert r.status_code == 403
    assert api.post(url, json={}).status_code == 401
    assert api.get("/api/v1/devices").status_code == 401


def test_device_list_pages(app, api, token_for):
    ops = token_for("it-ops")
    for i in range(3):
        enroll_device(app, api, ops, f"d{i}")
    page = api.get("/api/v1/devices?limit=2", headers=bearer(ops)).json()
    assert [d["name"] for d in page["items"]] == ["d0", "d1"]
    rest = api.get(f"/api/v1/devices?limit=2&cursor={page['next_cursor']}", headers=bearer(ops))
    assert [d["name"] for d in rest.json()["items"]] == ["d2"]
    assert rest.json()["next_cursor"] is None
    assert api.get("/api/v1/devices/nope", headers=bearer(ops)).status_code == 404


def test_device_goes_offline_after_the_online_window(app, api, token_for):
    ops = token_for("it-ops")
    dev = enroll_device(app, api, ops, "quiet")
    real_clock = app.state.ctx.clock
    app.state.ctx.clock = lambda: real_clock() + app.state.ctx.settings.device_online_s + 5
    assert api.get(f"/api/v1/devices/{dev.id}", headers=bearer(ops)).json()["online"] is False
    assert dev.get(DESIRED).status_code == 200
    assert api.get(f"/api/v1/devices/{dev.id}", headers=bearer(ops)).json()["online"] is True


# --- signed requests -----------------------------------------------------------------


def test_unsigned_and_wrongly_signed_requests_are_401(app, api, token_for):
    dev = enroll_device(app, api, token_for("it-ops"), "bed-4")
    assert dev.get(DESIRED).status_code == 200

    r = api.get(DESIRED)
    assert r.status_code == 401 and "signed" in r.json()["detail"]

    stranger = keys.generate_private_key()
    now = app.state.ctx.clock()
    r = api.get(DESIRED, headers=sign_request(stranger, dev.id, "GET", DESIRED, b"", now))
    assert r.status_code == 401 and "does not verify" in r.json()["detail"]

    # Signed for another path (the query is part of what is signed).
    h = dev.headers("GET", DESIRED + "?wait=0")
    assert api.get(DESIRED + "?wait=1", headers=h).status_code == 401

    r = api.get(DESIRED, headers=sign_request(stranger, "no-such-device", "GET", DESIRED, b"", now))
    assert r.status_code == 401 and "not enrolled" in r.json()["detail"]


def test_stale_timestamp_is_401(app, api, token_for):
    dev = enroll_device(app, api, token_for("it-ops"), "bed-5")
    old = app.state.ctx.clock() - 3600
    r = api.get(DESIRED, headers=sign_request(dev.key, dev.id, "GET", DESIRED, b"", old))
    assert r.status_code == 401 and "clock" in r.json()["detail"]


def test_replayed_request_is_401(app, api, token_for):
    dev = enroll_device(app, api, token_for("it-ops"), "bed-6")
    h = dev.headers("GET", DESIRED)
    assert api.get(DESIRED, headers=h).status_code == 200
    r = api.get(DESIRED, headers=h)
    assert r.status_code == 401 and "replay" in r.json()["detail"]
    # The same signature with s replaced by n - s also verifies; it is still a replay.
    from cryptography.hazmat.primitives.asymmetric.utils import (
        decode_dss_signature,
        encode_dss_signature,
    )

    n = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
    r_, s_ = decode_dss_signature(base64.b64decode(h[HEADER_SIGNATURE]))
    twin = base64.b64encode(encode_dss_signature(r_, n - s_)).decode()
    assert api.get(DESIRED, headers={**h, HEADER_SIGNATURE: twin}).status_code == 401
    # A fresh signature of the same request in the same second is fine.
    fresh = sign_request(dev.key, dev.id, "GET", DESIRED, b"", int(h[HEADER_TIMESTAMP]))
    assert api.get(DESIRED, headers=fresh).status_code == 200


def test_status_body_over_64_kib_is_413(app, api, token_for):
    dev = enroll_device(app, api, token_for("it-ops"), "chatty")
    r = dev.post_json("/api/v1/devices/self/status", {"heartbeat": {"x": "y" * 70_000}})
    assert r.status_code == 413


def test_status_is_stored_and_shown(app, api, token_for):
    ops = token_for("it-ops")
    dev = enroll_device(app, api, ops, "bed-7")
    assert dev.report(("vitals", None, "downloading")).status_code == 204
    r = dev.post_json("/api/v1/devices/self/status", {"models": [{"model": "x"}]})
    assert r.status_code == 422
    shown = api.get(f"/api/v1/devices/{dev.id}", headers=bearer(ops)).json()
    assert shown["heartbeat"] == {"uptime_s": 5}
    assert [(m["model"], m["phase"]) for m in shown["models"]] == [("vitals", "downloading")]


# --- desired state, manifests and blobs ------------------------------------------------


def test_desired_state_then_304_with_the_same_etag(app, api, token_for):
    dev = enroll_device(app, api, token_for("it-ops"), "bed-8")
    first = dev.get(DESIRED)
    assert first.status_code == 200
    state = first.json()
    assert state["models"] == [] and state["device_id"] == dev.id
    assert first.headers["etag"] == f'"{state["etag"]}"'
    again = dev.get(DESIRED + "?wait=0", headers={"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304 and again.headers["etag"] == first.headers["etag"]

    release = make_release(app)
    _fleet_and_rollout(api, token_for("mlops-engineer"), release.id)
    changed = dev.get(DESIRED + "?wait=0", headers={"If-None-Match": first.headers["etag"]})
    assert changed.status_code == 200
    [model] = changed.json()["models"]
    assert model == {
        "model": "vitals",
        "release_id": release.id,
        "manifest_digest": release.manifest_digest,
        "model_digest": release.model_digest,
        "fleet": "all",
        "rollout_id": model["rollout_id"],
        "health": {"window_s": 60, "max_error_rate": 0.05, "min_requests": 20,
                   "max_latency_p95_ms": None, "max_crashes": 1},
    }  # fmt: skip


def test_manifest_and_blob_only_for_desired_releases(app, api, token_for):
    dev = enroll_device(app, api, token_for("it-ops"), "bed-9", labels={"site": "icu"})
    wanted = make_release(app, "vitals")
    other = make_release(app, "sepsis")
    manifest_url = f"/api/v1/devices/self/releases/{wanted.id}/manifest"
    blob_url = f"/api/v1/devices/self/blobs/{wanted.model_digest}"
    assert dev.get(manifest_url).status_code == 404
    assert dev.get(blob_url).status_code == 404

    _fleet_and_rollout(api, token_for("mlops-engineer"), wanted.id, "icu", site="icu")
    r = dev.get(manifest_url)
    assert r.status_code == 200
    ctx = app.state.ctx
    payload = dsse.verify_envelope(
        r.json(), {ctx.signing_key_id: ctx.signing_key.public_key()}, dsse.MANIFEST_TYPE
    )
    assert payload["model_digest"] == wanted.model_digest
    r = dev.get(blob_url)
    assert r.status_code == 200 and r.content == wanted.blob

    # Another model's release and blob stay out of reach.
    assert dev.get(f"/api/v1/devices/self/releases/{other.id}/manifest").status_code == 404
    assert dev.get(f"/api/v1/devices/self/blobs/{other.model_digest}").status_code == 404
    assert dev.get("/api/v1/devices/self/blobs/sha256:nothex").status_code == 404


def test_blob_download_resumes_with_range(app, api, token_for):
    dev = enroll_device(app, api, token_for("it-ops"), "bed-10")
    release = make_release(app, blob=bytes(range(256)) * 8192)  # 2 MiB: several chunks
    _fleet_and_rollout(api, token_for("mlops-engineer"), release.id)
    url = f"/api/v1/devices/self/blobs/{release.model_digest}"
    size = len(release.blob)
    start = size - (1 << 20) - 123
    r = dev.get(url, headers={"Range": f"bytes={start}-"})
    assert r.status_code == 206
    assert r.headers["content-range"] == f"bytes {start}-{size - 1}/{size}"
    assert r.content == release.blob[start:]
    r = dev.get(url, headers={"Range": "bytes=10-19"})
    assert r.status_code == 206 and r.content == release.blob[10:20]
    r = dev.get(url, headers={"Range": f"bytes={size}-"})
    assert r.status_code == 416 and r.headers["content-range"] == f"bytes */{size}"


@pytest.mark.timeout(60)
def test_long_poll_returns_when_a_rollout_is_created(app, api, token_for):
    import threading
    import time

    dev = enroll_device(app, api, token_for("it-ops"), "bed-11")
    release = make_release(app)
    mlops = token_for("mlops-engineer")
    assert (
        api.post("/api/v1/fleets", json={"name": "all"}, headers=bearer(mlops)).status_code == 201
    )
    etag = dev.get(DESIRED).headers["etag"]

    def roll_out() -> None:
        time.sleep(0.3)
        body = {"fleet": "all", "release_id": release.id}
        api.post("/api/v1/rollouts", json=body, headers=bearer(mlops))

    wait_s = 5
    worker = threading.Thread(target=roll_out)
    started = time.monotonic()
    worker.start()
    r = dev.get(DESIRED + f"?wait={wait_s}", headers={"If-None-Match": etag})
    elapsed = time.monotonic() - started
    worker.join()
    assert r.status_code == 200
    assert [m["release_id"] for m in r.json()["models"]] == [release.id]
    assert elapsed < wait_s
