"""The attack suite of issue 3: each attack, against a real server and a real agent, must
leave the device serving its last good release (release 1) and the device must report
why it refused (docs/trust.md lists attack -> defence -> test).

The tests share one world (see harness.py) and run in file order: the attacks that leave
a trace on the device (forged metadata it verified) come last and heal what they leave.
"""

from __future__ import annotations

import json
import sqlite3
import time
from datetime import UTC, datetime
from typing import Any

import pytest
from harness import (
    DESIRED,
    DIRECTOR,
    MODEL,
    TUF_META,
    TUF_TARGETS,
    Answer,
    World,
    expires_in,
    resign,
    run_cli,
    sha256_hex,
    tuf_signer,
)

from farpoint.core import dsse, intoto, keys
from farpoint.core.errors import FarpointError
from farpoint.core.intoto import Subject

pytestmark = [pytest.mark.security, pytest.mark.timeout(240)]

TIMESTAMP = TUF_META + "timestamp.json"
SNAPSHOT = TUF_META + "snapshot.json"
RELEASES = TUF_META + "releases.json"
JSON_HEADERS = (("Content-Type", "application/json"),)


def refused(w: World, release_id: int, *words: str, timeout_s: float = 45.0) -> str:
    """The device reported release `release_id` failed, naming one of `words`, and still
    serves the last good release. Returns the reason."""
    phase, error = w.wait_report(release_id, timeout_s=timeout_s)
    assert phase == "failed", f"release {release_id} went {phase}: {error}"
    assert w.serving() == w.good_release
    # Any report the device sent for it counts (a retry may have said it differently).
    reasons = [error, *w.reasons(release_id)]
    for reason in reasons:
        if any(word in reason.lower() for word in words):
            return reason
    raise AssertionError(f"no reason names any of {words}: {reasons}")


def paths(release_id: int) -> tuple[str, str]:
    return f"releases/{release_id}/manifest.json", f"releases/{release_id}/model.onnx"


def target_file(path: str, data: bytes, custom: dict[str, Any] | None = None) -> Any:
    from tuf.api.metadata import TargetFile

    fields = {"custom": custom} if custom is not None else {}
    return TargetFile(len(data), {"sha256": sha256_hex(data)}, path, unrecognized_fields=fields)


def add_release_targets(w: World, release_id: int) -> Any:
    """A `change(signed)` that lists a release's manifest and model as the server holds them."""
    manifest_path, model_path = paths(release_id)
    files = {p: bytes(w.admin.tuf_target(p)) for p in (manifest_path, model_path)}

    def change(signed: Any) -> None:
        for p, data in files.items():
            signed.targets[p] = target_file(p, data)

    return change


def forged_director(
    w: World, release_id: int, *, model_bytes: bytes | None = None, bump: int = 0
) -> Any:
    """A transform: the server's director answer for this device, changed to name
    `release_id` and signed with the director key stolen from the server's disk. The
    version stays the server's (equal versions are accepted as the same document)."""
    manifest_path, model_path = paths(release_id)
    try:
        manifest = bytes(w.admin.tuf_target(manifest_path))
        model = model_bytes if model_bytes is not None else bytes(w.admin.tuf_target(model_path))
    except FarpointError:  # a release nobody ever made: invent its bytes
        manifest = json.dumps({"release_id": release_id}).encode()
        model = model_bytes or b"not a model"
    custom = {
        "model": MODEL,
        "release_id": release_id,
        "model_path": model_path,
        "model_sha256": sha256_hex(model),
        "model_length": len(model),
        "fleet": "ward-a",
    }
    director_key = w.online_key("director")

    def change(signed: Any) -> None:
        signed.targets = {manifest_path: target_file(manifest_path, manifest, custom)}
        signed.version += bump

    def transform(answer: Answer) -> Answer:
        if answer.status != 200:
            return answer
        return answer.with_body(resign(answer.body, director_key, change))

    return transform


def director_version(data: bytes) -> int:
    return int(json.loads(data)["signed"]["version"])


def accepted_director_version(w: World, device: str = "a") -> int:
    doc = json.loads((w.devices[device].state_dir / "director.json").read_bytes())
    return int(doc["version"])


