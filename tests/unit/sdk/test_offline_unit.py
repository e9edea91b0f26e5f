"""The offline side's pure parts: root, targets, rotation, policy validation, release
signing, and offline verification of a bundle built here (no server)."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from securesystemslib.signer import CryptoSigner
from tuf.api.exceptions import UnsignedMetadataError
from tuf.api.metadata import Metadata, MetaFile, Root, Snapshot, Timestamp

from farpoint.core import dsse, intoto, keys, oms
from farpoint.core.digest import digest_bytes
from farpoint.core.errors import BadRequest, Conflict
from farpoint.core.intoto import Statement, Subject
from farpoint.sdk import offline, publish

NOW = datetime.now(UTC).replace(microsecond=0)


def _signer() -> CryptoSigner:
    key = keys.generate_private_key()
    return CryptoSigner(key, offline.tuf_key(key.public_key()))


def _online() -> dict[str, CryptoSigner]:
    return {role: _signer() for role in ("snapshot", "timestamp", "director")}


def test_tuf_key_is_p256_and_stable_across_pem_and_object():
    key = keys.generate_private_key()
    a = offline.tuf_key(key.public_key())
    b = offline.tuf_key(keys.public_key_pem(key.public_key()))
    assert a.keyid == b.keyid and a.scheme == "ecdsa-sha2-nistp256"


def test_root_names_roles_and_vouches_for_the_director():
    roots = [_signer() for _ in range(3)]
    targets, online = _signer(), _online()
    root = offline.build_root(
        [s.public_key for s in roots],
        2,
        targets.public_key,
        {r: s.public_key for r, s in online.items()},
        NOW,
    )
    assert root.roles["root"].threshold == 2 and len(root.roles["root"].keyids) == 3
    assert root.roles["targets"].keyids == [targets.public_key.keyid]
    assert root.roles["snapshot"].keyids == [online["snapshot"].public_key.keyid]
    director = online["director"].public_key.keyid
    assert root.unrecognized_fields[offline.DIRECTOR_FIELD] == {
        "keyids": [director],
        "threshold": 1,
    }
    assert director in root.keys and not any(director in r.keyids for r in root.roles.values())
    assert root.consistent_snapshot is False
    # The custom field survives a round trip, so root keys sign it.
    md = Metadata(root)
    md.sign(roots[0])
    again = Metadata[Root].from_bytes(md.to_bytes())
    assert again.signed.unrecognized_fields[offline.DIRECTOR_FIELD]["keyids"] == [director]
    with pytest.raises(BadRequest):
        offline.build_root([roots[0].public_key], 2, targets.public_key, {}, NOW)


def test_targets_list_trust_files_and_a_keyless_terminating_delegation():
    files = {"bindings.json": offline.canonical(offline.empty_bindings())}
    targets = offline.build_targets(files, NOW)
    role = targets.delegations.roles[offline.RELEASES_ROLE]
    assert role.keyids == [] and role.threshold == 1 and role.terminating
    assert role.paths == ["releases/*/*"]
    assert role.is_delegated_path("releases/7/model.onnx")
    listed = targets.targets["trust/bindings.json"]
    listed.verify_length_and_hashes(files["bindings.json"])


def test_default_policy_is_valid_and_bad_ones_are_named():
    assert offline.validate_policy(dict(offline.DEFAULT_POLICY))
    bad = [
        ({**offline.DEFAULT_POLICY, "extra": 1}, "unknown"),
        ({k: v for k, v in offline.DEFAULT_POLICY.items() if k != "approvals"}, "missing"),
        ({**offline.DEFAULT_POLICY, "schema": "x"}, "schema"),
        ({**offline.DEFAULT_POLICY, "approvals": [{"role": "business", "min": 1}]}, "role"),
        ({**offline.DEFAULT_POLICY, "approvals": [{"role": "data-scientist", "min": -1}]}, "min"),
        ({**offline.DEFAULT_POLICY, "author_may_approve": "yes"}, "author_may_approve"),
        ({**offline.DEFAULT_POLICY, "min_distinct_approvers": 1.5}, "min_distinct_approvers"),
        ([1, 2], "object"),
    ]
    for policy, word in bad:
        with pytest.raises(BadRequest, match=word):
            offline.validate_policy(policy)


def _root_with(signers: list[CryptoSigner], threshold: int) -> Root:
    online = {r: s.public_key for r, s in _online().items()}
    return offline.build_root(
        [s.public_key for s in signers], threshold, _signer().public_key, online, NOW
    )


def test_rotation_is_signed_by_old_and_new_thresholds():
    old_keys = [_signer() for _ in range(3)]
    old = _root_with(old_keys, 2)
    new = Root.from_dict(old.to_dict())
    new.version = 2
    added = _signer()
    new.revoke_key(old_keys[0].public_key.keyid, "root")
    new.add_key(added.public_key, "root")
    new.roles["root"].threshold = 3
    signers = {s.public_key.keyid: s for s in [*old_keys, added]}
    md = offline.sign_rotation(old, new, signers)
    Metadata(old).verify_delegate("root", md)
    md.verify_delegate("root", md)
    assert len(md.signatures) == 3  # the kept keys count for both sets

    # Without the new key the new threshold of 3 cannot be met.
    del signers[added.public_key.keyid]
    with pytest.raises(BadRequest, match="new root"):
        offline.sign_rotation(old, new, signers)


def test_rotation_refuses_when_old_threshold_cannot_be_met():
    old_keys = [_signer() for _ in range(3)]
    old = _root_with(old_keys, 2)
    new = Root.from_dict(old.to_dict())
    new.version = 2
    with pytest.raises(BadRequest, match="current root"):
        offline.sign_rotation(old, new, {old_keys[0].public_key.keyid: old_keys[0]})


def test_sign_releases_bumps_and_cosign_adds_a_signature():
    a, b = _signer(), _signer()
    files = {"releases/1/manifest.json": b"{}", "releases/1/model.onnx": b"onnx"}
    expires = NOW + timedelta(days=90)
    v1 = publish.sign_releases(None, files, a, expires=expires)
    assert v1.signed.version == 1 and len(v1.signatures) == 1
    both = publish.sign_releases(None, files, b, expires=expires, cosign=v1)
    assert both.signed.version == 1 and len(both.signatures) == 2
    with pytest.raises(Conflict):  # a co-signer signs only what they saw
        publish.sign_releases(
            None, {"releases/1/model.onnx": b"other"}, b, expires=expires, cosign=v1
        )
    more = {**files, "releases/2/model.onnx": b"two"}
    v2 = publish.sign_releases(v1.signed, more, a, expires=expires)
    assert v2.signed.version == 2 and set(v2.signed.targets) == set(more)


# -- a whole bundle, built here, verified offline --------------------------------------------


def _write_bundle(tmp_path: Path, *, approvals: bool = True) -> tuple[Path, bytes]:
    root_keys = [_signer() for _ in range(3)]
    targets_key, online = _signer(), _online()
    manager_private = keys.generate_private_key()
    manager = CryptoSigner(manager_private, offline.tuf_key(manager_private.public_key()))
    ds_private, mlops_private = keys.generate_private_key(), manager_private

    model = b"onnx model bytes" * 100
    manifest = offline.canonical(
        {"release_id": 7, "model_digest": digest_bytes(model), "author": "alice"}
    )
    bindings = {"schema": offline.BINDINGS_SCHEMA, "keys": {}}
    for user, private, role in (("dana", ds_private, "data-scientist"),
                                ("max", mlops_private, "mlops-engineer")):  # fmt: skip
        public = private.public_key()
        bindings["keys"][keys.key_id(public)] = {
            "user": user,
            "roles": [role],
            "public_key_pem": keys.public_key_pem(public).decode(),
        }
    files = {
        "bindings.json": offline.canonical(bindings),
        "policy.json": offline.canonical(offline.DEFAULT_POLICY),
    }

    root = offline.build_root(
        [s.public_key for s in root_keys],
        2,
        targets_key.public_key,
        {r: s.public_key for r, s in online.items()},
        NOW,
    )
    root_md = Metadata(root)
    for s in root_keys[:2]:
        root_md.sign(s, append=True)
    top = offline.build_targets(files, NOW)
    top.add_key(manager.public_key, offline.RELEASES_ROLE)
    top_md = Metadata(top)
    top_md.sign(targets_key)
    signature = json.dumps(
        oms.sign_bundle(manager_private, "m@1", hashlib.sha256(model).hexdigest())
    ).encode()
    releases_md = publish.sign_releases(
        None,
        {
            "releases/7/manifest.json": manifest,
            "releases/7/model.onnx": model,
            "releases/7/model.sig": signature,
        },
        manager,
        expires=NOW + timedelta(days=90),
    )
    snapshot = Metadata(
        Snapshot(
            expires=NOW + timedelta(days=7),
            meta={"targets.json": MetaFile(1), "releases.json": MetaFile(1)},
        )
    )
    snapshot.sign(online["snapshot"])
    timestamp = Metadata(Timestamp(expires=NOW + timedelta(days=1), snapshot_meta=MetaFile(1)))
    timestamp.sign(online["timestamp"])

    bundle = tmp_path / "bundle"
    meta = bundle / "metadata"
    meta.mkdir(parents=True)
    for name, md in (("1.root.json", root_md), ("targets.json", top_md),
                     ("releases.json", releases_md), ("snapshot.json", snapshot),
                     ("timestamp.json", timestamp)):  # fmt: skip
        (meta / name).write_bytes(md.to_bytes())
    for path, data in (("releases/7/manifest.json", manifest), ("releases/7/model.onnx", model),
                       ("releases/7/model.sig", signature),
                       ("trust/bindings.json", files["bindings.json"]),
                       ("trust/policy.json", files["policy.json"])):  # fmt: skip
        (bundle / "targets" / path).parent.mkdir(parents=True, exist_ok=True)
        (bundle / "targets" / path).write_bytes(data)
    envelopes = []
    if approvals:
        test = Statement.build(
            [Subject("m", digest_bytes(model))], intoto.TEST_RESULT_V01, {"result": "PASSED"}
        )
        envelopes.append(_envelope(test, ds_private))
        for private, role in ((ds_private, "data-scientist"), (mlops_private, "mlops-engineer")):
            st = Statement.build(
                [Subject("release/7", digest_bytes(manifest))], intoto.APPROVAL_V1, {"role": role}
            )
            envelopes.append(_envelope(st, private))
    (bundle / "attestations.json").write_text(json.dumps({"attestations": envelopes}))
    (bundle / "bundle.json").write_text(json.dumps({"release_id": 7}))
    return bundle, root_md.to_bytes()


def _envelope(statement: Statement, private: keys.PrivateKey) -> dict:
    return dsse.sign_envelope(intoto.statement_bytes(statement), intoto.PAYLOAD_TYPE, private)


def _failed(report: publish.BundleReport) -> str:
    failure = report.first_failure
    assert failure is not None, report.as_dict()
    return failure.name


def test_bundle_verifies_offline(tmp_path):
    bundle, root = _write_bundle(tmp_path)
    report = publish.verify_bundle(bundle, root)
    assert report.ok, report.as_dict()
    assert [c.name for c in report.checks][-1] == "trust policy"


def test_a_flipped_model_byte_is_named(tmp_path):
    bundle, root = _write_bundle(tmp_path)
    model = bundle / "targets/releases/7/model.onnx"
    data = bytearray(model.read_bytes())
    data[10] ^= 1
    model.write_bytes(bytes(data))
    assert _failed(publish.verify_bundle(bundle, root)) == "releases/7/model.onnx"


def test_a_broken_releases_signature_is_named(tmp_path):
    bundle, root = _write_bundle(tmp_path)
    path = bundle / "metadata/releases.json"
    doc = json.loads(path.read_bytes())
    sig = doc["signatures"][0]["sig"]
    doc["signatures"][0]["sig"] = sig[:-4] + ("0000" if sig[-4:] != "0000" else "1111")
    path.write_text(json.dumps(doc))
    assert _failed(publish.verify_bundle(bundle, root)) == "releases.json"


def test_another_root_refuses_the_chain(tmp_path):
    bundle, _ = _write_bundle(tmp_path)
    _, other_root = _write_bundle(tmp_path / "other")
    assert _failed(publish.verify_bundle(bundle, other_root)) == "tuf chain"


def test_missing_approvals_fail_the_policy(tmp_path):
    bundle, root = _write_bundle(tmp_path, approvals=False)
    report = publish.verify_bundle(bundle, root)
    assert _failed(report) == "trust policy"
    assert "approval" in report.first_failure.detail


def test_unsigned_root_is_refused_by_metadata_api():
    root = _root_with([_signer()], 1)
    md = Metadata(root)
    with pytest.raises(UnsignedMetadataError):
        md.verify_delegate("root", md)
