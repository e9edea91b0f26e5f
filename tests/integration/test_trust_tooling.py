"""The people's side of trusted delivery against the real app in process: `farpoint trust`
(offline root and targets), `farpoint release publish`, `release download` and `verify`."""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from trust_helpers import build_world
from tuf.api.exceptions import DownloadHTTPError
from tuf.ngclient import FetcherInterface, Updater
from typer.testing import CliRunner

import farpoint.cli.main as cli_main
from conftest import bearer
from farpoint.core import keys
from farpoint.sdk import Client, publish
from farpoint.sdk.offline import tuf_key
from farpoint.sdk.publish import release_paths

vitals = pytest.importorskip("farpoint.examples.vitals")
PASS = "correct horse battery staple"
OFFLINE_PASS = "offline passphrase, kept in a safe"
ENV = {"FP_PASS": PASS, "FP_OFFLINE": OFFLINE_PASS}


class _TestFetcher(FetcherInterface):
    """`tuf.ngclient` over the in-process app, with a bearer token."""

    def __init__(self, api, token: str) -> None:
        self.api, self.headers = api, bearer(token)

    def _fetch(self, url: str) -> Iterator[bytes]:
        r = self.api.get(url, headers=self.headers)
        if r.status_code != 200:
            raise DownloadHTTPError(f"{url}: {r.status_code}", r.status_code)
        return iter([r.content])


@pytest.fixture
def cli(api, monkeypatch):
    def make_client(server, token):
        return Client("http://testserver", token, transport=api._transport)

    monkeypatch.setattr(cli_main, "make_client", make_client)
    runner = CliRunner()

    def run(token, *args, keys_dir: Path | None = None):
        env = dict(ENV)
        if keys_dir is not None:
            env["FARPOINT_KEYS_DIR"] = str(keys_dir)
        return runner.invoke(cli_main.app, ["--token", token, *args], env=env)

    return run


@pytest.fixture
def world(api, token_for, admin_token, tmp_path):
    return build_world(
        api, token_for, admin_token, tmp_path, lambda data: vitals.train_model(data, seed=5)
    )


def _key(c: Client, name: str) -> str:
    key = c.create_key(name, PASS)
    c.register_key(name)
    return keys.key_id(key.public_key())


def _token(c: Client) -> str:
    return c._http.headers["authorization"].split(" ", 1)[1]


def _ok(result) -> dict:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout) if result.stdout.strip().startswith("{") else {}


