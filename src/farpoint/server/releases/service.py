"""Releases: turn an evaluated model version into a signed, deployable package."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from farpoint.core import dsse, keys
from farpoint.core.errors import NotFound, ValidationFailed
from farpoint.server.blobs.store import BlobStore
from farpoint.server.evaluations import repository as evaluation_repo
from farpoint.server.models import repository as model_repo
from farpoint.server.models import service as models
from farpoint.server.releases.manifest import build_manifest, latency_budget_ms, manifest_bytes
from farpoint.server.releases.tables import Release
from farpoint.wire.releases import ReleaseCreate, ReleaseOut


def release_out(s: Session, r: Release) -> ReleaseOut:
    mv = model_repo.version_by_id(s, r.model_version_id)
    assert mv is not None
    return ReleaseOut(
        id=r.id,
        model=r.model,
        model_version=mv.version,
        model_ref=f"{r.model}@{mv.version}",
        model_digest=r.model_digest,
        manifest_digest=r.manifest_digest,
        evaluation_id=r.evaluation_id,
        key_id=r.key_id,
        latency_budget_ms=latency_budget_ms(r.manifest),
        manifest=r.manifest,
        envelope=r.envelope,
        created_by=r.created_by,
        created_at=r.created_at,
    )


def create_release(
    s: Session,
    blobs: BlobStore,
    signing_key: keys.PrivateKey,
    body: ReleaseCreate,
    actor: str,
    now: datetime,
) -> ReleaseOut:
    """Refuses a model version without a passed evaluation (the seam for the trust policy)."""
    model, mv = models.resolve(s, body.model)
    if body.evaluation_id is not None:
        evaluation = evaluation_repo.evaluation_by_id(s, body.evaluation_id)
        if evaluation is None or evaluation.model_version_id != mv.id:
            raise NotFound(
                f"evaluation {body.evaluation_id} does not exist for {model.name}@{mv.version}"
            )
        if not evaluation.passed:
            failed = [g["name"] for g in evaluation.gates if not g["passed"]]
            raise ValidationFailed(
                f"evaluation {evaluation.id} did not pass (failed gates: {failed}); "
                "a release needs a passed evaluation"
            )
    else:
        evaluation = evaluation_repo.latest_passed(s, mv.id)
        if evaluation is None:
            raise ValidationFailed(
                f"{model.name}@{mv.version} has no passed evaluation; run `farpoint evaluate` first"
            )
    release = Release(
        model_version_id=mv.id,
        model=model.name,
        evaluation_id=evaluation.id,
        model_digest=mv.digest,
        manifest_digest="",
        manifest={},
        envelope={},
        key_id=keys.key_id(signing_key.public_key()),
        created_by=actor,
        created_at=now,
    )
    s.add(release)
    s.flush()
    manifest = build_manifest(
        release_id=release.id,
        model=model.name,
        model_version=mv.version,
        model_digest=mv.digest,
        model_size=mv.size_bytes,
        signature=mv.signature,
        label_column=mv.label_column,
        classes=mv.classes,
        golden=mv.golden,
        evaluation_id=evaluation.id,
        author=mv.created_by,
        created_at=now,
        latency_budget_ms=body.latency_budget_ms,
    )
    payload = manifest_bytes(manifest)
    release.manifest = manifest
    release.manifest_digest = blobs.put_bytes(payload)
    release.envelope = dsse.sign_envelope(payload, dsse.MANIFEST_TYPE, signing_key)
    models.set_status(mv, "released")
    s.flush()
    return release_out(s, release)