def wait_for(what: str, check: Any, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


# -- the attacks -------------------------------------------------------------------------------


def test_the_device_serves_release_1_through_the_whole_chain(w: World) -> None:
    """The baseline every attack starts from."""
    assert w.good_release == 1
    assert w.serving() == 1
    entry = w.device_entry()
    assert entry is not None and entry["phase"] == "active" and entry["release_id"] == 1


def test_tampered_blob_on_the_server_disk(w: World) -> None:
    rid = w.release(3)  # its own model version: no other release shares the blob
    digest = w.versions[2].digest.split(":", 1)[1]
    blob = w.home / "blobs" / "sha256" / digest[:2] / digest
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same length, other bytes
    blob.chmod(0o644)
    blob.write_bytes(bytes(data))
    w.rollout(rid)
    refused(w, rid, "sha256", "hash")


def test_release_signed_by_an_unknown_key(w: World) -> None:
    rid = w.create_release(2)
    w.approve(rid, ("sam", "data-scientist"), ("mo", "mlops-engineer"))
    stranger = keys.generate_private_key()
    # The server refuses the upload: the key is not one targets.json delegates to.
    current = w.tuf_bytes("releases.json")
    forged = resign(current, stranger, lambda s: (add_release_targets(w, rid)(s), _bump(s)))
    with pytest.raises(FarpointError) as refused_upload:
        w.people["mo"].client.put_tuf_releases(forged)
    assert "releases" in str(refused_upload.value.detail)
    # A man in the middle hands the device releases.json signed by the stranger instead.
    change = add_release_targets(w, rid)
    w.proxy.transform(
        RELEASES,
        lambda a: a.with_body(resign(a.body, stranger, change)) if a.status == 200 else a,
    )
    w.publish(w.create_release(2))  # a new releases.json version: the device fetches it
    w.settle()
    w.rollout(rid)
    refused(w, rid, "signed by", "signature", "hash", "length")


def _bump(signed: Any) -> None:
    signed.version += 1


def test_unsigned_release_rolled_out_but_never_published(w: World) -> None:
    rid = w.release(2, publish=False)
    w.rollout(rid)
    refused(w, rid, "no target", "image repository")


def test_replayed_older_director_metadata_rollback(w: World) -> None:
    # A valid release 2 runs for a while, then the operator rolls back to release 1 (a
    # newer director version naming an older release: legitimate, and applied).
    two = w.release(2)
    w.rollout(two)
    phase, error = w.wait_report(two)
    assert phase == "active", error
    w.wait_serving(two)
    desired_two, director_two = w.proxy.last(DESIRED), w.proxy.last(DIRECTOR)
    w.rollout(w.good_release)
    w.wait_serving(w.good_release)
    assert accepted_director_version(w) > director_version(director_two.body)
    # The network replays what once made the device install release 2.
    w.proxy.replay(DESIRED, desired_two)
    w.proxy.replay(DIRECTOR, director_two)
    refused(w, two, "replay", "older")


def test_replayed_older_timestamp(w: World) -> None:
    old = w.proxy.history(TIMESTAMP)[0]
    rid = w.release(2)  # publishing re-signs the timestamp with a higher version
    newest = director_version(w.tuf_bytes("timestamp.json"))
    assert newest > director_version(old.body)
    wait_for(
        "the device to fetch the newest timestamp",
        lambda: director_version(w.proxy.last(TIMESTAMP).body) == newest,
    )
    w.proxy.replay(TIMESTAMP, old)
    w.proxy.wait_hits(TIMESTAMP)
    w.rollout(rid)
    refused(w, rid, "version")


def test_mix_and_match_snapshot_and_releases(w: World) -> None:
    old_releases = w.proxy.history(RELEASES)[0]
    w.proxy.replay(RELEASES, old_releases)  # this snapshot, releases.json of another state
    rid = w.release(2)
    w.rollout(rid)
    refused(w, rid, "hash", "length", "version")


def test_endless_data_model_larger_than_declared(w: World) -> None:
    rid = w.release(4)  # a model the device never downloaded
    w.proxy.append(TUF_TARGETS + paths(rid)[1], b"\0" * (2 << 20))
    w.rollout(rid)
    refused(w, rid, "larger", "endless", "length")


def test_director_names_a_release_the_image_repository_lacks(w: World) -> None:
    missing = 9999
    w.proxy.transform(DIRECTOR, forged_director(w, missing))
    refused(w, missing, "no target", "image repository")


def test_director_key_compromised_alone(w: World) -> None:
    rid = w.release(2)  # published, approved, never rolled out
    evil = b"an attacker's model" * 100
    w.proxy.transform(DIRECTOR, forged_director(w, rid, model_bytes=evil))
    refused(w, rid, "differs", "sha256")


def test_approval_the_server_wrote_without_a_users_key(w: World) -> None:
    rid = w.create_release(2)
    w.approve(rid, ("mo", "mlops-engineer"))  # the data scientist's approval is missing
    release = w.people["mo"].client.get_release(rid)
    statement = intoto.Statement.build(
        [Subject(f"release/{rid}", release.manifest_digest)],
        intoto.APPROVAL_V1,
        {"role": "data-scientist", "comment": "", "approved_at": _now_iso(), "release_id": rid},
    )
    server_made = keys.generate_private_key()  # the server holds no user's private key
    envelope = dsse.sign_envelope(
        intoto.statement_bytes(statement), intoto.PAYLOAD_TYPE, server_made
    )
    envelope["signatures"][0]["keyid"] = w.people["sam"].key_id  # claims to be sam's
    _insert_attestation(w, envelope, statement, "sam", rid, release.manifest_digest)
    listed = w.people["mo"].client.list_attestations(subject=release.manifest_digest)
    assert any(a.signer == "sam" for a in listed)  # the server now shows it
    w.publish(rid)
    w.rollout(rid)
    refused(w, rid, "policy")


def _now_iso() -> str:
    return datetime.now(UTC).isoformat()


def _insert_attestation(
    w: World, envelope: dict[str, Any], statement: Any, user: str, rid: int, digest: str
) -> None:
    db = sqlite3.connect(w.home / "farpoint.db", timeout=30)
    try:
        with db:
            (user_id,) = db.execute("SELECT id FROM users WHERE name = ?", (user,)).fetchone()
            (created_at,) = db.execute("SELECT max(created_at) FROM attestations").fetchone()
            cur = db.execute(
                "INSERT INTO attestations (predicate_type, envelope, statement, signer_user_id,"
                " signer, key_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    intoto.APPROVAL_V1,
                    json.dumps(envelope),
                    json.dumps(json.loads(intoto.statement_bytes(statement))),
                    user_id,
                    user,
                    w.people[user].key_id,
                    created_at,
                ),
            )
            db.execute(
                "INSERT INTO attestation_subjects (attestation_id, name, digest) VALUES (?, ?, ?)",
                (cur.lastrowid, f"release/{rid}", digest),
            )
    finally:
        db.close()


