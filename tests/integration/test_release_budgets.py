"""A release's latency budget per hardware profile: set through the API, the SDK and the
CLI, signed into the manifest the device self-tests against, refused when malformed."""

from __future__ import annotations

import json
from typing import Any

import pytest
from typer.testing import CliRunner

import farpoint.cli.main as cli_main
from conftest import bearer
from farpoint.agent.payloads import parse_manifest
from farpoint.core import dsse, keys
from farpoint.sdk import Client

vitals = pytest.importorskip("farpoint.examples.vitals")


@pytest.fixture(scope="module")
def frames() -> tuple[Any, Any]:
    frame = vitals.generate(n_rows=1200, seed=5)
    return vitals.split(frame, holdout_fraction=0.3, seed=5)


def _evaluated_model(api: Any, token_for: Any, frames: tuple[Any, Any], tmp_path: Any) -> str:
    """deterioration@1 with a passed evaluation; returns an mlops-engineer token."""
    ds_token, mlops = token_for("data-scientist"), token_for("mlops-engineer")
    ds = Client("http://testserver", ds_token, transport=api._transport)
    train, holdout = frames
    train.to_csv(tmp_path / "train.csv", index=False)
    holdout.to_csv(tmp_path / "holdout.csv", index=False)
    ds.upload_dataset("vitals", tmp_path / "train.csv", roles=vitals.COLUMN_ROLES)
    ds.upload_dataset("holdout", tmp_path / "holdout.csv", roles=vitals.COLUMN_ROLES)
    data = ds.load_dataset("vitals@1")
    run = ds.log_run(name="t", params={}, metrics={}, datasets=["vitals@1"])
    ds.register_sklearn_model(
        "deterioration",
        vitals.train_model(data, seed=5),
        data,
        vitals.FEATURES,
        run_id=run.id,
        label_column=vitals.LABEL,
    )
    lenient = "gates:\n  - metric: roc_auc\n    min: 0.5\n"
    Client("http://testserver", mlops, transport=api._transport).create_policy("lenient", lenient)
    assert ds.evaluate("deterioration@1", "holdout@1", "lenient").passed
    return mlops


def _releases(api: Any, token: str) -> int:
    return len(api.get("/api/v1/releases", headers=bearer(token)).json()["items"])


def test_a_latency_budget_is_signed_into_the_manifest(
    api: Any, token_for: Any, frames: tuple[Any, Any], tmp_path: Any, monkeypatch: Any
) -> None:
    mlops = _evaluated_model(api, token_for, frames, tmp_path)
    sdk = Client("http://testserver", mlops, transport=api._transport)

    plain = sdk.create_release("deterioration@1")
    assert plain.latency_budget_ms == {} and "budgets" not in plain.manifest

    out = sdk.create_release("deterioration@1", latency_budget_ms={"x86_64": 2.5, "default": 5})
    assert out.latency_budget_ms == {"default": 5.0, "x86_64": 2.5}
    server_key = api.app.state.ctx.signing_key.public_key()
    signed = dsse.verify_envelope(
        out.envelope, {keys.key_id(server_key): server_key}, dsse.MANIFEST_TYPE
    )
    assert signed["budgets"] == {"latency_p95_ms": {"default": 5.0, "x86_64": 2.5}}
    # the bytes a device gets from the image repository carry it, and the agent reads it
    target = api.get(
        f"/api/v1/tuf/image/targets/releases/{out.id}/manifest.json", headers=bearer(mlops)
    )
    assert target.status_code == 200, target.text
    assert parse_manifest(json.loads(target.content))["budgets"] == signed["budgets"]
    assert api.get(f"/api/v1/releases/{out.id}", headers=bearer(mlops)).json()[
        "latency_budget_ms"
    ] == {"default": 5.0, "x86_64": 2.5}

    before = _releases(api, mlops)
    for budget, words in [
        ({"x86_64": 0}, "greater than 0"),
        ({"x86_64": -1.5}, "greater than 0"),
        ({"../x": 1}, "pattern"),
        ({f"p{i}": 1 for i in range(17)}, "at most 16"),
    ]:
        r = api.post(
            "/api/v1/releases",
            json={"model": "deterioration@1", "latency_budget_ms": budget},
            headers=bearer(mlops),
        )
        assert r.status_code == 422, r.text
        assert r.headers["content-type"].startswith("application/problem+json")
        assert words in r.text
    assert _releases(api, mlops) == before  # nothing half-made

    monkeypatch.setattr(
        cli_main,
        "make_client",
        lambda server, token: Client("http://testserver", token, transport=api._transport),
    )
    runner = CliRunner()

    def cli(*args: str) -> Any:
        return runner.invoke(cli_main.app, ["--token", mlops, "release", "create", *args])

    r = cli("--model", "deterioration@1", "--latency-budget", "aarch64=4",
            "--latency-budget", "default=8ms", "--json")  # fmt: skip
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["latency_budget_ms"] == {"aarch64": 4.0, "default": 8.0}
    r = cli("--model", "deterioration@1", "--latency-budget", "aarch64=fast")
    assert r.exit_code == 2 and "is not a number of milliseconds" in r.output
    r = cli("--model", "deterioration@1", "--latency-budget", "aarch64=0")
    assert r.exit_code == 1 and "Invalid input: latency_budget_ms.aarch64" in r.output
    r = cli("--model", "deterioration@1", "--latency-budget", "x86_64=2")
    assert r.exit_code == 0 and "x86_64 2 ms" in r.stdout
