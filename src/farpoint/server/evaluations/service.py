"""Policies and evaluations: compute a model's metrics on held-out data and judge its gates."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from farpoint.core.errors import NotFound, ValidationFailed
from farpoint.core.gates import check_gates, metric_key
from farpoint.server.blobs.store import BlobStore
from farpoint.server.datasets import repository as dataset_repo
from farpoint.server.datasets import service as datasets
from farpoint.server.evaluations import repository as repo
from farpoint.server.evaluations.tables import Evaluation, Policy
from farpoint.server.models import repository as model_repo
from farpoint.server.models import service as models
from farpoint.server.refs import parse_reference
from farpoint.wire.common import ColumnRole
from farpoint.wire.evaluations import EvaluationCreate, EvaluationOut, GateResult, PolicyOut


def policy_out(p: Policy) -> PolicyOut:
    return PolicyOut(
        name=p.name,
        version=p.version,
        ref=f"{p.name}@{p.version}",
        yaml=p.yaml,
        spec=p.spec,
        created_by=p.created_by,
        created_at=p.created_at,
    )


def create_policy(s: Session, name: str, text: str, actor: str) -> PolicyOut:
    from farpoint.ml.policy import parse_policy

    spec = parse_policy(text)
    p = Policy(
        name=name,
        version=repo.latest_policy_version(s, name) + 1,
        yaml=text,
        spec=spec,
        created_by=actor,
    )
    s.add(p)
    s.flush()
    return policy_out(p)


def resolve_policy(s: Session, ref: str) -> Policy:
    name, version = parse_reference(ref, "policy")
    version = version or repo.latest_policy_version(s, name)
    p = repo.policy(s, name, version)
    if p is None:
        raise NotFound(f"policy {ref!r} does not exist")
    return p


def evaluation_out(s: Session, e: Evaluation) -> EvaluationOut:
    mv = model_repo.version_by_id(s, e.model_version_id)
    dv = dataset_repo.version_by_id(s, e.dataset_version_id)
    p = repo.policy_by_id(s, e.policy_id)
    assert mv is not None and dv is not None and p is not None
    m = model_repo.model_by_id(s, mv.model_id)
    d = dataset_repo.dataset_by_id(s, dv.dataset_id)
    assert m is not None and d is not None
    return EvaluationOut(
        id=e.id,
        model=f"{m.name}@{mv.version}",
        dataset=f"{d.name}@{dv.version}",
        policy=f"{p.name}@{p.version}",
        metrics=e.metrics,
        group_metrics=e.group_metrics,
        gates=[GateResult.model_validate(g) for g in e.gates],
        passed=e.passed,
        created_by=e.created_by,
        created_at=e.created_at,
    )


def compute_metrics(
    onnx_bytes: bytes,
    frame: Any,
    signature: dict[str, Any],
    label: str,
    classes: list[Any],
    protected: list[str],
) -> tuple[dict[str, float], dict[str, dict[str, dict[str, float]]]]:
    """Run the model on the frame and compute quality and fairness metrics."""
    import numpy as np

    from farpoint.ml.metrics import (
        classification_metrics,
        demographic_parity_difference,
        group_metrics,
    )
    from farpoint.ml.scoring import predict

    if len(classes) != 2:
        raise ValidationFailed(
            f"evaluation supports binary classifiers today; this model has classes {classes}"
        )
    y_pred, probs = predict(onnx_bytes, frame, signature["inputs"])
    y_true = frame[label].to_numpy()
    positive = classes[1]
    y_true_bin = (y_true == positive).astype(int)
    y_pred_bin = (np.asarray(y_pred) == positive).astype(int)
    metrics = classification_metrics(y_true_bin, y_pred_bin, np.asarray(probs)[:, 1].tolist())
    groups: dict[str, dict[str, dict[str, float]]] = {}
    for column in protected:
        values = frame[column].astype(str).to_numpy()
        groups[column] = group_metrics(y_true_bin, y_pred_bin, values)
        key = metric_key("demographic_parity_difference", column)
        metrics[key] = demographic_parity_difference(y_pred_bin, values)
    return metrics, groups


def evaluate(s: Session, blobs: BlobStore, body: EvaluationCreate, actor: str) -> EvaluationOut:
    from farpoint.ml.tables import read_columns

    model, mv = models.resolve(s, body.model)
    dataset, dv = datasets.resolve(s, body.dataset)
    policy = resolve_policy(s, body.policy)
    run = model_repo.run_by_id(s, mv.run_id)
    ref = f"{dataset.name}@{dv.version}"
    if run is not None and ref in run.datasets:
        raise ValidationFailed(
            f"{ref} is one of the datasets {model.name}@{mv.version} was trained on; "
            "evaluate on held-out data"
        )
    blob = datasets.rows_blob(dataset, dv)
    for _ in blobs.iter_verified(blob):  # the stored file is what was registered
        pass
    needed = [i["name"] for i in mv.signature["inputs"]] + [mv.label_column]
    protected = [c for c, r in dv.roles.items() if r == ColumnRole.PROTECTED]
    frame, missing = read_columns(blobs.path(blob), needed + protected)
    missing = [c for c in missing if c in needed]
    if missing:
        raise ValidationFailed(f"{ref} lacks columns the model needs: {missing}")
    metrics, groups = compute_metrics(
        blobs.read_bytes(mv.digest), frame, mv.signature, mv.label_column, mv.classes, protected
    )
    gates = check_gates(policy.spec["gates"], metrics)
    passed = all(g["passed"] for g in gates)
    e = Evaluation(
        model_version_id=mv.id,
        dataset_version_id=dv.id,
        policy_id=policy.id,
        metrics=metrics,
        group_metrics=groups,
        gates=gates,
        passed=passed,
        created_by=actor,
    )
    s.add(e)
    if passed:
        models.set_status(mv, "evaluated")
    s.flush()
    return evaluation_out(s, e)
