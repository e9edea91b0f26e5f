"""`farpoint dataset` governance commands against the real app in process: what a data
scientist types, what they read back, and the exit codes a CI pipeline gates on."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import select

ROLE_ARGS = ["--role", "mrn=id", "--role", "sex=protected", "--role", "deteriorated=label"]


def write_vitals(
    path: Path, *, seed: int, rows: int = 300, shift: float = 0.0, unlabelled: int = 0
) -> Path:
    """Ward vitals: `email` holds addresses nobody labelled; `ward` codes have leading zeros;
    `shift` moves heart rates up; the first `unlabelled` rows lack their label."""
    rng = random.Random(seed)
    lines = ["mrn,email,ward,sex,age,heart_rate,deteriorated"]
    for i in range(rows):
        label = "" if i < unlabelled else str(int(rng.random() < 0.3))
        lines.append(
            f"MRN{100000 + i},patient{i}@example.org,0{rng.randint(1, 4)},{rng.choice('fm')},"
            f"{rng.randint(18, 95)},{round(rng.gauss(82 + shift, 12), 1)},{label}"
        )
    path.write_text("\n".join(lines) + "\n")
    return path


def _model_and_release_on(app: Any, dataset_ref: str) -> None:
    """A training run on `dataset_ref`, its model version, an evaluation and a release,
    inserted as the release tests do (the CLI only reads them back through lineage)."""
    from farpoint.server.datasets.tables import Dataset, DatasetVersion
    from farpoint.server.evaluations.tables import Evaluation, Policy
    from farpoint.server.models.tables import Model, ModelVersion, TrainingRun
    from farpoint.server.releases.tables import Release

    ctx = app.state.ctx
    name, _, number = dataset_ref.partition("@")
    with ctx.db.session() as s:
        dataset = s.scalars(select(Dataset).where(Dataset.name == name)).one()
        dsv = s.scalars(
            select(DatasetVersion).where(
                DatasetVersion.dataset_id == dataset.id, DatasetVersion.version == int(number)
            )
        ).one()
        model = Model(name="deterioration")
        run = TrainingRun(name="train", params={}, metrics={}, code={}, environment={},
                          datasets=[dataset_ref], created_by="test")  # fmt: skip
        policy = Policy(name="ward", version=1, yaml="gates: []\n", spec={}, created_by="test")
        s.add_all([model, run, policy])
        s.flush()
        mv = ModelVersion(model_id=model.id, version=1, digest="sha256:" + "0" * 64,
                          size_bytes=1, framework="sklearn", flavor="onnx", signature={},
                          label_column="deteriorated", classes=[0, 1], golden={}, parity={},
                          run_id=run.id, status="released", created_by="test")  # fmt: skip
        s.add(mv)
        s.flush()
        evaluation = Evaluation(model_version_id=mv.id, dataset_version_id=dsv.id,
                                policy_id=policy.id, metrics={}, group_metrics={}, gates=[],
                                passed=True, created_by="test")  # fmt: skip
        s.add(evaluation)
        s.flush()
        s.add(Release(model_version_id=mv.id, model="deterioration", evaluation_id=evaluation.id,
                      model_digest=mv.digest, manifest_digest="sha256:" + "1" * 64, manifest={},
                      envelope={}, key_id=ctx.signing_key_id, created_by="test"))  # fmt: skip


def test_a_data_scientist_reviews_validates_and_erases_from_the_command_line(
    app: Any, cli: Any, token_for: Any, tmp_path: Path
) -> None:
    ds = token_for("data-scientist")

    # Upload: `ward` codes stay text, the report and the unlabelled PII column are shown.
    v1_csv = write_vitals(tmp_path / "v1.csv", seed=1)
    r = cli(ds, "dataset", "upload", "vitals", str(v1_csv), *ROLE_ARGS, "--type", "ward=string")
    assert r.exit_code == 0, r.output
    assert "vitals@1" in r.output and "passed" in r.output
    assert "review pending" in r.output
    assert "farpoint dataset classify vitals@1" in r.output and "--accept email" in r.output
    shown = json.loads(cli(ds, "dataset", "show", "vitals@1", "--json").output)
    assert {c["name"]: c["dtype"] for c in shown["columns"]}["ward"] == "string"
    assert "email" in shown["pending_classification"]
    assert shown["roles"]["email"] == "feature"
    assert shown["contract_version"] == 1

    # The proposals, with their evidence; accepting one gives the column its role.
    r = cli(ds, "dataset", "classify", "vitals@1")
    assert r.exit_code == 0, r.output
    assert "email" in r.output and "proposed" in r.output
    findings = json.loads(cli(ds, "dataset", "classify", "vitals@1", "--json").output)["findings"]
    email = next(f for f in findings if f["column"] == "email")
    assert email["role"] == "pii" and email["status"] == "proposed" and email["evidence"]
    r = cli(ds, "dataset", "classify", "vitals@1", "--accept", "email", "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["roles"]["email"] == "pii"
    shown = json.loads(cli(ds, "dataset", "show", "vitals@1", "--json").output)
    assert "email" not in shown["pending_classification"]

    # Clean data passes the quality gate (exit 0), values of the PII column stay hidden.
    r = cli(ds, "dataset", "quality", "vitals@1")
    assert r.exit_code == 0, r.output
    assert "0 error(s)" in r.output
    # A stricter gate also fails on warnings (the e-mail column looked like an identifier).
    r = cli(ds, "dataset", "quality", "vitals@1", "--fail-on", "warning")
    assert r.exit_code == 1, r.output
    assert "id_like on email (warning)" in r.output
    r = cli(ds, "dataset", "profile", "vitals@1")
    assert r.exit_code == 0, r.output
    assert "heart_rate" in r.output and "withheld" in r.output
    assert "patient1@example.org" not in r.output

    # Dirty data: heart rates beyond v1's contract, labels missing. `--fail-on error`
    # registers the version and still exits 1, so a pipeline stops there.
    dirty = write_vitals(tmp_path / "v2.csv", seed=2, shift=40, unlabelled=12)
    r = cli(ds, "dataset", "upload", "vitals", str(dirty), *ROLE_ARGS, "--fail-on", "error")
    assert r.exit_code == 1, r.output
    assert "vitals@2 is registered, but quality checks" in r.output
    assert "deteriorated: now has nulls" in r.output  # the schema change from vitals@1
    assert json.loads(cli(ds, "dataset", "show", "vitals@2", "--json").output)["version"] == 2
    r = cli(ds, "dataset", "quality", "vitals@2")
    assert r.exit_code == 1, r.output
    assert "out_of_range on heart_rate (error)" in r.output
    assert "missing_values on deteriorated (error)" in r.output
    r = cli(ds, "dataset", "quality", "vitals@2", "--json")
    assert r.exit_code == 1
    report = json.loads(r.output)["report"]
    assert not report["passed"] and report["errors"] >= 2

    # Contract round trip: show it to a file, widen the heart-rate range, set it back.
    r = cli(ds, "dataset", "contract", "show", "vitals")
    assert r.exit_code == 0, r.output
    contract = yaml.safe_load(r.stdout)
    assert contract["columns"]["heart_rate"]["max"] < 150
    edited = [
        line.replace(f"max: {contract['columns']['heart_rate']['max']}", "max: 250.0")
        if line.strip().startswith("heart_rate:")
        else line
        for line in r.stdout.splitlines()
    ]
    (tmp_path / "contract.yaml").write_text("\n".join(edited) + "\n")
    r = cli(ds, "dataset", "contract", "set", "vitals", str(tmp_path / "contract.yaml"))
    assert r.exit_code == 0, r.output
    assert "contract version 2" in r.output
    v1_yaml = cli(ds, "dataset", "contract", "show", "vitals", "--version", "1").stdout
    assert yaml.safe_load(v1_yaml)["columns"]["heart_rate"]["max"] < 150
    latest = yaml.safe_load(cli(ds, "dataset", "contract", "show", "vitals").stdout)
    assert latest["columns"]["heart_rate"]["max"] == 250.0
    # The same rows again: the heart rates now hold; the missing labels still fail.
    r = cli(ds, "dataset", "upload", "vitals", str(dirty), *ROLE_ARGS, "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["contract_version"] == 2
    r = cli(ds, "dataset", "quality", "vitals@3")
    assert r.exit_code == 1
    assert "out_of_range on heart_rate" not in r.output
    assert "missing_values on deteriorated" in r.output

    # Drift from v1 to v2: the heart rates moved, the label became nullable.
    r = cli(ds, "dataset", "compare", "vitals", "1", "2")
    assert r.exit_code == 0, r.output
    heart = next(line for line in r.output.splitlines() if "heart_ra" in line)
    assert "significant" in heart or "signific" in heart
    assert "nullability" in r.output
    cmp = json.loads(cli(ds, "dataset", "compare", "vitals", "1", "2", "--json").output)
    assert cmp["columns"]["heart_rate"]["verdict"] == "significant"
    assert cmp["columns"]["sex"]["verdict"] == "none"

    # Pseudonymize the e-mail addresses of v1 into a derived version.
    r = cli(ds, "dataset", "pseudonymize", "vitals@1", "--column", "email")
    assert r.exit_code == 0, r.output
    assert "vitals@4: email pseudonymized from vitals@1" in r.output
    derived = json.loads(cli(ds, "dataset", "show", "vitals@4", "--json").output)
    assert derived["parent"] == "vitals@1" and derived["transform"]["kind"] == "pseudonymize"
    assert derived["roles"]["email"] == "id"
    assert "pseudonymize of vitals@1" in cli(ds, "dataset", "show", "vitals@4").output

    # A model was trained and released on v1; erasing a patient names them.
    _model_and_release_on(app, "vitals@1")
    ids = tmp_path / "ids.txt"
    ids.write_text("MRN100002\n\n  MRN100003 \n")
    r = cli(ds, "dataset", "erase", "vitals", "--column", "mrn", "--id", "MRN100001",
            "--ids-file", str(ids))  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "subjects      3" in r.output
    for ref in ("vitals@1", "vitals@2", "vitals@3", "vitals@4"):
        assert ref in r.output
    assert "new version   vitals@5" in r.output
    assert "model versions: deterioration@1" in r.output
    assert "releases: 1" in r.output
    erased = json.loads(cli(ds, "dataset", "show", "vitals@1", "--json").output)
    assert erased["erased_rows"] == 3
    assert "3 erased since registration" in cli(ds, "dataset", "show", "vitals@1").output
    listed = json.loads(cli(ds, "dataset", "erasures", "vitals", "--json").output)
    assert [e["rows_removed"] for e in listed] == [12]
    assert "deterioration@1" in cli(ds, "dataset", "erasures", "vitals").output

    # Lineage: the upload, what was derived from it, and what was built on it.
    r = cli(ds, "dataset", "lineage", "vitals@4")
    assert r.exit_code == 0, r.output
    lines = r.output.splitlines()
    assert lines[0].startswith("vitals@1") and "uploaded csv file 'v1.csv'" in lines[0]
    assert any("vitals@4" in line and "pseudonymized email" in line for line in lines)
    assert any("vitals@5" in line for line in lines)
    r = cli(ds, "dataset", "lineage", "vitals@1")
    assert "model versions: deterioration@1" in r.output and "releases: 1" in r.output

    # Retention: rows expire; a sweep finds nothing expired yet.
    r = cli(ds, "dataset", "retention", "vitals", "--days", "30", "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["retention_days"] == 30
    assert "expire" in cli(ds, "dataset", "show", "vitals@1").output
    r = cli(ds, "dataset", "sweep")
    assert r.exit_code == 0 and "nothing has expired" in r.output
    r = cli(ds, "dataset", "retention", "vitals", "--keep")
    assert r.exit_code == 0 and "kept until erased" in r.output


def test_bad_input_is_refused_with_what_to_fix(cli: Any, token_for: Any, tmp_path: Path) -> None:
    ds = token_for("data-scientist")
    data = write_vitals(tmp_path / "v.csv", seed=3, rows=40)

    r = cli(ds, "dataset", "upload", "vitals", str(data), "--type", "zipcode=string")
    assert r.exit_code == 1
    assert "types names column 'zipcode'" in r.output and "its columns are: mrn" in r.output
    r = cli(ds, "dataset", "upload", "vitals", str(data), "--type", "age=decimal")
    assert r.exit_code == 1 and "unknown column type 'decimal'" in r.output
    r = cli(ds, "dataset", "upload", "vitals", str(data), "--role", "age")
    assert r.exit_code == 2 and "'age' is not KEY=VALUE" in r.output
    r = cli(ds, "dataset", "upload", "vitals", str(data), "--role", "age=featur")
    assert r.exit_code == 1 and "allowed roles: feature, label" in r.output
    r = cli(ds, "dataset", "upload", "vitals", str(data), "--fail-on", "fatal")
    assert r.exit_code == 2
    r = cli(ds, "dataset", "list", "--json")
    assert json.loads(r.output) == []  # nothing was registered by the refusals

    assert cli(ds, "dataset", "upload", "vitals", str(data), *ROLE_ARGS).exit_code == 0
    r = cli(ds, "dataset", "classify", "vitals", "--accept", "heart_rate")
    assert r.exit_code == 1 and "no proposal to review for ['heart_rate']" in r.output
    r = cli(ds, "dataset", "erase", "vitals", "--column", "mrn")
    assert r.exit_code == 2 and "--ids-file" in r.output
    r = cli(ds, "dataset", "erase", "vitals", "--column", "age", "--id", "40")
    assert r.exit_code == 1 and "role id or pii" in r.output
    r = cli(ds, "dataset", "retention", "vitals", "--days", "3", "--keep")
    assert r.exit_code == 2 and "either --days N or --keep" in r.output
    (tmp_path / "bad.yaml").write_text("- just a list\n")
    r = cli(ds, "dataset", "contract", "set", "vitals", str(tmp_path / "bad.yaml"))
    assert r.exit_code == 1 and "columns" in r.output
    r = cli(ds, "dataset", "quality", "vitals@9")
    assert r.exit_code == 1 and "no version 9" in r.output

    # Only data scientists settle proposals.
    reader = token_for("business")
    r = cli(reader, "dataset", "classify", "vitals", "--accept", "email")
    assert r.exit_code == 1 and "data-scientist" in r.output


def test_an_admin_adds_a_user_to_a_team_from_the_command_line(
    cli: Any, admin_token: str, token_for: Any
) -> None:
    assert cli(admin_token, "team", "create", "icu").exit_code == 0
    assert cli(admin_token, "user", "create", "ben", "--role", "data-scientist").exit_code == 0
    r = cli(admin_token, "team", "add-member", "icu", "ben")
    assert r.exit_code == 0, r.output
    assert "ben is now a member of team icu" in r.output
    users = json.loads(cli(admin_token, "user", "list", "--json").output)
    assert [u["teams"] for u in users if u["name"] == "ben"] == [["icu"]]

    r = cli(admin_token, "team", "add-member", "nowhere", "ben")
    assert r.exit_code == 1 and "nowhere" in r.output
    r = cli(token_for("data-scientist"), "team", "add-member", "icu", "ben")
    assert r.exit_code == 1  # only an admin adds members
