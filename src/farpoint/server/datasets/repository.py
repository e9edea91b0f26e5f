"""All SQL for datasets and their versions."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from farpoint.server.datasets.tables import (
    Dataset,
    DatasetContract,
    DatasetErasure,
    DatasetVersion,
)


def dataset_by_name(s: Session, name: str) -> Dataset | None:
    return s.scalars(select(Dataset).where(Dataset.name == name)).one_or_none()


def list_datasets(s: Session, after_id: int, limit: int) -> Sequence[Dataset]:
    q = select(Dataset).where(Dataset.id > after_id).order_by(Dataset.id).limit(limit)
    return s.scalars(q).all()


def latest_version_number(s: Session, dataset_id: int) -> int:
    q = select(func.max(DatasetVersion.version)).where(DatasetVersion.dataset_id == dataset_id)
    return s.scalar(q) or 0


def version(s: Session, dataset_id: int, number: int) -> DatasetVersion | None:
    q = select(DatasetVersion).where(
        DatasetVersion.dataset_id == dataset_id, DatasetVersion.version == number
    )
    return s.scalars(q).one_or_none()


def versions(s: Session, dataset_id: int, after_id: int, limit: int) -> Sequence[DatasetVersion]:
    q = (
        select(DatasetVersion)
        .where(DatasetVersion.dataset_id == dataset_id, DatasetVersion.id > after_id)
        .order_by(DatasetVersion.id)
        .limit(limit)
    )
    return s.scalars(q).all()


def version_by_id(s: Session, version_id: int) -> DatasetVersion | None:
    return s.get(DatasetVersion, version_id)


def dataset_by_id(s: Session, dataset_id: int) -> Dataset | None:
    return s.get(Dataset, dataset_id)


def latest_contract(s: Session, dataset_id: int) -> DatasetContract | None:
    q = (
        select(DatasetContract)
        .where(DatasetContract.dataset_id == dataset_id)
        .order_by(DatasetContract.version.desc())
        .limit(1)
    )
    return s.scalars(q).first()


def contract(s: Session, dataset_id: int, number: int) -> DatasetContract | None:
    q = select(DatasetContract).where(
        DatasetContract.dataset_id == dataset_id, DatasetContract.version == number
    )
    return s.scalars(q).one_or_none()


def all_versions(s: Session, dataset_id: int) -> Sequence[DatasetVersion]:
    q = (
        select(DatasetVersion)
        .where(DatasetVersion.dataset_id == dataset_id)
        .order_by(DatasetVersion.version)
    )
    return s.scalars(q).all()


def children(s: Session, version_id: int) -> Sequence[DatasetVersion]:
    q = (
        select(DatasetVersion)
        .where(DatasetVersion.parent_id == version_id)
        .order_by(DatasetVersion.id)
    )
    return s.scalars(q).all()


def expired(s: Session, now: datetime) -> Sequence[DatasetVersion]:
    """Versions whose rows are past their expiry and still stored."""
    q = (
        select(DatasetVersion)
        .where(
            DatasetVersion.expires_at.is_not(None),
            DatasetVersion.expires_at <= now,
            DatasetVersion.blob_digest.is_not(None),
        )
        .order_by(DatasetVersion.id)
    )
    return s.scalars(q).all()


def blob_users(s: Session, blob_digest: str) -> int:
    """How many versions store their rows in this blob (identical rows share one)."""
    q = (
        select(func.count())
        .select_from(DatasetVersion)
        .where(DatasetVersion.blob_digest == blob_digest)
    )
    return int(s.scalar(q) or 0)


def erasures(s: Session, dataset_id: int) -> Sequence[DatasetErasure]:
    q = (
        select(DatasetErasure)
        .where(DatasetErasure.dataset_id == dataset_id)
        .order_by(DatasetErasure.id)
    )
    return s.scalars(q).all()
