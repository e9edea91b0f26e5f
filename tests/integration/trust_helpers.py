"""A small world for the trust tests: datasets, a run, a model, evaluations and a release."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from farpoint.core import dsse, intoto, keys
from farpoint.sdk import Client

COMMIT = "0123456789abcdef0123456789abcdef01234567"


@dataclass
class World:
    ds: Client
    ds2: Client
    mlops: Client
    admin: Client
    passed_eval: int
    failed_eval: int
    release_id: int


def client(api: Any, token: str, keys_dir: Path) -> Client:
    c = Client("http://testserver", token, transport=api._transport)
    c.keys_dir = keys_dir
    return c


def build_world(api: Any, token_for: Any, admin_token: str, tmp_path: Path, model: Any) -> World:
    from farpoint.examples import vitals

    ds = client(api, token_for("data-scientist"), tmp_path / "keys-ds")
    ds2 = client(api, token_for("data-scientist", "business"), tmp_path / "keys-ds2")
    mlops = client(api, token_for("mlops-engineer"), tmp_path / "keys-mlops")
    admin = client(api, admin_token, tmp_path / "keys-admin")
    frame = vitals.generate(n_rows=1500, seed=5)
    train, holdout = vitals.split(frame, holdout_fraction=0.3, seed=5)
    train.to_csv(tmp_path / "train.csv", index=False)
    holdout.to_csv(tmp_path / "holdout.csv", index=False)
    ds.upload_dataset("vitals", tmp_path / "train.csv", roles=vitals.COLUMN_ROLES)
    ds.upload_dataset("holdout", tmp_path / "holdout.csv", roles=vitals.COLUMN_ROLES)
    run = ds.create_run(
        name="baseline",
        params={"C": 1.0},
        code={"git_commit": COMMIT, "repository": "https://example.org/farpoint.git"},
        environment={"scikit-learn": "1.5.0"},
        datasets=["vitals@1"],
    )
    data = ds.load_dataset("vitals@1")
    fitted = model(data)
    ds.register_sklearn_model(
        "deterioration", fitted, data, vitals.FEATURES, run_id=run.id, label_column=vitals.LABEL
    )
    mlops.create_policy("strict", "gates:\n  - metric: roc_auc\n    min: 0.9999\n")
    mlops.create_policy("lenient", "gates:\n  - metric: roc_auc\n    min: 0.5\n")
    failed = ds.evaluate("deterioration@1", "holdout@1", "strict")
    passed = ds.evaluate("deterioration@1", "holdout@1", "lenient")
    assert passed.passed and not failed.passed
    release = mlops.create_release("deterioration@1", passed.id)
    return World(ds, ds2, mlops, admin, passed.id, failed.id, release.id)


def envelope_for(statement: intoto.Statement, key: keys.PrivateKey) -> dict[str, Any]:
    return dsse.sign_envelope(intoto.statement_bytes(statement), intoto.PAYLOAD_TYPE, key)


def tampered(envelope: dict[str, Any], change: Any) -> dict[str, Any]:
    """The envelope with its payload changed after signing (the signature kept)."""
    statement = json.loads(base64.b64decode(envelope["payload"]))
    change(statement)
    payload = json.dumps(statement, sort_keys=True, separators=(",", ":")).encode()
    return {**envelope, "payload": base64.b64encode(payload).decode()}
