"""Test helpers: releases inserted through the ORM, and enrolled devices that sign requests.

Releases are made directly (not through the releases API) so these tests depend only on
the tables: a model version, its training run, dataset, policy and evaluation, and a
release whose manifest is signed by the server key and whose model blob is stored.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from tuf_fixtures import ensure_trust

from farpoint.core import dsse, keys
from farpoint.core.digest import digest_bytes
from farpoint.core.request_signing import sign_request
from farpoint.server.datasets.tables import Dataset, DatasetVersion
from farpoint.server.evaluations.tables import Evaluation, Policy
from farpoint.server.models.tables import Model, ModelVersion, TrainingRun
from farpoint.server.releases.tables import Release


@dataclass(frozen=True)
class MadeRelease:
    id: int
    model: str
    version: int
    model_digest: str
    manifest_digest: str
    blob: bytes


def make_release(app: FastAPI, model: str = "vitals", blob: bytes | None = None) -> MadeRelease:
    """Insert a release of a new version of `model` (created on first use)."""
    ctx = app.state.ctx
    with ctx.db.session() as s:
        m = s.scalars(select(Model).where(Model.name == model)).one_or_none()
        if m is None:
            m = Model(name=model)
            s.add(m)
            s.flush()
        version = len(s.scalars(select(ModelVersion).where(ModelVersion.model_id == m.id)).all())
        version += 1
        data = blob if blob is not None else f"onnx bytes of {model}@{version}".encode() * 50
        model_digest = ctx.blobs.put_bytes(data)

        run = TrainingRun(
            name=f"train {model}",
            params={},
            metrics={},
            code={},
            environment={},
            datasets=[],
            created_by="test",
        )
        ds = s.scalars(select(Dataset).where(Dataset.name == f"{model}-data")).one_or_none()
        if ds is None:
            ds = Dataset(name=f"{model}-data")
            s.add(ds)
        s.add(run)
        s.flush()
        dsv = DatasetVersion(
            dataset_id=ds.id,
            version=version,
            digest=digest_bytes(b"data %d" % version),
            size_bytes=10,
            row_count=1,
            columns=[],
            roles={},
            source_filename="data.csv",
            created_by="test",
        )
        policy = Policy(
            name=f"{model}-policy",
            version=version,
            yaml="gates: []\n",
            spec={},
            created_by="test",
        )
        mv = ModelVersion(
            model_id=m.id,
            version=version,
            digest=model_digest,
            size_bytes=len(data),
            framework="sklearn",
            flavor="onnx",
            signature={},
            label_column="y",
            classes=[0, 1],
            golden={},
            parity={},
            run_id=run.id,
            status="released",
            created_by="test",
        )
        s.add_all([dsv, policy, mv])
        s.flush()
        evaluation = Evaluation(
            model_version_id=mv.id,
            dataset_version_id=dsv.id,
            policy_id=policy.id,
            metrics={},
            group_metrics={},
            gates=[],
            passed=True,
            created_by="test",
        )
        s.add(evaluation)
        s.flush()
        release = Release(
            model_version_id=mv.id,
            model=model,
            evaluation_id=evaluation.id,
            model_digest=model_digest,
            manifest_digest="",
            manifest={},
            envelope={},
            key_id=ctx.signing_key_id,
            created_by="test",
        )
        s.add(release)
        s.flush()
        manifest: dict[str, Any] = {
            "schema": "farpoint.release-manifest/v1",
            "release_id": release.id,
            "model": model,
            "model_version": version,
            "model_ref": f"{model}@{version}",
            "model_digest": model_digest,
            "model_size": len(data),
            "evaluation_id": evaluation.id,
            "author": "test",
        }
        payload = json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()
        release.manifest = manifest
        release.manifest_digest = ctx.blobs.put_bytes(payload)
        release.envelope = dsse.sign_envelope(payload, dsse.MANIFEST_TYPE, ctx.signing_key)
        s.flush()
        return MadeRelease(
            id=release.id,
            model=model,
            version=version,
            model_digest=model_digest,
            manifest_digest=release.manifest_digest,
            blob=data,
        )


@dataclass
class Device:
    """An enrolled device in a test: its id, key, and a client that signs its requests."""

    app: FastAPI
    api: TestClient
    id: str
    name: str
    key: keys.PrivateKey
    labels: dict[str, str]

    def headers(self, method: str, path: str, body: bytes = b"") -> dict[str, str]:
        return sign_request(self.key, self.id, method, path, body, self.app.state.ctx.clock())

    def get(self, path: str, headers: dict[str, str] | None = None, **kw: Any) -> Any:
        return self.api.get(path, headers={**self.headers("GET", path), **(headers or {})}, **kw)

    def post_json(self, path: str, payload: Any) -> Any:
        body = json.dumps(payload).encode()
        h = {**self.headers("POST", path, body), "Content-Type": "application/json"}
        return self.api.post(path, content=body, headers=h)

    def report(self, *models: tuple[str, int | None, str], error: str | None = None) -> Any:
        """Send a status report: (model, release id, phase) per model."""
        entries = [
            {"model": m, "release_id": r, "phase": p, "error": error if p == "failed" else None}
            for m, r, p in models
        ]
        return self.post_json(
            "/api/v1/devices/self/status", {"models": entries, "heartbeat": {"uptime_s": 5}}
        )


def enrollment_token(api: TestClient, bearer_token: str, **body: Any) -> dict[str, Any]:
    """A new enrollment token; initializes trust first (a root v1) when no root exists."""
    ensure_trust(api.app)  # type: ignore[arg-type]
    r = api.post(
        "/api/v1/enrollment-tokens",
        json=body,
        headers={"Authorization": f"Bearer {bearer_token}"},
    )
    assert r.status_code == 201, r.text
    result: dict[str, Any] = r.json()
    return result


def enroll_device(
    app: FastAPI,
    api: TestClient,
    bearer_token: str,
    name: str,
    labels: dict[str, str] | None = None,
) -> Device:
    """Create a token carrying `labels`, enroll a fresh key under `name` with it."""
    token = enrollment_token(api, bearer_token, labels=labels or {})["token"]
    key = keys.generate_private_key()
    r = api.post(
        "/api/v1/devices/enroll",
        json={
            "token": token,
            "name": name,
            "public_key_pem": keys.public_key_pem(key.public_key()).decode(),
        },
    )
    assert r.status_code == 201, r.text
    out = r.json()
    return Device(app=app, api=api, id=out["device_id"], name=name, key=key, labels=out["labels"])
