"""The director: per-device metadata, signed with the director key root names, versioned,
expiring by the app's clock, and only ever the caller's own; plus the device's view of a
release's attestations."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest
from release_fixtures import enroll_device, make_release
from securesystemslib.signer import CryptoSigner
from sqlalchemy import select
from tuf.api.exceptions import UnsignedMetadataError
from tuf.api.metadata import Metadata
from tuf.api.serialization.json import CanonicalJSONSerializer
from tuf_fixtures import DIRECTOR_FIELD, init_trust, tuf_key

from conftest import bearer
from farpoint.core import intoto, keys
from farpoint.core.digest import hex_of
from farpoint.core.request_signing import sign_request
from farpoint.server.attestations import repository as attestations_repo
from farpoint.server.attestations.tables import Attestation
from farpoint.server.identity.tables import User

DIRECTOR = "/api/v1/tuf/director/targets.json"


def _rollout(api, token: str, fleet: str, release_id: int, **selector) -> None:
    h = bearer(token)
    if selector:
        r = api.post("/api/v1/fleets", json={"name": fleet, "selector": selector}, headers=h)
        assert r.status_code == 201, r.text
    r = api.post("/api/v1/rollouts", json={"fleet": fleet, "release_id": release_id}, headers=h)
    assert r.status_code == 201, r.text


def _verified(fx, data: bytes) -> Metadata:
    """Parse and check the signature with the director key named in the trusted root."""
    md = Metadata.from_bytes(data)
    root = fx.root.signed
    keyids = root.unrecognized_fields[DIRECTOR_FIELD]["keyids"]
    payload = CanonicalJSONSerializer().serialize(md.signed)
    assert set(md.signatures) == set(keyids)
    for kid in keyids:
        root.keys[kid].verify_signature(md.signatures[kid], payload)
    return md


def _at(app, offset_s: float) -> None:
    """Move the app's clock `offset_s` ahead of real time."""
    app.state.ctx.clock = lambda: time.time() + offset_s


def test_director_metadata_is_signed_per_device_and_versioned(
    app, api, admin_token, token_for, tmp_path
):
    fx = init_trust(api, admin_token, tmp_path)
    ops, mlops = token_for("it-ops"), token_for("mlops-engineer")
    a = enroll_device(app, api, ops, "bed-a", labels={"site": "icu"})
    b = enroll_device(app, api, ops, "bed-b", labels={"site": "er"})
    r1 = make_release(app)
    _rollout(api, mlops, "icu", r1.id, site="icu")

    first = a.get(DIRECTOR)
    assert first.status_code == 200, first.text
    md = _verified(fx, first.content)
    assert md.signed.type == "targets" and md.signed.version == 1
    assert md.signed.unrecognized_fields["x-farpoint-device"] == a.id
    manifest = md.signed.targets[f"releases/{r1.id}/manifest.json"]
    assert manifest.hashes == {"sha256": hex_of(r1.manifest_digest)}
    manifest_bytes = app.state.ctx.blobs.read_bytes(r1.manifest_digest)
    assert manifest.length == len(manifest_bytes)
    assert manifest.custom == {
        "model": "vitals",
        "release_id": r1.id,
        "model_path": f"releases/{r1.id}/model.onnx",
        "model_sha256": hex_of(r1.model_digest),
        "model_length": len(r1.blob),
        "fleet": "icu",
    }
    now = datetime.fromtimestamp(app.state.ctx.clock(), UTC)
    assert 3590 <= (md.signed.expires - now).total_seconds() <= 3600

    # Unchanged content: the same document, not a new version.
    assert a.get(DIRECTOR).content == first.content

    # Device B gets its own, which names nothing (no fleet matches it).
    other = _verified(fx, b.get(DIRECTOR).content)
    assert other.signed.unrecognized_fields["x-farpoint-device"] == b.id
    assert other.signed.targets == {}

    # A new rollout changes the content: a new version naming the new release.
    r2 = make_release(app)
    _rollout(api, mlops, "icu", r2.id)
    md2 = _verified(fx, a.get(DIRECTOR).content)
    assert md2.signed.version == 2
    assert list(md2.signed.targets) == [f"releases/{r2.id}/manifest.json"]

    # Rolling back is a newer version naming the older release (not a replay).
    _rollout(api, mlops, "icu", r1.id)
    md3 = _verified(fx, a.get(DIRECTOR).content)
    assert md3.signed.version == 3
    assert list(md3.signed.targets) == [f"releases/{r1.id}/manifest.json"]


def test_director_metadata_expires_by_the_app_clock_and_is_re_signed(
    app, api, admin_token, token_for, tmp_path
):
    fx = init_trust(api, admin_token, tmp_path)
    a = enroll_device(app, api, token_for("it-ops"), "bed-a")
    first = _verified(fx, a.get(DIRECTOR).content)

    _at(app, 1700)  # more than half the lifetime left: the stored document is served
    assert _verified(fx, a.get(DIRECTOR).content).signed.version == first.signed.version

    _at(app, 1900)  # less than half left: re-signed with a new version and expiry
    later = datetime.fromtimestamp(app.state.ctx.clock(), UTC)
    second = _verified(fx, a.get(DIRECTOR).content)
    assert second.signed.version == first.signed.version + 1
    assert not second.signed.is_expired(later)
    # The first one, kept by an attacker, has expired by then on a device's clock.
    _at(app, 3700)
    assert first.signed.is_expired(datetime.fromtimestamp(app.state.ctx.clock(), UTC))


