"""All SQL for attestations, and the digest lookups that tell whether an artifact is known."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from farpoint.server.attestations.tables import Attestation, AttestationSubject
from farpoint.server.datasets.tables import DatasetVersion
from farpoint.server.models.tables import ModelVersion
from farpoint.server.releases.tables import Release


def is_known_digest(s: Session, digest: str) -> bool:
    """True when a dataset version, a model version or a release manifest has this digest."""
    for q in (
        select(exists().where(DatasetVersion.digest == digest)),
        select(exists().where(ModelVersion.digest == digest)),
        select(exists().where(Release.manifest_digest == digest)),
    ):
        if s.scalar(q):
            return True
    return False


def add(s: Session, attestation: Attestation, subjects: list[tuple[str, str]]) -> None:
    s.add(attestation)
    s.flush()
    for name, digest in subjects:
        s.add(AttestationSubject(attestation_id=attestation.id, name=name, digest=digest))
    s.flush()


def by_id(s: Session, attestation_id: int) -> Attestation | None:
    return s.get(Attestation, attestation_id)


def subjects_of(s: Session, attestation_id: int) -> Sequence[AttestationSubject]:
    q = (
        select(AttestationSubject)
        .where(AttestationSubject.attestation_id == attestation_id)
        .order_by(AttestationSubject.id)
    )
    return s.scalars(q).all()


def search(
    s: Session,
    after_id: int,
    limit: int,
    subject: str | None = None,
    predicate_type: str | None = None,
) -> Sequence[Attestation]:
    q = select(Attestation).where(Attestation.id > after_id)
    if subject is not None:
        about = select(AttestationSubject.attestation_id).where(
            AttestationSubject.digest == subject
        )
        q = q.where(Attestation.id.in_(about))
    if predicate_type is not None:
        q = q.where(Attestation.predicate_type == predicate_type)
    return s.scalars(q.order_by(Attestation.id).limit(limit)).all()
