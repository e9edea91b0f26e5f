"""Datasets as governed inputs, through the SDK against the real app: one digest for the
same rows in any format, contracts and quality reports, classification review, team
access, pseudonymization, retention and erasure, lineage."""

from __future__ import annotations

import io
import json

import pytest

from farpoint.core.errors import FarpointError, Forbidden, NotFound, ValidationFailed
from farpoint.sdk import Client

vitals = pytest.importorskip("farpoint.examples.vitals")

DAY = 86_400.0


@pytest.fixture
def clock():
    now = [1_790_000_000.0]
    return now


@pytest.fixture
def app(settings, clock):  # an app whose clock the test moves
    from farpoint.server.app import create_app

    return create_app(settings, clock=lambda: clock[0])


def _client(api, token):
    return Client("http://testserver", token, transport=api._transport)


def _csv(frame) -> bytes:
    buf = io.BytesIO()
    frame.to_csv(buf, index=False)
    return buf.getvalue()


def _stored_blobs(app) -> set[str]:
    root = app.state.ctx.blobs.root / "sha256"
    return {p.name for p in root.rglob("*") if p.is_file()} if root.exists() else set()


def test_same_rows_give_one_digest_whatever_format_they_arrive_in(api, token_for):
    ds = _client(api, token_for("data-scientist"))
    frame = vitals.generate(n_rows=400, seed=5)
    as_csv = ds.upload_dataset("vitals", _csv(frame), roles=vitals.COLUMN_ROLES, filename="v.csv")
    as_frame = ds.upload_dataset("vitals", frame, roles=vitals.COLUMN_ROLES)
    pl = pytest.importorskip("polars")
    as_polars = ds.upload_dataset("vitals", pl.from_pandas(frame), roles=vitals.COLUMN_ROLES)
    assert as_csv.digest == as_frame.digest == as_polars.digest
    assert [c.dtype for c in as_csv.columns] == [c.dtype for c in as_frame.columns]
    assert as_csv.source_format == "csv" and as_frame.source_format == "parquet"
    changed = frame.copy()
    changed.loc[0, "heart_rate"] += 1
    assert ds.upload_dataset("vitals", changed, roles=vitals.COLUMN_ROLES).digest != as_csv.digest
    # The rows come back checked against that digest.
    back = ds.load_dataset("vitals@1")
    assert len(back) == 400 and list(back.columns) == list(frame.columns)


def test_rows_that_do_not_match_their_digest_are_refused(api, app, token_for):
    from sqlalchemy import update

    from farpoint.core.errors import SignatureError
    from farpoint.server.datasets.tables import DatasetVersion

    ds = _client(api, token_for("data-scientist"))
    frame = vitals.generate(n_rows=100, seed=2)
    v1 = ds.upload_dataset("vitals", frame, roles=vitals.COLUMN_ROLES)
    v2 = ds.upload_dataset("vitals", frame.head(99), roles=vitals.COLUMN_ROLES)
    db = app.state.ctx.db
    with db.session() as s:  # the record of v1 now names v2's file: wrong rows, sound file
        blob2 = s.get(DatasetVersion, 2).blob_digest
        s.execute(update(DatasetVersion).where(DatasetVersion.id == 1).values(blob_digest=blob2))
    with pytest.raises(SignatureError, match=v1.digest):
        ds.load_dataset("vitals@1")
    assert len(ds.load_dataset("vitals@2")) == 99
    # A version registered before content digests existed carries its file's digest.
    with db.session() as s:
        s.execute(update(DatasetVersion).where(DatasetVersion.id == 2).values(digest=blob2))
    assert len(ds.load_dataset("vitals@2")) == 99 and v2.digest != blob2


def test_bad_upload_names_the_problem_and_stores_nothing(api, app, token_for):
    ds = _client(api, token_for("data-scientist"))
    before = _stored_blobs(app)
    ragged = b"a,b,c\n1,2,3\n4,5\n"
    with pytest.raises(ValidationFailed, match="line 3"):
        ds.upload_dataset("broken", ragged, roles={}, filename="broken.csv")
    mixed = b"qty\n" + b"\n".join(str(i).encode() for i in range(50)) + b"\nlots\n"
    with pytest.raises(ValidationFailed, match="qty"):
        ds.upload_dataset("broken", mixed, roles={}, filename="broken.csv")
    with pytest.raises(NotFound):
        ds.get_dataset_version("broken@1")
    assert _stored_blobs(app) == before
    assert list((app.state.ctx.settings.home / "tmp").iterdir()) == []
    # The mixed column is fine once declared as text.
    ok = ds.upload_dataset("broken", mixed, roles={}, filename="ok.csv", types={"qty": "string"})
    assert ok.columns[0].dtype == "string"


