"""Signing keys and attestations through the real app: honest ones stored, forgeries refused."""

from __future__ import annotations

import base64
import json
import os
import stat

import pytest
from trust_helpers import COMMIT, build_world, envelope_for, tampered

from conftest import bearer
from farpoint.core import intoto, keys
from farpoint.core.errors import Conflict, Forbidden, SignatureError
from farpoint.core.intoto import Subject
from farpoint.sdk import Client
from farpoint.sdk import trust as sdk_trust

vitals = pytest.importorskip("farpoint.examples.vitals")
PASS = "correct horse battery staple"


@pytest.fixture(scope="module")
def train():
    def fit(data):
        return vitals.train_model(data, seed=5)

    return fit


@pytest.fixture
def world(api, token_for, admin_token, tmp_path, train):
    return build_world(api, token_for, admin_token, tmp_path, train)


def _key(c: Client, name: str) -> keys.PrivateKey:
    key = c.create_key(name, PASS)
    c.register_key(name)
    return key


def _post(api, c: Client, envelope):
    token = c._http.headers["authorization"].split(" ", 1)[1]
    return api.post("/api/v1/attestations", json={"envelope": envelope}, headers=bearer(token))


def test_keys_register_list_revoke(api, token_for, admin_token, tmp_path):
    ds = Client("http://testserver", token_for("data-scientist"), transport=api._transport)
    other = Client("http://testserver", token_for("business"), transport=api._transport)
    admin = Client("http://testserver", admin_token, transport=api._transport)
    ds.keys_dir = other.keys_dir = tmp_path
    key = ds.create_key("laptop", PASS)
    kid = keys.key_id(key.public_key())

    registered = ds.register_key("laptop")
    assert registered.key_id == kid and registered.revoked_at is None
    assert "PRIVATE" not in registered.public_key_pem
    with pytest.raises(Conflict):  # a key binds to one user, once
        ds.register_key("laptop")
    with pytest.raises(Conflict):
        other.register_key("laptop")

    assert [k.key_id for k in ds.list_keys()] == [kid]
    assert other.list_keys() == []
    assert [k.key_id for k in admin.list_keys()] == [kid]
    assert [k.key_id for k in admin.list_keys(user=registered.user)] == [kid]
    with pytest.raises(Forbidden):
        other.list_keys(user=registered.user)
    with pytest.raises(Forbidden):  # only the owner or an admin revokes
        other.revoke_key(kid)

    ds.revoke_key(kid)
    [revoked] = ds.list_keys()
    assert revoked.revoked_at is not None  # kept on record, never deleted
    assert other.get_key(kid).revoked_at is not None

    r = api.post(
        "/api/v1/keys",
        json={"name": "bad", "public_key_pem": "not a key"},
        headers=bearer(ds._http.headers["authorization"].split(" ", 1)[1]),
    )
    assert r.status_code == 400


def test_each_predicate_type_accepted_when_honest(world):
    w = world
    ds_key, mlops_key = _key(w.ds, "ds"), _key(w.mlops, "mlops")

    dataset = w.ds.attest_dataset("vitals@1", ds_key)
    training = w.ds.attest_training("deterioration@1", ds_key)
    evaluation = w.ds.attest_evaluation(w.failed_eval, ds_key)  # honest about a failure too
    release_ok = w.mlops.approve(release_id=w.release_id, role="mlops-engineer", key=mlops_key)
    eval_ok = w.ds.approve(
        evaluation_id=w.passed_eval, role="data-scientist", key=ds_key, comment="looks right"
    )

    mv = w.ds.get_model_version("deterioration@1")
    assert dataset.subjects[0].digest == w.ds.get_dataset_version("vitals@1").digest
    deps = training.statement["predicate"]["buildDefinition"]["resolvedDependencies"]
    assert {"uri": "farpoint:dataset/vitals@1"} in [{"uri": d["uri"]} for d in deps]
    assert {"gitCommit": COMMIT} in [d["digest"] for d in deps]
    assert evaluation.statement["predicate"]["result"] == "FAILED"
    assert release_ok.subjects[0].digest == w.mlops.get_release(w.release_id).manifest_digest
    assert eval_ok.signer == dataset.signer != release_ok.signer

    about_model = w.mlops.list_attestations(subject=mv.digest)
    assert sorted(a.id for a in about_model) == sorted([training.id, evaluation.id, eval_ok.id])
    assert [a.id for a in w.mlops.list_attestations(predicate_type=intoto.DATASET_V1)] == [
        dataset.id
    ]
    for a in (dataset, training, evaluation, release_ok, eval_ok):
        fetched = w.mlops.get_attestation(a.id)
        assert w.mlops.verify_attestation(fetched).predicate_type == a.predicate_type

    # A server that relabels what was signed is caught by the client-side check.
    lie = w.mlops.get_attestation(dataset.id)
    lie.subjects[0].digest = mv.digest
    with pytest.raises(SignatureError):
        w.mlops.verify_attestation(lie)
    # So is an attestation whose key was revoked since.
    w.mlops.revoke_key(keys.key_id(mlops_key.public_key()))
    with pytest.raises(SignatureError, match="revoked"):
        w.mlops.verify_attestation(release_ok.id)


