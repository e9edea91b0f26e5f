"""The image repository end to end: uploads are verified as a TUF client would, and
`tuf.ngclient` resolves published releases through timestamp, snapshot, targets and the
`releases` delegation, in process."""

from __future__ import annotations

import hashlib
import json
import time
from datetime import timedelta

import pytest
from release_fixtures import enroll_device, make_release
from securesystemslib.signer import CryptoSigner
from tuf.api.exceptions import UnsignedMetadataError
from tuf.api.metadata import Metadata, TargetFile
from tuf.api.serialization.json import CanonicalJSONSerializer
from tuf_fixtures import TUF, build_root, init_trust

from conftest import bearer
from farpoint.core import keys
from farpoint.core.digest import hex_of
from farpoint.server.tuf.tables import TufMetadata


def _status(api, token) -> dict:
    r = api.get(f"{TUF}/status", headers=bearer(token))
    assert r.status_code == 200, r.text
    return r.json()


def _manager(fx, user: str = "mia") -> keys.PrivateKey:
    key = keys.generate_private_key()
    fx.bind(keys.public_key_pem(key.public_key()), user, ["mlops-engineer"])
    return key


def _stored_versions(app, role: str) -> list[int]:
    with app.state.ctx.db.session() as s:
        rows = s.query(TufMetadata.version).filter(TufMetadata.role == role).all()
        return sorted(v for (v,) in rows)


def test_published_release_resolves_through_ngclient(app, api, admin_token, token_for, tmp_path):
    assert _status(api, admin_token)["initialized"] is False
    fx = init_trust(api, admin_token, tmp_path)
    release = make_release(app)
    fx.publish(release.id, _manager(fx), token=token_for("mlops-engineer"))
    status = _status(api, token_for("business"))
    assert status["initialized"] is True
    assert {"root", "targets", "releases", "snapshot", "timestamp"} <= set(status["roles"])
    assert status["trust_files"] == ["bindings.json", "policy.json"]

    # A device reads the repository with signed requests, bootstrapped with its enrollment root.
    device = enroll_device(app, api, token_for("it-ops"), "bed-1")
    updater = fx.updater("device", device=device)
    updater.refresh()
    for path, digest, data in (
        (f"releases/{release.id}/model.onnx", release.model_digest, release.blob),
        (
            f"releases/{release.id}/manifest.json",
            release.manifest_digest,
            app.state.ctx.blobs.read_bytes(release.manifest_digest),
        ),
    ):
        info = updater.get_targetinfo(path)
        assert info is not None, path
        assert info.hashes == {"sha256": hex_of(digest)} and info.length == len(data)
        with open(updater.download_target(info), "rb") as f:
            assert f.read() == data
    bindings = updater.get_targetinfo("trust/bindings.json")
    assert bindings is not None
    with open(updater.download_target(bindings), "rb") as f:
        assert json.loads(f.read())["keys"]  # the manager's binding
    assert updater.get_targetinfo("releases/999/model.onnx") is None


def test_reads_need_a_device_signature_or_a_token_and_models_resume(
    app, api, admin_token, token_for, tmp_path
):
    fx = init_trust(api, admin_token, tmp_path)
    release = make_release(app)
    fx.publish(release.id, _manager(fx))
    url = f"{TUF}/image/targets/releases/{release.id}/model.onnx"
    assert api.get(url).status_code == 401
    assert api.get(f"{TUF}/image/metadata/timestamp.json").status_code == 401
    device = enroll_device(app, api, token_for("it-ops"), "bed-1")
    r = device.get(url, headers={"Range": "bytes=100-"})
    assert r.status_code == 206 and r.content == release.blob[100:]
    assert r.headers["content-range"] == f"bytes 100-{len(release.blob) - 1}/{len(release.blob)}"
    assert device.get(url, headers={"Range": f"bytes={len(release.blob)}-"}).status_code == 416
    assert api.get(url, headers=bearer(token_for("business"))).content == release.blob


def test_releases_signed_by_an_unbound_key_are_refused_by_server_and_client(
    app, api, admin_token, tmp_path
):
    fx = init_trust(api, admin_token, tmp_path)
    _manager(fx)
    release = make_release(app)
    stranger = keys.generate_private_key()
    r = fx.publish(release.id, stranger, expect=422)
    assert "releases is validly signed by 0" in r.json()["detail"]
    assert _stored_versions(app, "releases") == []

    # A compromised server stores it anyway and re-signs snapshot and timestamp over it.
    forged = fx.sign_releases([release.id], [stranger])
    data = forged.to_bytes()
    with app.state.ctx.db.session() as s:
        s.add(
            TufMetadata(
                role="releases",
                version=1,
                data=data,
                digest="sha256:" + hashlib.sha256(data).hexdigest(),
                expires=forged.signed.expires,
                created_by="attacker",
            )
        )
    fx.set_policy({"schema": "farpoint.trust-policy/v1", "evaluation": "passed"})
    updater = fx.updater()
    updater.refresh()
    with pytest.raises(UnsignedMetadataError):
        updater.get_targetinfo(f"releases/{release.id}/model.onnx")


