"""Remote diagnostics and tokens that pin the TLS CA, on every configured database."""

from __future__ import annotations

import dataclasses
import hashlib

import pytest
from release_fixtures import enroll_device, enrollment_token

from conftest import bearer
from farpoint.core import keys
from tls_certs import write_tls_files

DESIRED = "/api/v1/devices/self/desired-state"


def _upload(**extra):
    return {
        "logs": [
            {"at": 1.5, "level": "INFO", "logger": "farpoint.agent", "message": "serving"},
            {"at": 2.5, "level": "ERROR", "logger": "farpoint.agent", "message": "boom"},
        ],
        "errors": [{"at": 2.5, "level": "ERROR", "logger": "farpoint.agent", "message": "boom"}],
        "agent": {"version": "0.1.0"},
        **extra,
    }


def test_a_diagnostics_request_reaches_the_device_and_its_upload_is_shown(app, api, token_for):
    ops = token_for("it-ops")
    dev = enroll_device(app, api, ops, "bed-1")
    before = dev.get(DESIRED).json()
    assert before["diagnostics"] is None

    r = api.post(f"/api/v1/devices/{dev.id}/diagnostics", headers=bearer(ops))
    assert r.status_code == 201, r.text
    request = r.json()
    assert request["uploaded_at"] is None and request["bundle"] is None
    # asking again while the device has not answered is the same request
    again = api.post(f"/api/v1/devices/{dev.id}/diagnostics", headers=bearer(ops)).json()
    assert again["id"] == request["id"]

    # the desired state carries it, and its etag changed so a long poll returns
    state = dev.get(DESIRED + "?wait=0", headers={"If-None-Match": f'"{before["etag"]}"'})
    assert state.status_code == 200
    assert state.json()["diagnostics"] == {"id": request["id"]}
    assert state.json()["etag"] != before["etag"]

    url = f"/api/v1/devices/self/diagnostics/{request['id']}"
    assert dev.post_json(url, _upload()).status_code == 204
    shown = api.get(f"/api/v1/devices/{dev.id}/diagnostics", headers=bearer(ops)).json()
    assert [d["id"] for d in shown] == [request["id"]]
    assert shown[0]["uploaded_at"] is not None and shown[0]["size_bytes"] > 0
    assert [line["message"] for line in shown[0]["bundle"]["logs"]] == ["serving", "boom"]
    assert shown[0]["bundle"]["errors"][0]["message"] == "boom"

    # answered: the desired state is back to what it was
    after = dev.get(DESIRED).json()
    assert after["diagnostics"] is None and after["etag"] == before["etag"]
    r = dev.post_json(url, _upload())
    assert r.status_code == 409 and "already answered" in r.json()["detail"]


def test_diagnostics_uploads_are_checked_and_bounded(app, api, token_for):
    ops = token_for("it-ops")
    dev = enroll_device(app, api, ops, "bed-2")
    other = enroll_device(app, api, ops, "bed-3")
    rid = api.post(f"/api/v1/devices/{dev.id}/diagnostics", headers=bearer(ops)).json()["id"]
    url = f"/api/v1/devices/self/diagnostics/{rid}"

    # another device cannot answer (or learn of) this device's request
    assert other.post_json(url, _upload()).status_code == 404
    r = dev.post_json(url, _upload(logs=[{"at": 1, "level": "LOUD", "logger": "x", "message": ""}]))
    assert r.status_code == 422 and "logs.0.level" in r.json()["detail"]
    r = dev.post_json(url, _upload(agent={"blob": "x" * 70_000}))
    assert r.status_code == 413
    shown = api.get(f"/api/v1/devices/{dev.id}/diagnostics", headers=bearer(ops)).json()
    assert shown[0]["uploaded_at"] is None  # nothing half-written
    assert dev.post_json(url, _upload()).status_code == 204


def test_diagnostics_need_it_ops_and_an_existing_device(app, api, token_for):
    ops = token_for("it-ops")
    dev = enroll_device(app, api, ops, "bed-4")
    assert api.post("/api/v1/devices/nope/diagnostics", headers=bearer(ops)).status_code == 404
    r = api.post(f"/api/v1/devices/{dev.id}/diagnostics", headers=bearer(token_for("business")))
    assert r.status_code == 403
    r = api.get(f"/api/v1/devices/{dev.id}/diagnostics", headers=bearer(token_for("business")))
    assert r.status_code == 403
    api.post(f"/api/v1/devices/{dev.id}/decommission", headers=bearer(ops))
    r = api.post(f"/api/v1/devices/{dev.id}/diagnostics", headers=bearer(ops))
    assert r.status_code == 409 and "will never answer" in r.json()["detail"]


# --- tokens that pin the TLS CA --------------------------------------------------------


@pytest.fixture
def tls_app(settings, tmp_path):  # type: ignore[no-untyped-def]
    from farpoint.server.app import create_app

    files = write_tls_files(tmp_path / "tls")
    tls_settings = dataclasses.replace(
        settings, tls_cert=files.cert, tls_key=files.key, tls_ca=files.ca
    )
    return create_app(tls_settings), files


def test_tokens_of_a_server_with_a_ca_name_its_sha256(tls_app):
    from fastapi.testclient import TestClient

    app, files = tls_app
    with TestClient(app, base_url="http://testserver") as api:
        from farpoint.server.identity.service import bootstrap_admin

        with app.state.ctx.db.session() as s:
            admin = bootstrap_admin(s, "root", 3600).token
        served = api.get("/api/v1/tls/ca.pem")
        assert served.status_code == 200 and served.content == files.ca_bytes
        assert served.headers["content-type"] == "application/x-pem-file"
        created = enrollment_token(api, admin)
        ca_hex = created["token"].split(".")[3]
        assert ca_hex == hashlib.sha256(served.content).hexdigest()
        assert created["ca_digest"] == "sha256:" + ca_hex
        # the four-part token enrolls like any other
        key = keys.generate_private_key()
        body = {
            "token": created["token"],
            "name": "bed-5",
            "public_key_pem": keys.public_key_pem(key.public_key()).decode(),
        }
        assert api.post("/api/v1/devices/enroll", json=body).status_code == 201


def test_without_a_ca_the_token_has_three_parts_and_no_ca_is_served(app, api, token_for):
    created = enrollment_token(api, token_for("it-ops"))
    assert len(created["token"].split(".")) == 3 and created["ca_digest"] is None
    r = api.get("/api/v1/tls/ca.pem")
    assert r.status_code == 404 and "FARPOINT_TLS_CA" in r.json()["detail"]