def test_forgeries_and_false_claims_are_refused_and_nothing_is_stored(api, world):
    w = world
    ds_key = _key(w.ds, "ds")
    other_key = _key(w.ds2, "ds2")
    revoked_key = _key(w.ds, "old")
    w.ds.revoke_key(keys.key_id(revoked_key.public_key()))
    unregistered = keys.generate_private_key()
    mlops_key = _key(w.mlops, "mlops")

    dv = w.ds.get_dataset_version("vitals@1")
    honest_dataset = sdk_trust.dataset_statement(dv)

    def refused(client, envelope, status, reason):
        r = _post(api, client, envelope)
        assert r.status_code == status, r.text
        assert r.json()["reason"] == reason, r.text
        return r.json()["detail"]

    assert "not registered" in refused(
        w.ds, envelope_for(honest_dataset, unregistered), 403, "key-not-usable"
    )
    assert "another user" in refused(
        w.ds, envelope_for(honest_dataset, other_key), 403, "key-not-usable"
    )
    assert "revoked" in refused(
        w.ds, envelope_for(honest_dataset, revoked_key), 403, "key-not-usable"
    )

    def more_rows(statement):
        statement["predicate"]["row_count"] += 1

    refused(
        w.ds,
        tampered(envelope_for(honest_dataset, ds_key), more_rows),
        401,
        "signature-invalid",
    )

    unknown = intoto.Statement.build(
        [Subject("vitals@1", "sha256:" + "ab" * 32)], intoto.DATASET_V1, honest_dataset.predicate
    )
    refused(w.ds, envelope_for(unknown, ds_key), 422, "unknown-subject")

    # A training attestation claiming another dataset (the holdout) as its input.
    mv = w.ds.get_model_version("deterioration@1")
    run = w.ds.get_run(mv.run_id)
    holdout = w.ds.get_dataset_version("holdout@1")
    lie = sdk_trust.training_statement(mv, run, [holdout])
    assert "used" in refused(w.ds, envelope_for(lie, ds_key), 422, "inconsistent-with-records")
    forged = sdk_trust.training_statement(mv, run, [dv])
    forged.predicate["buildDefinition"]["resolvedDependencies"][0]["digest"]["sha256"] = (
        holdout.digest.split(":")[1]
    )
    refused(w.ds, envelope_for(forged, ds_key), 422, "inconsistent-with-records")

    # An evaluation attestation claiming PASSED for a failed evaluation.
    failed = w.ds.get_evaluation(w.failed_eval)
    claim = sdk_trust.evaluation_statement(failed, mv, holdout)
    claim.predicate.update(result="PASSED", passedTests=claim.predicate["failedTests"])
    claim.predicate["failedTests"] = []
    assert "failed" in refused(w.ds, envelope_for(claim, ds_key), 422, "inconsistent-with-records")

    # Approving as a role the signer does not hold; attesting as a role that may not.
    release = w.ds.get_release(w.release_id)
    approval = sdk_trust.approval_statement(
        Subject(f"release/{release.id}", release.manifest_digest),
        "mlops-engineer",
        release_id=release.id,
    )
    refused(w.ds, envelope_for(approval, ds_key), 403, "role-not-held")
    refused(w.mlops, envelope_for(honest_dataset, mlops_key), 403, "signer-role")

    # Not an in-toto payload, an unknown predicate type, an oversized request.
    wrong_type = {**envelope_for(honest_dataset, ds_key), "payloadType": "text/plain"}
    refused(w.ds, wrong_type, 422, "wrong-payload-type")
    odd = intoto.Statement.build(
        [Subject("vitals@1", dv.digest)], "https://example.org/unknown/v1", {}
    )
    refused(w.ds, envelope_for(odd, ds_key), 422, "unknown-predicate-type")
    huge = envelope_for(honest_dataset, ds_key)
    huge["payload"] = base64.b64encode(b"x" * (1 << 20)).decode()
    assert _post(api, w.ds, huge).status_code == 413

    assert w.admin.list_attestations() == []
    # The honest statement, signed by the right key, goes through.
    assert _post(api, w.ds, envelope_for(honest_dataset, ds_key)).status_code == 201
    assert len(w.admin.list_attestations()) == 1