def test_a_device_gets_only_its_own_director_metadata(app, api, admin_token, token_for, tmp_path):
    init_trust(api, admin_token, tmp_path)
    ops = token_for("it-ops")
    a = enroll_device(app, api, ops, "bed-a")
    b = enroll_device(app, api, ops, "bed-b")
    assert a.get(DIRECTOR).status_code == 200

    # B claims to be A but signs with its own key.
    forged = sign_request(b.key, a.id, "GET", DIRECTOR, b"", app.state.ctx.clock())
    assert api.get(DIRECTOR, headers=forged).status_code == 401
    # Naming A in the URL changes nothing: identity comes from the signature.
    url = f"{DIRECTOR}?device={a.id}"
    md = Metadata.from_bytes(b.get(url).content)
    assert md.signed.unrecognized_fields["x-farpoint-device"] == b.id
    # A person's token is no device credential; no credential at all is refused.
    assert api.get(DIRECTOR, headers=bearer(admin_token)).status_code == 401
    assert api.get(DIRECTOR).status_code == 401


def test_device_sees_approvals_and_test_results_of_its_release(
    app, api, admin_token, token_for, tmp_path
):
    init_trust(api, admin_token, tmp_path)
    ops, mlops = token_for("it-ops"), token_for("mlops-engineer")
    dev = enroll_device(app, api, ops, "bed-a")
    release, elsewhere = make_release(app), make_release(app, model="other")
    r = api.post("/api/v1/fleets", json={"name": "all", "selector": {}}, headers=bearer(mlops))
    assert r.status_code == 201, r.text
    _rollout(api, mlops, "all", release.id)

    def add(predicate: str, digest: str, tag: str) -> dict:
        envelope = {"payloadType": intoto.PAYLOAD_TYPE, "payload": tag, "signatures": []}
        with app.state.ctx.db.session() as s:
            user = s.scalars(select(User)).first()
            row = Attestation(
                predicate_type=predicate,
                envelope=envelope,
                statement={},
                signer_user_id=user.id,
                signer=user.name,
                key_id="sha256:" + "0" * 64,
            )
            attestations_repo.add(s, row, [("subject", digest)])
        return envelope

    approval = add(intoto.APPROVAL_V1, release.manifest_digest, "approval")
    result = add(intoto.TEST_RESULT_V01, release.model_digest, "evaluation")
    add(intoto.APPROVAL_V1, elsewhere.manifest_digest, "other release")
    add(intoto.SLSA_PROVENANCE_V1, release.model_digest, "provenance")

    url = f"/api/v1/devices/self/releases/{release.id}/attestations"
    r = dev.get(url)
    assert r.status_code == 200, r.text
    assert r.json() == {"attestations": [approval, result]}
    # A release this device is not told to run is not its business.
    assert dev.get(f"/api/v1/devices/self/releases/{elsewhere.id}/attestations").status_code == 404


def test_online_keys_rotate_and_a_device_follows_without_re_enrolling(
    app, api, admin_token, token_for, tmp_path
):
    fx = init_trust(api, admin_token, tmp_path)
    a = enroll_device(app, api, token_for("it-ops"), "bed-a", labels={"site": "icu"})
    r1 = make_release(app)
    _rollout(api, token_for("mlops-engineer"), "icu", r1.id, site="icu")
    before = _verified(fx, a.get(DIRECTOR).content)
    fx.updater("bed-a", device=a).refresh()
    old_online = dict(fx.online)
    keys_dir = app.state.ctx.settings.key_dir
    stolen = keys.load_private_key((keys_dir / "tuf-timestamp.pem").read_bytes())

    h = bearer(admin_token)
    refused = api.post("/api/v1/tuf/online-keys/rotate", json={"roles": ["root"]}, headers=h)
    assert refused.status_code == 422 and "root" in refused.json()["detail"]
    made = api.post("/api/v1/tuf/online-keys/rotate", json={}, headers=h)
    assert made.status_code == 200, made.text
    assert set(made.json()["next"]) == {"snapshot", "timestamp", "director"}
    again = api.post("/api/v1/tuf/online-keys/rotate", json={}, headers=h).json()
    assert again["next"] == made.json()["next"]  # asking twice makes no third key
    # Until a root names them, the next keys sign nothing: the device sees no change.
    assert _verified(fx, a.get(DIRECTOR).content).signed.version == before.signed.version

    # The offline root keys sign root v2 naming the next keys.
    fx.online = {role: tuf_key(pem) for role, pem in made.json()["next"].items()}
    fx.rotate_root()
    assert all(fx.online[r].keyid != old_online[r].keyid for r in fx.online)

    # The device's Updater, trusting root v1 only, follows to v2 and accepts the timestamp
    # and snapshot signed by the new keys; the director re-signs with the new key.
    fx.updater("bed-a", device=a, from_local=True).refresh()
    cached = tmp_path / "tuf-clients" / "bed-a" / "metadata"
    root_v2 = Metadata.from_bytes((cached / "root.json").read_bytes())
    assert root_v2.signed.version == 2
    timestamp = Metadata.from_bytes((cached / "timestamp.json").read_bytes())
    assert set(timestamp.signatures) == {fx.online["timestamp"].keyid}
    after = _verified(fx, a.get(DIRECTOR).content)
    assert after.signed.version == before.signed.version + 1
    assert set(after.signatures) == {fx.online["director"].keyid}

    # The server retired the old keys, and a stolen old key counts for nothing under v2.
    assert sorted(p.name for p in keys_dir.glob("tuf-*.next.pem")) == []
    listed = api.get("/api/v1/tuf/online-keys", headers=h).json()
    assert listed["next"] == {}
    assert tuf_key(listed["timestamp"]).keyid == fx.online["timestamp"].keyid
    forged = Metadata.from_bytes(timestamp.to_bytes())
    forged.signed.version += 1
    forged.signatures.clear()
    forged.sign(CryptoSigner(stolen))
    with pytest.raises(UnsignedMetadataError):
        root_v2.verify_delegate("timestamp", forged)