def test_approver_key_bound_by_the_server_without_the_offline_key(w: World) -> None:
    eve = w.people["eve"]  # a data scientist whose key no admin bound offline
    db = sqlite3.connect(w.home / "farpoint.db", timeout=30)
    try:
        (original,) = db.execute(
            "SELECT data FROM tuf_trust_files WHERE name = 'bindings.json'"
        ).fetchone()
        bindings = json.loads(original)
        bindings["keys"][eve.key_id] = {
            "user": "eve",
            "roles": ["data-scientist"],
            "public_key_pem": keys.public_key_pem(eve.key.public_key()).decode(),
        }
        forged = json.dumps(bindings, sort_keys=True, separators=(",", ":")).encode()
        with db:
            db.execute(
                "UPDATE tuf_trust_files SET data = ? WHERE name = 'bindings.json'", (forged,)
            )
        try:
            rid = w.create_release(2)
            w.approve(rid, ("eve", "data-scientist"), ("mo", "mlops-engineer"))
            w.publish(rid)
            w.rollout(rid)
            refused(w, rid, "does not match", "larger", "hash", "length", "policy")
        finally:
            with db:
                db.execute(
                    "UPDATE tuf_trust_files SET data = ? WHERE name = 'bindings.json'",
                    (original,),
                )
    finally:
        db.close()


def test_revoked_user_key(w: World) -> None:
    from farpoint.sdk.publish import sign_releases

    rid = w.create_release(2)
    # rex approved as release manager while his key was bound; then an admin unbinds it.
    w.approve(rid, ("sam", "data-scientist"), ("rex", "mlops-engineer"))
    w.unbind("rex")
    rex = w.people["rex"]
    # Signing a release with the unbound key: the server refuses the upload.
    from tuf.api.metadata import Metadata

    current = Metadata.from_bytes(w.tuf_bytes("releases.json")).signed
    manifest_path, model_path = paths(rid)
    files = {p: bytes(w.admin.tuf_target(p)) for p in (manifest_path, model_path)}
    md = sign_releases(current, files, tuf_signer(rex.key), expires=expires_in(86400))
    with pytest.raises(FarpointError):
        rex.client.put_tuf_releases(md.to_bytes())
    # Published by mo, the release carries rex's approval, which no longer counts.
    w.publish(rid)
    w.rollout(rid)
    refused(w, rid, "policy")


