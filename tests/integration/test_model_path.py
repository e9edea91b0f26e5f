"""Datasets → run → model version → evaluation → release, through the HTTP API."""

from __future__ import annotations

import json

import pytest
from flow_helpers import register_model, upload_csv

from conftest import bearer
from farpoint.core import dsse, keys

vitals = pytest.importorskip("farpoint.examples.vitals")


@pytest.fixture(scope="module")
def scenario():
    from farpoint.ml.onnx_export import convert_sklearn

    frame = vitals.generate(n_rows=3000, seed=3)
    train, holdout = vitals.split(frame, holdout_fraction=0.3, seed=3)
    model = vitals.train_model(train, seed=3)
    converted = convert_sklearn(model, train, vitals.FEATURES)
    return train, holdout, model, converted


def _count(api, token, path):
    return len(api.get(path, headers=bearer(token)).json()["items"])


def test_full_model_path(api, token_for, scenario):
    train, holdout, _model, converted = scenario
    ds = token_for("data-scientist")
    mlops = token_for("mlops-engineer")

    r = upload_csv(api, ds, "vitals", train, vitals.COLUMN_ROLES)
    assert r.status_code == 201, r.text
    v = r.json()
    assert v["ref"] == "vitals@1" and v["row_count"] == len(train)
    assert v["roles"]["sex"] == "protected" and v["roles"]["mrn"] == "pii"
    assert v["digest"].startswith("sha256:")
    assert upload_csv(api, ds, "vitals-holdout", holdout, vitals.COLUMN_ROLES).status_code == 201

    # The registered rows come back as canonical Parquet, with their content digest.
    r = api.get("/api/v1/datasets/vitals/versions/1/data", headers=bearer(ds))
    assert r.status_code == 200 and r.headers["x-farpoint-dataset-digest"] == v["digest"]
    biz = token_for("business")
    assert (
        api.get("/api/v1/datasets/vitals/versions/1/data", headers=bearer(biz)).status_code == 403
    )

    r = api.post(
        "/api/v1/runs",
        json={"name": "baseline", "params": {"C": 1.0}, "datasets": ["vitals@1"]},
        headers=bearer(ds),
    )
    assert r.status_code == 201, r.text
    run_id = r.json()["id"]

    r = register_model(api, ds, converted, run_id, vitals.LABEL)
    assert r.status_code == 201, r.text
    mv = r.json()
    assert mv["ref"] == "deterioration@1" and mv["status"] == "registered"
    assert mv["datasets"] == ["vitals@1"]

    from farpoint.ml.policy import DEFAULT_POLICY_YAML

    r = api.post(
        "/api/v1/policies",
        json={"name": "ward", "yaml": DEFAULT_POLICY_YAML},
        headers=bearer(mlops),
    )
    assert r.status_code == 201, r.text

    # Evaluating on the training data is refused: it must be held out.
    r = api.post(
        "/api/v1/evaluations",
        json={"model": "deterioration@1", "dataset": "vitals@1", "policy": "ward"},
        headers=bearer(ds),
    )
    assert r.status_code == 422 and "held-out" in r.json()["detail"]

    r = api.post(
        "/api/v1/evaluations",
        json={"model": "deterioration@1", "dataset": "vitals-holdout@1", "policy": "ward"},
        headers=bearer(ds),
    )
    assert r.status_code == 201, r.text
    ev = r.json()
    for metric in ("accuracy", "precision", "recall", "f1", "roc_auc"):
        assert 0.0 <= ev["metrics"][metric] <= 1.0
    assert "demographic_parity_difference[sex]" in ev["metrics"]
    assert set(ev["group_metrics"]["sex"]) == {"F", "M"}
    assert ev["passed"] is True, ev["gates"]
    assert all(g["reason"] for g in ev["gates"])

    r = api.post("/api/v1/releases", json={"model": "deterioration@1"}, headers=bearer(mlops))
    assert r.status_code == 201, r.text
    rel = r.json()
    app = api.app
    server_key = app.state.ctx.signing_key.public_key()
    manifest = dsse.verify_envelope(
        rel["envelope"], {keys.key_id(server_key): server_key}, dsse.MANIFEST_TYPE
    )
    assert manifest["model_digest"] == mv["digest"] and manifest["release_id"] == rel["id"]
    assert manifest["golden"]["rows"] and manifest["signature"]["inputs"]
    r = api.get("/api/v1/models/deterioration/versions/1", headers=bearer(ds))
    assert r.json()["status"] == "released"