def test_releases_upload_checks_targets_versions_and_thresholds(
    app, api, admin_token, token_for, tmp_path
):
    fx = init_trust(api, admin_token, tmp_path)
    mia, noor = _manager(fx, "mia"), _manager(fx, "noor")
    release = make_release(app)

    # Targets must be the server's bytes, of releases it holds, inside the delegation.
    md = fx.sign_releases([release.id], [])
    path = f"releases/{release.id}/model.onnx"
    md.signed.targets[path] = TargetFile.from_data(path, b"other bytes", ["sha256"])
    md.sign(CryptoSigner(mia), append=True)
    r = fx.put("releases", md.to_bytes())
    assert r.status_code == 422 and "differ from the server's sha256" in r.json()["detail"]
    for bad in ("releases/999/model.onnx", f"releases/{release.id}/other.bin", "trust/x.json"):
        md = fx.sign_releases([], [])
        md.signed.targets[bad] = TargetFile.from_data(bad, b"x", ["sha256"])
        md.sign(CryptoSigner(mia), append=True)
        assert fx.put("releases", md.to_bytes()).status_code == 422, bad
    assert _stored_versions(app, "releases") == []
    # Only release managers (and admins) may upload.
    assert fx.put("releases", b"{}", token_for("data-scientist")).status_code == 403

    first = fx.publish(release.id, mia).json()
    assert first["version"] == 1 and first["snapshot_version"] > 1
    # A second manager adds their signature to the same version.
    assert fx.cosign(noor).status_code == 200
    r = fx.cosign(noor)  # the same signature again adds nothing
    assert r.status_code == 409 and "adds none" in r.json()["detail"]
    changed = fx.sign_releases([release.id, make_release(app).id], [mia, noor], version=1)
    r = fx.put("releases", changed.to_bytes())
    assert r.status_code == 409 and "other content" in r.json()["detail"]
    assert _stored_versions(app, "releases") == [1]

    # With a threshold of two, one manager alone cannot publish.
    fx.set_releases_threshold(2)
    second = make_release(app)
    fx.publish(second.id, mia, expect=422)
    fx.publish(second.id, [mia, noor])
    assert _stored_versions(app, "releases") == [1, 2]
    stale = fx.sign_releases([], [mia, noor], version=1)
    assert fx.put("releases", stale.to_bytes()).status_code == 409


def test_root_rotation_is_verified_and_followed_by_the_client(app, api, admin_token, tmp_path):
    fx = init_trust(api, admin_token, tmp_path)
    old = list(fx.root_signers)
    updater = fx.updater()
    updater.refresh()

    new = [CryptoSigner(keys.generate_private_key()) for _ in range(3)]
    # Only the new keys, or only the old ones, is not enough; nor is skipping a version.
    r = fx.rotate_root(new, sign_with=new[:2], expect=422)
    assert "the current root v1" in r.json()["detail"]
    r = fx.rotate_root(new, sign_with=old[:2], expect=422)
    assert "the new root itself" in r.json()["detail"]
    fx.rotate_root(new)
    assert _status(api, admin_token)["roles"]["root"]["version"] == 2

    client_root = tmp_path / "tuf-clients" / "client" / "metadata" / "root.json"
    fresh = fx.updater("fresh")  # bootstrapped with v1, it walks to v2
    fresh.refresh()
    fx.updater(from_local=True).refresh()
    assert Metadata.from_bytes(client_root.read_bytes()).signed.version == 2
    fresh_root = tmp_path / "tuf-clients" / "fresh" / "metadata" / "root.json"
    assert Metadata.from_bytes(fresh_root.read_bytes()).signed.version == 2

    # The old keys no longer sign a v3; the new ones do.
    fx.rotate_root(old, sign_with=old, expect=422)
    fx.rotate_root([*new], sign_with=new[:2])
    assert _status(api, admin_token)["roles"]["root"]["version"] == 3