def test_replayed_enrollment_token(w: World) -> None:
    token = w.people["ito"].client.create_enrollment_token(labels={"ward": "c"}).token
    first = w.root / "devices" / "c1"
    second = w.root / "devices" / "c2"
    args = ("agent", "enroll", "--server", w.base_url, "--token", token, "--state-dir")
    ok = run_cli(*args, str(first), "--name", "c1", env=w.env)
    assert ok.returncode == 0, ok.stderr
    again = run_cli(*args, str(second), "--name", "c2", env=w.env)
    assert again.returncode == 1
    assert "409" in again.stderr and "already used" in again.stderr
    assert not (second / "device.json").exists()
    assert not (second / "device-key.pem").exists()
    names = {d.name for d in w.admin.list_devices()}
    assert "c1" in names and "c2" not in names


def test_device_a_cannot_get_or_post_as_device_b(w: World) -> None:
    a, b = w.devices["a"], w.devices["b"]
    before = w.admin.get_device(b.id).model_dump(mode="json")
    # A's key, B's name: the server checks the signature with B's key.
    r = w.signed(a.key, b.id, "GET", DIRECTOR)
    assert r.status_code in (401, 403), r.text
    body = json.dumps(
        {
            "models": [{"model": MODEL, "release_id": 1, "phase": "failed", "error": "forged"}],
            "heartbeat": {"uptime_s": 1},
        }
    ).encode()
    r = w.signed(a.key, b.id, "POST", "/api/v1/devices/self/status", body)
    assert r.status_code in (401, 403), r.text
    # As itself, A gets only its own metadata, whatever it asks for.
    for path in (DIRECTOR, DIRECTOR + f"?device={b.id}"):
        r = w.as_device("a", "GET", path)
        assert r.status_code in (200, 400, 404, 422), r.text
        if r.status_code == 200:
            assert json.loads(r.content)["signed"]["x-farpoint-device"] == a.id
    after = w.admin.get_device(b.id).model_dump(mode="json")
    for field in ("models", "heartbeat", "labels", "key_id"):
        assert after[field] == before[field], field


def test_another_devices_director_metadata_is_refused(w: World) -> None:
    """A man in the middle hands device A device B's (validly signed) director metadata."""
    rid = w.release(2)
    w.rollout(rid, "ward-b")
    # B's metadata with a version at least A's, so only the device id can tell them apart.
    floor = accepted_director_version(w)
    flip = [w.good_release, rid]
    for i in range(floor + 2):
        r = w.as_device("b", "GET", DIRECTOR)
        assert r.status_code == 200, r.text
        named = json.loads(r.content)["signed"]["targets"]
        if director_version(r.content) >= floor and paths(rid)[0] in named:
            break
        w.rollout(flip[i % 2], "ward-b")
    b_director = Answer(200, JSON_HEADERS, r.content)
    assert paths(rid)[0] in json.loads(r.content)["signed"]["targets"]
    w.proxy.substitute(DIRECTOR, b_director)
    w.proxy.wait_hits(DIRECTOR)
    w.rollout(rid)
    refused(w, rid, "device")


def _expiry(answer: Answer) -> datetime:
    text = json.loads(answer.body)["signed"]["expires"]
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_frozen_director_metadata_expires(w: World) -> None:
    """The proxy freezes the director answer naming release 1; the device's clock (injected)
    moves past its expiry, while the image repository's timestamp is still fresh."""
    frozen = w.proxy.last(DIRECTOR)
    rid = w.release(2)
    w.proxy.freeze(DIRECTOR, frozen)
    ahead = (_expiry(frozen) - datetime.now(UTC)).total_seconds() + 60
    assert ahead < 3600, "the harness's director expiry is short; the timestamp's is a day"
    try:
        w.travel(ahead)
        w.proxy.wait_hits(DIRECTOR)
        w.rollout(rid)
        reason = refused(w, rid, "expired")
        assert "director" in reason.lower()
    finally:
        w.travel(0)
        w.restore()


def test_frozen_timestamp_expires(w: World) -> None:
    """The proxy freezes the image repository: the same timestamp forever, so the device
    would never learn of newer metadata. A day and an hour later on the device's clock it
    refuses that timestamp as expired and keeps serving release 1."""
    rid = w.release(2)  # the device has fetched the newest timestamp
    frozen = w.proxy.last(TIMESTAMP)
    w.proxy.freeze(TIMESTAMP, frozen)
    try:
        w.travel((_expiry(frozen) - datetime.now(UTC)).total_seconds() + 3600)
        w.proxy.wait_hits(TIMESTAMP)
        w.rollout(rid)
        reason = refused(w, rid, "expired")
        assert "timestamp" in reason.lower()
    finally:
        w.travel(0)
        w.restore()