def test_failing_gate_blocks_release(api, token_for, scenario):
    train, holdout, _model, converted = scenario
    ds, mlops = token_for("data-scientist"), token_for("mlops-engineer")
    upload_csv(api, ds, "vitals", train, vitals.COLUMN_ROLES)
    upload_csv(api, ds, "vitals-holdout", holdout, vitals.COLUMN_ROLES)
    run_id = api.post("/api/v1/runs", json={"datasets": ["vitals@1"]}, headers=bearer(ds)).json()[
        "id"
    ]
    assert register_model(api, ds, converted, run_id, vitals.LABEL).status_code == 201
    strict = "gates:\n  - metric: roc_auc\n    min: 0.999\n"
    api.post("/api/v1/policies", json={"name": "strict", "yaml": strict}, headers=bearer(mlops))
    ev = api.post(
        "/api/v1/evaluations",
        json={"model": "deterioration@1", "dataset": "vitals-holdout", "policy": "strict"},
        headers=bearer(ds),
    ).json()
    assert ev["passed"] is False
    assert ev["gates"][0]["passed"] is False and "0.999" in ev["gates"][0]["reason"]
    r = api.post("/api/v1/releases", json={"model": "deterioration@1"}, headers=bearer(mlops))
    assert r.status_code == 422 and "no passed evaluation" in r.json()["detail"]
    assert _count(api, mlops, "/api/v1/releases") == 0


def test_model_reading_a_pii_column_is_refused(api, token_for, scenario):
    train, _holdout, _model, converted = scenario
    ds = token_for("data-scientist")
    roles = dict(vitals.COLUMN_ROLES, age="pii")
    upload_csv(api, ds, "vitals", train, roles)
    run_id = api.post("/api/v1/runs", json={"datasets": ["vitals@1"]}, headers=bearer(ds)).json()[
        "id"
    ]
    r = register_model(api, ds, converted, run_id, vitals.LABEL)
    assert r.status_code == 422
    assert "'age'" in r.json()["detail"] and "pii" in r.json()["detail"]
    assert _count(api, ds, "/api/v1/models") == 0


def test_tampered_golden_vectors_are_refused(api, token_for, scenario):
    train, _holdout, _model, converted = scenario
    ds = token_for("data-scientist")
    upload_csv(api, ds, "vitals", train, vitals.COLUMN_ROLES)
    run_id = api.post("/api/v1/runs", json={"datasets": ["vitals@1"]}, headers=bearer(ds)).json()[
        "id"
    ]
    golden = json.loads(json.dumps(converted.golden))
    golden["probabilities"][0] = [0.5, 0.5]
    bad = type(converted)(**{**converted.__dict__, "golden": golden})
    r = register_model(api, ds, bad, run_id, vitals.LABEL)
    assert r.status_code == 422 and "golden" in r.json()["detail"]


@pytest.mark.parametrize(
    ("content", "filename", "roles", "expect"),
    [
        (b"", "x.csv", {}, "empty"),
        (b"a,b\n1,2\n3,4,5\n", "x.csv", {}, "line"),
        (b"a,b\n1,2\n", "x.csv", {"a": "secret-sauce"}, "unknown column role"),
        (b"a,b\n1,2\n", "x.csv", {"zzz": "feature"}, "zzz"),
        (b"a,a\n1,2\n", "x.csv", {}, "more than once"),
        (b"not parquet at all", "x.parquet", {}, "parquet"),
    ],
)
def test_bad_uploads_get_a_clear_problem_and_store_nothing(
    api, token_for, content, filename, roles, expect
):
    ds = token_for("data-scientist")
    r = api.post(
        "/api/v1/datasets/bad/versions",
        files={"file": (filename, content, "text/csv")},
        data={"roles": json.dumps(roles)},
        headers=bearer(ds),
    )
    assert 400 <= r.status_code < 500, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert expect.lower() in r.json()["detail"].lower()
    assert _count(api, ds, "/api/v1/datasets") == 0
    blobs = api.app.state.ctx.blobs.root / "sha256"
    assert not blobs.exists() or not any(blobs.rglob("*"))


def test_upload_over_the_limit_is_413(app, api, token_for):
    import dataclasses

    app.state.ctx.settings = dataclasses.replace(app.state.ctx.settings, max_upload_bytes=64)
    ds = token_for("data-scientist")
    r = api.post(
        "/api/v1/datasets/big/versions",
        files={"file": ("big.csv", b"a,b\n" + b"1,2\n" * 100, "text/csv")},
        headers=bearer(ds),
    )
    assert r.status_code == 413 and "limit" in r.json()["detail"]
    assert _count(api, ds, "/api/v1/datasets") == 0