def test_root_must_name_the_servers_online_keys(app, api, admin_token, tmp_path):
    fx = init_trust(api, admin_token, tmp_path)
    stranger = CryptoSigner(keys.generate_private_key()).public_key
    expires = fx.now() + timedelta(days=365)
    for role, expected in (("snapshot", "for snapshot"), ("director", "for director")):
        online = {**fx.online, role: stranger}
        md = build_root(
            2,
            [s.public_key for s in fx.root_signers],
            2,
            fx.targets_signer.public_key,
            online,
            expires,
        )
        for sg in fx.root_signers[:2]:
            md.sign(sg, append=True)
        r = fx.put("root", md.to_bytes())
        assert r.status_code == 422 and expected in r.json()["detail"], r.text
    md = build_root(
        2,
        [s.public_key for s in fx.root_signers],
        2,
        fx.targets_signer.public_key,
        fx.online,
        expires,
    )
    del md.signed.unrecognized_fields["x-farpoint-director"]
    for sg in fx.root_signers[:2]:
        md.sign(sg, append=True)
    r = fx.put("root", md.to_bytes())
    assert r.status_code == 422 and "x-farpoint-director" in r.json()["detail"]
    assert fx.put("root", b"not json").status_code == 422
    assert _status(api, admin_token)["roles"]["root"]["version"] == 1


def test_targets_and_trust_files_are_checked(app, api, admin_token, token_for, tmp_path):
    fx = init_trust(api, admin_token, tmp_path)
    current = fx.targets.signed.version

    # Signed by a root key instead of the targets key.
    fx.targets.signed.version = current + 1
    fx.targets.signatures.clear()
    fx.targets.sign(fx.root_signers[0])
    r = fx.put("targets", fx.targets.to_bytes())
    assert r.status_code == 422 and "targets is validly signed by 0" in r.json()["detail"]
    # Not a newer version.
    fx.targets.signed.version = current
    fx.targets.signatures.clear()
    fx.targets.sign(fx.targets_signer)
    assert fx.put("targets", fx.targets.to_bytes()).status_code == 409
    # Expired.
    fx.targets.signed.version = current + 1
    fx.targets.signed.expires = fx.now() - timedelta(seconds=1)
    fx.targets.signatures.clear()
    fx.targets.sign(fx.targets_signer)
    assert fx.put("targets", fx.targets.to_bytes()).status_code == 422
    fx.targets.signed.version = current
    assert _status(api, admin_token)["roles"]["targets"]["version"] == current

    # Trust files: only the listed bytes, only by admins.
    assert fx.put("trust-files/policy.json", b'{"evil": 1}').status_code == 422
    r = fx.put("trust-files/policies/icu.json", b"{}")
    assert r.status_code == 422 and "does not list trust/policies/icu.json" in r.json()["detail"]
    assert fx.put("trust-files/../etc.json", b"{}").status_code in (404, 422)
    good = fx.trust_files["policy.json"]
    assert fx.put("trust-files/policy.json", good, token_for("mlops-engineer")).status_code == 403
    assert fx.put("trust-files/policy.json", good).status_code == 200
    fx.set_policy({"schema": "farpoint.trust-policy/v1", "evaluation": "none"}, fleet="icu")
    r = api.get(f"{TUF}/image/targets/trust/policies/icu.json", headers=bearer(admin_token))
    assert json.loads(r.content)["evaluation"] == "none"


def test_snapshot_and_timestamp_are_re_signed_by_the_app_clock(
    app, api, admin_token, token_for, tmp_path
):
    fx = init_trust(api, admin_token, tmp_path)
    device = enroll_device(app, api, token_for("it-ops"), "bed-1")  # outlives bearer tokens
    before = {r: max(_stored_versions(app, r)) for r in ("snapshot", "timestamp")}
    ts_url = f"{TUF}/image/metadata/timestamp.json"

    def fetch_timestamp(offset_s: float) -> Metadata:
        app.state.ctx.clock = lambda: time.time() + offset_s
        r = device.get(ts_url)
        assert r.status_code == 200, r.text
        md = Metadata.from_bytes(r.content)
        # Signed by the timestamp key the trusted root names.
        payload = CanonicalJSONSerializer().serialize(md.signed)
        fx.root.signed.verify_delegate("timestamp", payload, md.signatures)
        return md

    same = fetch_timestamp(11 * 3600)  # more than half of a day left
    assert same.signed.version == before["timestamp"]
    newer = fetch_timestamp(13 * 3600)  # less than half left: timestamp only
    assert newer.signed.version == before["timestamp"] + 1
    assert max(_stored_versions(app, "snapshot")) == before["snapshot"]
    later = fetch_timestamp(4 * 86400)  # snapshot past half of its week: both re-signed
    assert max(_stored_versions(app, "snapshot")) == before["snapshot"] + 1
    assert later.signed.snapshot_meta.version == before["snapshot"] + 1
    assert later.signed.version == before["timestamp"] + 2