def test_all_online_server_keys_compromised(w: World) -> None:
    """Snapshot, timestamp and director keys stolen: the attacker lists a release no
    release manager signed and vouches for it with every online key."""
    rid = w.create_release(2)
    w.approve(rid, ("sam", "data-scientist"), ("mo", "mlops-engineer"))
    online = {r: w.online_key(r) for r in ("snapshot", "timestamp", "director")}
    releases = _forge(
        w.tuf_bytes("releases.json"),
        list(online.values()),
        lambda s: (add_release_targets(w, rid)(s), _bump(s)),
    )
    snapshot = _forge(
        w.tuf_bytes("snapshot.json"),
        [online["snapshot"]],
        lambda s: (_point(s.meta, "releases.json", releases), _bump(s)),
    )
    timestamp = _forge(
        w.tuf_bytes("timestamp.json"),
        [online["timestamp"]],
        lambda s: (_point(s.snapshot_meta, None, snapshot), _bump(s)),
    )
    w.proxy.substitute(RELEASES, Answer(200, JSON_HEADERS, releases))
    w.proxy.substitute(SNAPSHOT, Answer(200, JSON_HEADERS, snapshot))
    w.proxy.substitute(TIMESTAMP, Answer(200, JSON_HEADERS, timestamp))
    w.proxy.wait_hits(TIMESTAMP)
    try:
        w.rollout(rid)  # the (compromised) server's own director names it
        refused(w, rid, "signed by", "signature", "threshold")
    finally:
        w.proxy.clear()
        # The device trusted the forged timestamp and snapshot (validly signed online
        # metadata); two honest publishes take the server's versions past them.
        for _ in range(2):
            w.publish(w.create_release(2))


def test_online_keys_rotated_after_theft_without_re_enrolling(w: World) -> None:
    """After the theft above, the admin replaces the online keys (`farpoint trust
    rotate-online`): the device follows the new root without re-enrolling and takes an
    honest release; metadata signed with a stolen key is refused from then on."""
    from farpoint.sdk import offline

    stolen = w.online_key("timestamp")
    out = offline.rotate_online(w.admin, w.offline_dir, w.offline_passphrase())
    assert out.online_changed == ["snapshot", "timestamp", "director"]
    assert w.online_key("timestamp").public_key() != stolen.public_key()
    rid = w.release(2)
    w.rollout(rid)
    w.wait_serving(rid)
    rid = w.release(2)
    timestamp = _forge(w.tuf_bytes("timestamp.json"), [stolen], _bump)
    w.proxy.substitute(TIMESTAMP, Answer(200, JSON_HEADERS, timestamp))
    try:
        w.proxy.wait_hits(TIMESTAMP)
        w.rollout(rid)
        phase, error = w.wait_report(rid)
        assert phase == "failed" and "timestamp" in error.lower(), error
    finally:
        w.proxy.clear()
        w.rollout(w.good_release)
        w.wait_serving(w.good_release)


def _forge(data: bytes, signers: list[keys.PrivateKey], change: Any) -> bytes:
    from tuf.api.metadata import Metadata

    md = Metadata.from_bytes(data)
    change(md.signed)
    md.signatures.clear()
    for k in signers:
        md.sign(tuf_signer(k), append=True)
    return bytes(md.to_bytes())


def _point(meta: Any, name: str | None, data: bytes) -> None:
    from tuf.api.metadata import MetaFile

    version = json.loads(data)["signed"]["version"]
    entry = MetaFile(version=version, length=len(data), hashes={"sha256": sha256_hex(data)})
    if name is None:  # the timestamp's single snapshot entry, changed in place
        meta.version, meta.length, meta.hashes = entry.version, entry.length, entry.hashes
    else:
        meta[name] = entry


def test_the_device_still_takes_an_honest_release_after_all_attacks(w: World) -> None:
    """Healing check: none of the refusals left the device unable to update."""
    rid = w.release(2)
    w.rollout(rid)
    phase, error = w.wait_report(rid, timeout_s=60)
    assert phase == "active", error
    w.wait_serving(rid)
    w.rollout(w.good_release)
    w.wait_serving(w.good_release)