@pytest.fixture
def cli(cli, monkeypatch, tmp_path):
    """The shared `cli`, with its signing keys in the test's own directory."""
    monkeypatch.setenv("FARPOINT_KEYS_DIR", str(tmp_path / "cli-keys"))
    monkeypatch.setenv("KEY_PASS", PASS)
    return cli


def test_cli_keys_create_is_encrypted_and_approve_works(cli, world, tmp_path):
    w = world
    token = w.mlops._http.headers["authorization"].split(" ", 1)[1]
    r = cli(token, "keys", "create", "ci", "--passphrase-env", "KEY_PASS")
    assert r.exit_code == 0, r.output
    pem_path = tmp_path / "cli-keys" / "ci.pem"
    assert stat.S_IMODE(os.stat(pem_path).st_mode) == 0o600
    assert b"ENCRYPTED" in pem_path.read_bytes()
    with pytest.raises(TypeError):  # no passphrase, no key
        keys.load_private_key(pem_path.read_bytes())
    assert keys.load_private_key(pem_path.read_bytes(), PASS.encode())
    r = cli(token, "keys", "create", "ci", "--passphrase-env", "KEY_PASS")
    assert r.exit_code == 1 and "already exists" in r.output

    # Prompted passphrase, typed twice.
    r = cli(token, "keys", "create", "typed", input=f"{PASS}\n{PASS}\n")
    assert r.exit_code == 0, r.output

    assert cli(token, "keys", "register", "ci").exit_code == 0
    listed = json.loads(cli(token, "keys", "list", "--json").output)
    assert [k["name"] for k in listed] == ["ci"]

    r = cli(token, "approve", "--release", str(w.release_id), "--as", "mlops-engineer",
            "--key", "ci", "--passphrase-env", "KEY_PASS", "--comment", "ship it",
            "--json")  # fmt: skip
    assert r.exit_code == 0, r.output
    approval = json.loads(r.output)
    assert approval["statement"]["predicate"]["comment"] == "ship it"

    r = cli(token, "attestation", "verify", str(approval["id"]))
    assert r.exit_code == 0 and "verifies" in r.output
    r = cli(token, "attestation", "list", "--json")
    assert [a["id"] for a in json.loads(r.output)] == [approval["id"]]

    r = cli(token, "approve", "--evaluation", str(w.passed_eval), "--as", "data-scientist",
            "--key", "ci", "--passphrase-env", "KEY_PASS")  # fmt: skip
    assert r.exit_code == 1 and "do not hold" in r.output

    r = cli(token, "approve", "--release", str(w.release_id), "--as", "mlops-engineer",
            "--key", "typed", "--passphrase-env", "KEY_PASS")  # fmt: skip
    assert r.exit_code == 1 and "not registered" in r.output
