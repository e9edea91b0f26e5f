"""The CLI and SDK against the real app in process: exit codes a pipeline can rely on."""

from __future__ import annotations

import json

import pytest

from farpoint.sdk import Client

vitals = pytest.importorskip("farpoint.examples.vitals")


def test_pipeline_gate_exit_codes(api, cli, token_for, tmp_path):
    ds_token, mlops_token = token_for("data-scientist"), token_for("mlops-engineer")
    ds = Client("http://testserver", ds_token, transport=api._transport)
    frame = vitals.generate(n_rows=2500, seed=11)
    train, holdout = vitals.split(frame, holdout_fraction=0.3, seed=11)
    train.to_csv(tmp_path / "train.csv", index=False)
    holdout.to_csv(tmp_path / "holdout.csv", index=False)
    role_args = [a for c, r in vitals.COLUMN_ROLES.items() for a in ("--role", f"{c}={r}")]

    r = cli(ds_token, "dataset", "upload", "vitals", str(tmp_path / "train.csv"), *role_args)
    assert r.exit_code == 0, r.output
    r = cli(ds_token, "dataset", "upload", "holdout", str(tmp_path / "holdout.csv"), *role_args)
    assert r.exit_code == 0, r.output
    listed = json.loads(cli(ds_token, "dataset", "list", "--json").output)
    assert sorted(d["name"] for d in listed) == ["holdout", "vitals"]

    data = ds.load_dataset("vitals@1")
    model = vitals.train_model(data, seed=11)
    run = ds.log_run(name="t", params={}, metrics={}, datasets=["vitals@1"])
    mv = ds.register_sklearn_model(
        "deterioration", model, data, vitals.FEATURES, run_id=run.id, label_column=vitals.LABEL
    )
    assert mv.ref == "deterioration@1"

    (tmp_path / "strict.yaml").write_text("gates:\n  - metric: roc_auc\n    min: 0.9999\n")
    (tmp_path / "lenient.yaml").write_text("gates:\n  - metric: roc_auc\n    min: 0.5\n")
    for name in ("strict", "lenient"):
        r = cli(mlops_token, "policy", "create", name, str(tmp_path / f"{name}.yaml"))
        assert r.exit_code == 0, r.output

    failed = cli(ds_token, "evaluate", "--model", "deterioration@1", "--dataset", "holdout@1",
                 "--policy", "strict")  # fmt: skip
    assert failed.exit_code == 1, failed.output
    assert "✗" in failed.output
    passed = cli(ds_token, "evaluate", "--model", "deterioration@1", "--dataset", "holdout@1",
                 "--policy", "lenient", "--json")  # fmt: skip
    assert passed.exit_code == 0, passed.output
    assert json.loads(passed.output)["passed"] is True

    # A role that may not evaluate is refused with the problem's detail, exit 1.
    biz = token_for("business")
    refused = cli(biz, "evaluate", "--model", "deterioration@1", "--dataset", "holdout@1",
                  "--policy", "lenient")  # fmt: skip
    assert refused.exit_code == 1 and "roles" in refused.output