def test_contract_is_inferred_then_new_versions_are_validated_and_compared(api, token_for):
    ds = _client(api, token_for("data-scientist"))
    frame = vitals.generate(n_rows=600, seed=7)
    v1 = ds.upload_dataset("vitals", frame, roles=vitals.COLUMN_ROLES)
    assert v1.quality is not None and v1.quality.passed, ds.get_quality("vitals@1").report
    contract = ds.get_contract("vitals")
    assert contract.version == 1 and contract.source == "inferred from vitals@1"
    assert v1.contract_version == 1
    # PII values never enter the contract, which every role can read.
    assert str(frame.loc[0, "patient_name"]) not in contract.yaml
    assert str(frame.loc[0, "mrn"]) not in contract.yaml

    bad = frame.copy()
    bad.loc[:9, "heart_rate"] = 900  # far outside the inferred range
    bad.loc[10:14, "ward"] = "mortuary"  # a category the contract does not allow
    v2 = ds.upload_dataset("vitals", bad, roles=vitals.COLUMN_ROLES)
    assert v2.quality is not None and not v2.quality.passed
    quality = ds.get_quality("vitals@2")
    assert quality.validation is not None and not quality.validation["passed"]
    failed = {(f["column"], f["failure_count"]) for f in quality.validation["failures"]}
    assert ("heart_rate", 10) in failed and ("ward", 5) in failed
    rows = [e["row"] for f in quality.validation["failures"] for e in f["examples"]]
    assert 0 in rows

    drift = ds.compare_dataset_versions("vitals", 1, 2)
    assert drift.schema_changes == []
    assert set(drift.columns) >= {"heart_rate", "ward"}

    # A new contract version from edited YAML; a later version is judged against it.
    edited = contract.yaml.replace("mortuary", "")  # no-op edit keeps it valid
    assert ds.set_contract("vitals", edited).version == 2
    with pytest.raises(ValidationFailed, match="line"):
        ds.set_contract("vitals", "columns:\n  heart_rate: {type: int64, min: high}\n")
    extra = frame.assign(bed=1)
    v3 = ds.upload_dataset("vitals", extra, roles=vitals.COLUMN_ROLES)
    assert v3.contract_version == 2
    assert v1.schema_changes is None and v2.schema_changes == []
    assert v3.schema_changes == [{"change": "added", "column": "bed", "old": None, "new": "int64"}]
    changes = ds.compare_dataset_versions("vitals", 1, 3).schema_changes
    assert any(c.get("column") == "bed" for c in changes)


def test_pii_is_proposed_redacted_and_reviewed(api, token_for):
    ds = _client(api, token_for("data-scientist"))
    frame = vitals.generate(n_rows=300, seed=9)
    frame["contact"] = [f"patient{i}@example.org" for i in range(len(frame))]
    roles = {k: v for k, v in vitals.COLUMN_ROLES.items() if k != "patient_name"}
    v = ds.upload_dataset("vitals", frame, roles=roles)
    assert {"contact", "patient_name"} <= set(v.pending_classification)
    found = {f.column: f for f in ds.get_classification("vitals@1").findings}
    assert found["contact"].kind == "email" and found["contact"].role == "pii"
    # Metadata every role can read holds no value of a column proposed as PII.
    profile = json.dumps(ds.get_profile("vitals@1"))
    assert "@example.org" not in profile and str(frame.loc[0, "patient_name"]) not in profile
    reviewed = ds.review_classification("vitals@1", accept=["contact"], reject=["patient_name"])
    assert reviewed.roles["contact"] == "pii" and reviewed.roles["patient_name"] == "feature"
    assert ds.get_dataset_version("vitals@1").pending_classification == []
    # A rejected proposal gives the column its statistics back; an accepted one keeps none.
    columns = ds.get_profile("vitals@1")["columns"]
    assert not columns["patient_name"].get("redacted")
    assert "Novak" in json.dumps(columns["patient_name"])  # among its top values
    assert columns["contact"]["redacted"] and "@example.org" not in json.dumps(columns)


