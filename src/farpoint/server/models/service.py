"""Training runs and model versions: record what was trained, register what may be deployed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from farpoint.core.errors import Conflict, NotFound, ValidationFailed
from farpoint.server.blobs.store import BlobStore
from farpoint.server.datasets import service as datasets
from farpoint.server.models import repository as repo
from farpoint.server.models.tables import Model, ModelVersion, TrainingRun
from farpoint.server.refs import parse_reference
from farpoint.wire.common import ColumnRole
from farpoint.wire.models import ModelOut, ModelVersionMeta, ModelVersionOut, RunCreate, RunOut

# Golden outputs recomputed on the server must match the client's within this tolerance.
GOLDEN_TOLERANCE = 1e-5


def run_out(r: TrainingRun) -> RunOut:
    return RunOut(
        id=r.id,
        name=r.name,
        params=r.params,
        metrics=r.metrics,
        code=r.code,
        environment=r.environment,
        datasets=r.datasets,
        created_by=r.created_by,
        created_at=r.created_at,
    )


def create_run(s: Session, body: RunCreate, actor: str) -> RunOut:
    refs = []
    for ref in body.datasets:
        dataset, v = datasets.resolve(s, ref)
        refs.append(f"{dataset.name}@{v.version}")
    run = TrainingRun(
        name=body.name,
        params=body.params,
        metrics=body.metrics,
        code=body.code.model_dump(),
        environment=body.environment,
        datasets=refs,
        created_by=actor,
    )
    s.add(run)
    s.flush()
    return run_out(run)


def version_out(s: Session, model: Model, v: ModelVersion) -> ModelVersionOut:
    run = repo.run_by_id(s, v.run_id)
    return ModelVersionOut(
        model=model.name,
        version=v.version,
        ref=f"{model.name}@{v.version}",
        digest=v.digest,
        size_bytes=v.size_bytes,
        framework=v.framework,
        flavor=v.flavor,
        signature=v.signature,
        label_column=v.label_column,
        classes=v.classes,
        golden=v.golden,
        parity=v.parity,
        run_id=v.run_id,
        datasets=run.datasets if run else [],
        data_policy=v.data_policy,
        status=v.status,
        created_by=v.created_by,
        created_at=v.created_at,
    )


def model_out(s: Session, m: Model) -> ModelOut:
    return ModelOut(
        name=m.name, latest_version=repo.latest_version_number(s, m.id), created_at=m.created_at
    )


def resolve(s: Session, ref: str) -> tuple[Model, ModelVersion]:
    name, number = parse_reference(ref, "model")
    model = repo.model_by_name(s, name)
    if model is None:
        raise NotFound(f"model {name!r} does not exist")
    number = number or repo.latest_version_number(s, model.id)
    v = repo.version(s, model.id, number)
    if v is None:
        raise NotFound(f"model {name!r} has no version {number}")
    return model, v


def _check_training_data(
    s: Session, run: TrainingRun, input_names: list[str], rules: dict[str, Any]
) -> None:
    """Refuse a model that reads a PII, identifier, label or (unless the policy allows it)
    protected column of the data it was trained on, a column whose proposed classification
    nobody reviewed, or data whose quality report failed a check the policy blocks on."""
    allowed_protected = set(rules.get("allow_protected_features", []))
    for ref in run.datasets:
        _, v = datasets.resolve(s, ref)
        for name in input_names:
            role = v.roles.get(name)
            if role == ColumnRole.PROTECTED and name in allowed_protected:
                continue
            if role in (ColumnRole.PII, ColumnRole.ID, ColumnRole.PROTECTED, ColumnRole.LABEL):
                hint = (
                    " (a policy's data.allow_protected_features can allow it)"
                    if role == ColumnRole.PROTECTED
                    else ""
                )
                raise ValidationFailed(
                    f"the model reads column {name!r}, classified as {role} in {ref}; "
                    f"{role} columns may not be model inputs{hint}",
                    column=name,
                    role=role,
                )
            finding = (v.classification or {}).get(name)
            if finding and finding.get("status") == "proposed":
                raise ValidationFailed(
                    f"the model reads column {name!r}, proposed as {finding.get('role')} "
                    f"({finding.get('kind')}) in {ref} and not reviewed yet: accept or reject "
                    f"the proposal first (farpoint dataset classify {ref})",
                    column=name,
                )
        blocking = _blocking_checks(v.quality, rules)
        if blocking:
            names = ", ".join(
                f"{c['check']}{'[' + c['column'] + ']' if c.get('column') else ''}"
                for c in blocking
            )
            raise ValidationFailed(
                f"the training data {ref} failed quality checks the policy blocks on "
                f"({rules.get('block_on')} or worse): {names}; fix the data, or list the "
                "checks under the policy's data.allow_checks",
                dataset=ref,
                checks=[c["check"] for c in blocking],
            )


_SEVERITY_RANK = {"info": 0, "warning": 1, "error": 2}


def _blocking_checks(quality: dict[str, Any] | None, rules: dict[str, Any]) -> list[Any]:
    block_on = rules.get("block_on", "error")
    if not quality or block_on == "none":
        return []
    floor = _SEVERITY_RANK[block_on]
    allowed = set(rules.get("allow_checks", []))
    return [
        c
        for c in quality.get("checks", [])
        if not c.get("passed")
        and _SEVERITY_RANK.get(c.get("severity", "info"), 0) >= floor
        and c.get("check") not in allowed
    ]


def _data_rules(s: Session, meta: ModelVersionMeta) -> tuple[dict[str, Any], str | None]:
    """The data rules that judge the training data, and the policy they came from."""
    from farpoint.ml.policy import data_rules
    from farpoint.server.evaluations import service as evaluations

    if meta.policy is None:
        return data_rules(None), None
    policy = evaluations.resolve_policy(s, meta.policy)
    return data_rules(policy.spec), f"{policy.name}@{policy.version}"


def register_version(
    s: Session,
    blobs: BlobStore,
    *,
    name: str,
    onnx_file: Path,
    meta: ModelVersionMeta,
    actor: str,
) -> ModelVersionOut:
    """Check the ONNX file against its declared signature and golden vectors, then record it."""
    from farpoint.server.models.onnx_check import check_onnx

    run = repo.run_by_id(s, meta.run_id)
    if run is None:
        raise NotFound(f"training run {meta.run_id} does not exist; record the run first")
    rules, data_policy = _data_rules(s, meta)
    _check_training_data(s, run, [i.name for i in meta.signature.inputs], rules)
    data = onnx_file.read_bytes()
    check_onnx(data, meta, GOLDEN_TOLERANCE)

    model = repo.model_by_name(s, name)
    if model is None:
        model = Model(name=name)
        s.add(model)
        s.flush()
    digest = blobs.put_bytes(data)
    v = ModelVersion(
        model_id=model.id,
        version=repo.latest_version_number(s, model.id) + 1,
        digest=digest,
        size_bytes=len(data),
        framework=meta.framework,
        flavor=meta.flavor,
        signature=meta.signature.model_dump(mode="json"),
        label_column=meta.label_column,
        classes=list(meta.classes),
        golden=meta.golden.model_dump(mode="json"),
        parity=meta.parity,
        run_id=run.id,
        status="registered",
        data_policy=data_policy,
        created_by=actor,
    )
    s.add(v)
    try:
        s.flush()
    except IntegrityError as exc:
        raise Conflict(
            f"another version of {name!r} was registered at the same time; retry"
        ) from exc
    return version_out(s, model, v)


def set_status(v: ModelVersion, status: str) -> None:
    """Move forward only: registered → evaluated → approved → released → retired."""
    order = ["registered", "evaluated", "approved", "released", "retired"]
    if order.index(status) > order.index(v.status):
        v.status = status


def signature_dict(v: ModelVersion) -> dict[str, Any]:
    return dict(v.signature)
