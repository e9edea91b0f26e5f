"""`farpoint trace`: the chain from a device back to its data, every signature checked here."""

from __future__ import annotations

import json

import pytest
from release_fixtures import enroll_device
from sqlalchemy import select, update
from trust_helpers import build_world
from typer.testing import CliRunner

import farpoint.cli.main as cli_main
from farpoint.sdk import Client
from farpoint.server.attestations.tables import Attestation

vitals = pytest.importorskip("farpoint.examples.vitals")
PASS = "trace passphrase"


@pytest.fixture
def world(api, token_for, admin_token, tmp_path):
    w = build_world(
        api, token_for, admin_token, tmp_path, lambda data: vitals.train_model(data, seed=5)
    )
    ds_key = w.ds.create_key("ds", PASS)
    w.ds.register_key("ds")
    mlops_key = w.mlops.create_key("mlops", PASS)
    w.mlops.register_key("mlops")
    w.ds.attest_dataset("vitals@1", ds_key)
    w.ds.attest_training("deterioration@1", ds_key)
    w.ds.attest_evaluation(w.passed_eval, ds_key)
    w.ds.approve(release_id=w.release_id, role="data-scientist", key=ds_key)
    w.mlops.approve(release_id=w.release_id, role="mlops-engineer", key=mlops_key)
    return w


@pytest.fixture
def cli(api, monkeypatch):
    def make_client(server, token):
        return Client("http://testserver", token, transport=api._transport)

    monkeypatch.setattr(cli_main, "make_client", make_client)
    runner = CliRunner()
    return lambda token, *args: runner.invoke(cli_main.app, ["--token", token, *args])


def _token(c: Client) -> str:
    return c._http.headers["authorization"].split(" ", 1)[1]


def test_release_chain_reaches_the_datasets_and_verifies(world):
    chain = world.mlops.trace_release(world.release_id)
    kinds = [(link.kind, link.ref) for link, _ in _walk(chain.root)]
    assert ("release", f"release/{world.release_id}") in kinds
    assert ("model_version", "deterioration@1") in kinds
    assert ("training_run", "run/1") in kinds
    assert ("dataset_version", "vitals@1") in kinds  # trained on
    assert ("dataset_version", "holdout@1") in kinds  # evaluated on
    checks = world.mlops.verify_trace(chain)
    assert all(c.ok for c in checks)
    release = checks[0]
    signers = sorted(what for what, ok, _ in release.checks)
    assert signers[0].startswith("approval") and len(signers) == 3  # manifest + 2 approvals
    server_key = chain.server_key_id
    assert all(c.ok for c in world.mlops.verify_trace(chain, server_key_id=server_key))
    pinned_wrong = world.mlops.verify_trace(chain, server_key_id="sha256:" + "0" * 64)
    assert not pinned_wrong[0].ok


def test_cli_trace_exits_1_when_a_stored_signature_was_altered(api, app, world, cli):
    token = _token(world.mlops)
    ok = cli(token, "trace", str(world.release_id))
    assert ok.exit_code == 0, ok.output
    assert "every signature verifies" in ok.output and "vitals@1" in ok.output

    with app.state.ctx.db.session() as s:
        row = s.scalars(
            select(Attestation).where(Attestation.signer == world.mlops.me().user)
        ).one()
        env = dict(row.envelope)
        sig = env["signatures"][0]["sig"]
        env["signatures"] = [dict(env["signatures"][0], sig=sig[:-6] + ("A" * 4) + sig[-2:])]
        s.execute(update(Attestation).where(Attestation.id == row.id).values(envelope=env))

    bad = cli(token, "trace", str(world.release_id), "--json")
    assert bad.exit_code == 1, bad.output
    doc = json.loads(bad.output)
    assert doc["verified"] is False
    failing = [c for c in doc["checks"] if not c["verified"]]
    assert len(failing) == 1 and failing[0]["ref"] == f"release/{world.release_id}"


def test_device_trace_follows_the_release_it_runs(app, api, world, token_for):
    device = enroll_device(app, api, token_for("it-ops"), "gw-trace", {"ward": "icu"})
    # Nothing active yet: the device runs no model.
    assert world.mlops.trace_device("gw-trace").root.children == []
    r = device.report(("deterioration", world.release_id, "active"))
    assert r.status_code == 204, r.text
    chain = world.mlops.trace_device(device.id)
    assert chain.root.ref == "device/gw-trace"
    assert [c.ref for c in chain.root.children] == [f"release/{world.release_id}"]
    assert all(c.ok for c in world.mlops.verify_trace(chain))


def _walk(link):
    yield link, 0
    for child in link.children:
        yield from _walk(child)