def test_rows_are_for_the_owning_team(api, token_for, admin_token):
    admin = _client(api, admin_token)
    admin.create_team("icu")
    member = admin.create_user("ana", ["data-scientist"], teams=["icu"])
    outsider_token = token_for("data-scientist")
    ana = _client(api, admin.create_token(member.name).token)
    ana.upload_dataset("icu-vitals", vitals.generate(n_rows=200, seed=1), roles={}, team="icu")
    outsider = _client(api, outsider_token)
    assert outsider.get_dataset("icu-vitals").team == "icu"  # metadata: everyone
    assert outsider.dataset_lineage("icu-vitals@1").ref == "icu-vitals@1"
    with pytest.raises(Forbidden, match="team 'icu'"):
        outsider.download_dataset("icu-vitals@1")
    with pytest.raises(Forbidden):
        outsider.upload_dataset("icu-vitals", vitals.generate(n_rows=50, seed=2), roles={})
    with pytest.raises(Forbidden):
        admin.download_dataset("icu-vitals@1")  # the admin role alone reads no rows
    admin.add_team_member("icu", outsider.me().user)
    assert outsider.download_dataset("icu-vitals@1")[:4] == b"PAR1"
    # Every read of rows is on the audit log, by whom; refused reads read nothing.
    reads = [e for e in admin.audit_entries() if e.action == "dataset.version.read"]
    assert [(e.actor, e.subject) for e in reads] == [(outsider.me().user, "icu-vitals@1")]


def test_pseudonymized_version_keeps_joins_and_lineage(api, token_for):
    ds = _client(api, token_for("data-scientist"))
    frame = vitals.generate(n_rows=300, seed=3)
    ds.upload_dataset("vitals", frame, roles=vitals.COLUMN_ROLES)
    v2 = ds.pseudonymize("vitals@1", ["mrn", "patient_name"])
    assert v2.ref == "vitals@2" and v2.parent == "vitals@1"
    assert v2.transform and v2.transform["kind"] == "pseudonymize"
    assert v2.roles["mrn"] == "id" and v2.roles["patient_name"] == "id"
    rows = ds.load_dataset("vitals@2")
    assert not set(rows["mrn"].astype(str)) & set(frame["mrn"].astype(str))
    assert rows["mrn"].nunique() == frame["mrn"].nunique()  # same value, same pseudonym
    assert (rows["heart_rate"] == frame["heart_rate"]).all()
    lineage = ds.dataset_lineage("vitals@2")
    assert [a["ref"] for a in lineage.ancestors] == ["vitals@1"]
    assert ds.dataset_lineage("vitals@1").descendants == ["vitals@2"]
    with pytest.raises(ValidationFailed, match="deteriorated"):
        ds.pseudonymize("vitals@1", [vitals.LABEL])


def test_trace_walks_a_derived_version_back_to_its_upload(api, app, token_for):
    from farpoint.server.trace.service import dataset_link

    ds = _client(api, token_for("data-scientist"))
    ds.upload_dataset("vitals", vitals.generate(n_rows=100, seed=8), roles=vitals.COLUMN_ROLES)
    ds.pseudonymize("vitals@1", ["mrn"])
    with app.state.ctx.db.session() as s:
        link = dataset_link(s, "vitals@2")
    assert link.ref == "vitals@2" and "pseudonymized mrn" in link.summary
    assert [c.ref for c in link.children] == ["vitals@1"]
    assert "uploaded" in link.children[0].summary and link.children[0].children == []


def test_retention_purges_rows_and_keeps_the_record(api, token_for, clock):
    ds = _client(api, token_for("data-scientist"))
    ds.upload_dataset("vitals", vitals.generate(n_rows=200, seed=4), roles=vitals.COLUMN_ROLES)
    assert ds.set_retention("vitals", 2).retention_days == 2
    clock[0] += 1 * DAY
    assert ds.sweep_retention().purged == []
    clock[0] += 1.5 * DAY
    assert ds.sweep_retention().purged == ["vitals@1"]
    v = ds.get_dataset_version("vitals@1")
    assert not v.rows_available and v.purge_reason == "retention"
    assert v.digest.startswith("sha256:") and ds.get_profile("vitals@1")["columns"]
    with pytest.raises(FarpointError, match="purged") as err:
        ds.download_dataset("vitals@1")
    assert err.value.status == 410