def test_offline_root_bindings_publish_rotate_and_verify(
    api, cli, world, admin_token, token_for, tmp_path
):
    offline_dir = tmp_path / "offline"
    od = ["--offline-dir", str(offline_dir), "--passphrase-env", "FP_OFFLINE"]
    ds_key, ds2_key, rm_key = _key(world.ds, "ds"), _key(world.ds2, "ds2"), _key(world.mlops, "rm")

    # Before init nothing can be published; init makes keys 0600 and uploads root v1.
    init = _ok(cli(admin_token, "trust", "init", *od, "--json"))
    assert init["root_threshold"] == 2 and len(init["root_keyids"]) == 3
    for pem in offline_dir.glob("*.pem"):
        assert pem.stat().st_mode & 0o777 == 0o600
        assert b"ENCRYPTED" in pem.read_bytes()
    again = cli(admin_token, "trust", "init", *od)
    assert again.exit_code == 1 and "rotate-root" in again.output
    refused = cli(_token(world.mlops), "trust", "init", "--offline-dir", str(tmp_path / "x"),
                  "--passphrase-env", "FP_OFFLINE")  # fmt: skip
    assert refused.exit_code == 1  # admins only

    # A key binds only to a role its owner holds now.
    wrong = cli(admin_token, "trust", "bind-key", ds_key, "--role", "mlops-engineer", *od)
    assert wrong.exit_code == 1 and "does not hold" in wrong.output
    for kid, role in ((ds_key, "data-scientist"), (ds2_key, "data-scientist"),
                      (rm_key, "mlops-engineer")):  # fmt: skip
        _ok(cli(admin_token, "trust", "bind-key", kid, "--role", role, *od, "--json"))
    status = _ok(cli(admin_token, "trust", "status", "--offline-dir", str(offline_dir), "--json"))
    assert status["bindings"][rm_key]["roles"] == ["mlops-engineer"]
    assert status["targets"]["releases_keyids"] == [tuf_key(world.mlops.get_key(rm_key)
                                                            .public_key_pem).keyid]  # fmt: skip

    rid = world.release_id
    manifest_path, model_path = release_paths(rid)

    # An unbound release manager: refused here, and by the server when sent anyway.
    rogue = Client("http://testserver", token_for("mlops-engineer", "it-ops"),
                   transport=api._transport)  # fmt: skip
    rogue.keys_dir = tmp_path / "keys-rogue"
    _key(rogue, "rogue")
    r = cli(_token(rogue), "release", "publish", str(rid), "--key", "rogue",
            "--passphrase-env", "FP_PASS", keys_dir=rogue.keys_dir)  # fmt: skip
    assert r.exit_code == 1 and "bind-key" in r.output
    from datetime import UTC, datetime, timedelta

    from securesystemslib.signer import CryptoSigner

    rogue_private = rogue.load_key("rogue", PASS)
    forged = publish.sign_releases(
        None,
        {manifest_path: rogue.tuf_target(manifest_path), model_path: rogue.tuf_target(model_path)},
        CryptoSigner(rogue_private, tuf_key(rogue_private.public_key())),
        expires=datetime.now(UTC).replace(microsecond=0) + timedelta(days=9),
    )
    put = api.put("/api/v1/tuf/image/releases", content=forged.to_bytes(),
                  headers=bearer(_token(rogue)))  # fmt: skip
    assert put.status_code in (400, 403, 409, 422), put.text

    # The bound release manager publishes from their machine.
    publish_args = ["release", "publish", str(rid), "--key", "rm", "--passphrase-env", "FP_PASS"]
    out = _ok(cli(_token(world.mlops), *publish_args, "--json", keys_dir=world.mlops.keys_dir))
    assert out["releases_version"] == 1 and out["signatures"] == 1
    model_bytes = world.admin.tuf_target(model_path)
    assert out["targets"][model_path] == hashlib.sha256(model_bytes).hexdigest()

    # A device-like client resolves the model through the whole chain.
    root_v1 = (offline_dir / "metadata" / "1.root.json").read_bytes()
    cache = tmp_path / "tuf-cache"
    cache.mkdir()

    def updater() -> Updater:
        return Updater(
            str(cache), "http://testserver/api/v1/tuf/image/metadata/",
            target_base_url="http://testserver/api/v1/tuf/image/targets/",
            fetcher=_TestFetcher(api, _token(world.ds)), bootstrap=root_v1,
        )  # fmt: skip

    first = updater()
    first.refresh()
    info = first.get_targetinfo(model_path)
    assert info is not None and info.hashes["sha256"] == hashlib.sha256(model_bytes).hexdigest()
    info.verify_length_and_hashes(model_bytes)

    # Root rotation: a new key, threshold 3; the same device follows it without re-enrolling.
    rotated = _ok(cli(admin_token, "trust", "rotate-root", "--add-key", "--threshold", "3",
                      *od, "--json"))  # fmt: skip
    assert rotated["root_version"] == 2 and len(rotated["root_keyids"]) == 4
    second = updater()
    second.refresh()
    assert second.get_targetinfo(model_path).hashes == info.hashes
    assert json.loads((cache / "root.json").read_bytes())["signed"]["version"] == 2

    # Online keys replaced: the server makes new ones, the offline keys sign root v3.
    online = _ok(cli(admin_token, "trust", "rotate-online", *od, "--json"))
    assert online["root_version"] == 3
    assert online["online_keys_changed"] == ["snapshot", "timestamp", "director"]
    third = updater()
    third.refresh()
    assert third.get_targetinfo(model_path).hashes == info.hashes
    assert json.loads((cache / "root.json").read_bytes())["signed"]["version"] == 3

    # Approvals and the evaluation attestation the default policy asks for.
    world.ds.attest_evaluation(world.passed_eval, world.ds.load_key("ds", PASS))
    world.ds2.approve(release_id=rid, role="data-scientist", key=world.ds2.load_key("ds2", PASS))
    world.mlops.approve(release_id=rid, role="mlops-engineer", key=world.mlops.load_key("rm", PASS))

    # Download, then verify offline against the root the admin holds.
    bundle = tmp_path / "bundle"
    r = cli(_token(world.ds), "release", "download", str(rid), str(bundle))
    assert r.exit_code == 0, r.output
    root_file = offline_dir / "metadata" / "1.root.json"
    verified = cli(admin_token, "verify", str(bundle), "--root", str(root_file), "--json")
    report = json.loads(verified.stdout)
    assert verified.exit_code == 0, verified.output
    assert report["verified"] and report["checks"][-1]["name"] == "trust policy"

    model_file = bundle / "targets" / model_path
    tampered = tmp_path / "tampered"
    shutil.copytree(bundle, tampered)
    data = bytearray(model_file.read_bytes())
    data[len(data) // 2] ^= 0x01
    (tampered / "targets" / model_path).write_bytes(bytes(data))
    bad = cli(admin_token, "verify", str(tampered), "--root", str(root_file))
    assert bad.exit_code == 1 and f"not verified: {model_path}" in bad.output

    resigned = tmp_path / "resigned"
    shutil.copytree(bundle, resigned)
    raw = (resigned / "metadata" / "releases.json").read_bytes()
    sig = json.loads(raw)["signatures"][0]["sig"]
    forged_sig = sig[:-2] + ("00" if sig[-2:] != "00" else "11")  # same length: snapshot agrees
    (resigned / "metadata" / "releases.json").write_bytes(
        raw.replace(sig.encode(), forged_sig.encode())
    )
    bad = cli(admin_token, "verify", str(resigned), "--root", str(root_file))
    assert bad.exit_code == 1 and "not verified: releases.json" in bad.output

    # Unbinding the release manager removes the key from the delegation.
    _ok(cli(admin_token, "trust", "unbind-key", rm_key, *od))
    status = _ok(cli(admin_token, "trust", "status", "--offline-dir", str(offline_dir), "--json"))
    assert rm_key not in status["bindings"] and status["targets"]["releases_keyids"] == []


def test_set_policy_validates_and_publishes(api, cli, admin_token, tmp_path):
    offline_dir = tmp_path / "offline"
    od = ["--offline-dir", str(offline_dir), "--passphrase-env", "FP_OFFLINE"]
    _ok(cli(admin_token, "trust", "init", *od, "--root-keys", "1", "--root-threshold", "1"))
    bad = tmp_path / "bad.yaml"
    bad.write_text("schema: farpoint.trust-policy/v1\nevaluation: passed\n")
    r = cli(admin_token, "trust", "set-policy", str(bad), "--fleet", "ward-7", *od)
    assert r.exit_code == 1 and "missing" in r.output
    good = tmp_path / "good.yaml"
    good.write_text(
        "schema: farpoint.trust-policy/v1\nevaluation: passed\n"
        "approvals:\n  - {role: mlops-engineer, min: 2}\n"
        "min_distinct_approvers: 2\nauthor_may_approve: false\n"
    )
    out = _ok(
        cli(admin_token, "trust", "set-policy", str(good), "--fleet", "ward-7", *od, "--json")
    )
    assert out["target"] == "trust/policies/ward-7.json"
    served = api.get("/api/v1/tuf/image/targets/trust/policies/ward-7.json",
                     headers=bearer(admin_token))  # fmt: skip
    assert served.status_code == 200 and json.loads(served.content)["approvals"][0]["min"] == 2