def test_the_server_timer_purges_expired_rows_on_its_own(api, app, token_for, clock):
    from farpoint.server.datasets.retention import ACTOR, sweep_once

    ds = _client(api, token_for("data-scientist"))
    ds.upload_dataset("vitals", vitals.generate(n_rows=50, seed=4), roles=vitals.COLUMN_ROLES)
    ds.set_retention("vitals", 1)
    assert sweep_once(app.state.ctx) == []
    clock[0] += 1.5 * DAY
    assert sweep_once(app.state.ctx) == ["vitals@1"]
    assert not ds.get_dataset_version("vitals@1").rows_available
    with app.state.ctx.db.session() as s:
        from sqlalchemy import select

        from farpoint.server.audit.tables import AuditEvent

        actors = s.scalars(
            select(AuditEvent.actor).where(AuditEvent.action == "dataset.version.expire")
        ).all()
    assert actors == [ACTOR]


def test_erasure_purges_every_version_and_lists_what_used_the_rows(api, token_for):
    ds = _client(api, token_for("data-scientist"))
    frame = vitals.generate(n_rows=300, seed=6)
    subject = str(frame.loc[17, "mrn"])
    ds.upload_dataset("vitals", frame, roles=vitals.COLUMN_ROLES)
    ds.pseudonymize("vitals@1", ["mrn"])
    run = ds.create_run(name="baseline", datasets=["vitals@1"])
    result = ds.erase_subjects("vitals", "mrn", [subject])
    assert {r["ref"]: r["rows_removed"] for r in result.versions} == {"vitals@1": 1, "vitals@2": 1}
    assert result.rows_removed == 2 and result.new_version == "vitals@3"
    assert result.affected["runs"] == [run.id]
    assert subject not in json.dumps(result.model_dump(mode="json"))
    assert subject not in json.dumps(
        [e.model_dump(mode="json") for e in ds.list_erasures("vitals")]
    )
    v1 = ds.get_dataset_version("vitals@1")
    assert v1.erased_rows == 1 and v1.rows_available
    assert subject not in set(ds.load_dataset("vitals@1")["mrn"].astype(str))
    assert len(ds.load_dataset("vitals@2")) == 299
    v3 = ds.get_dataset_version("vitals@3")
    assert v3.parent == "vitals@2" and v3.row_count == 299
    with pytest.raises(ValidationFailed, match="identifier column"):
        ds.erase_subjects("vitals", "heart_rate", ["80"])


@pytest.fixture(scope="module")
def trained():
    frame = vitals.generate(n_rows=1200, seed=21)
    return frame, vitals.train_model(frame, seed=21)


def test_model_registration_enforces_the_data_rules(api, token_for, trained):
    ds = _client(api, token_for("data-scientist"))
    mlops = _client(api, token_for("mlops-engineer"))
    frame, model = trained

    def register(dataset, roles, policy=None, data=frame):
        ds.upload_dataset(dataset, data, roles=roles)
        run = ds.create_run(name=dataset, datasets=[f"{dataset}@1"])
        return ds.register_sklearn_model(
            "deterioration", model, frame.head(50), vitals.FEATURES,
            run_id=run.id, label_column=vitals.LABEL, policy=policy,
        )  # fmt: skip

    # `age` classified protected: no model may read it, unless a policy allows it.
    protected_age = {**vitals.COLUMN_ROLES, "age": "protected"}
    with pytest.raises(ValidationFailed, match="'age', classified as protected"):
        register("vitals-a", protected_age)
    from farpoint.ml.policy import DEFAULT_POLICY_YAML

    mlops.create_policy(
        "lenient", DEFAULT_POLICY_YAML + "data:\n  allow_protected_features: [age]\n"
    )
    allowed = register("vitals-b", protected_age, policy="lenient@1")
    assert allowed.ref == "deterioration@1" and allowed.data_policy == "lenient@1"

    # PII as input is refused whatever the policy.
    with pytest.raises(ValidationFailed, match="classified as pii"):
        register("vitals-c", {**vitals.COLUMN_ROLES, "age": "pii"}, policy="lenient@1")

    # A feature that copies the label fails the quality report with an error: it blocks.
    leaky = frame.assign(outcome_note=frame[vitals.LABEL])
    with pytest.raises(ValidationFailed, match="label_leakage"):
        register("vitals-d", vitals.COLUMN_ROLES, data=leaky)
    mlops.create_policy("leak-ok", DEFAULT_POLICY_YAML + "data:\n  allow_checks: [label_leakage]\n")
    assert register("vitals-e", vitals.COLUMN_ROLES, policy="leak-ok@1", data=leaky).version == 2
    assert ds.get_model_version("deterioration@2").data_policy == "leak-ok@1"
    assert register("vitals-f", vitals.COLUMN_ROLES).data_policy is None  # the defaults
