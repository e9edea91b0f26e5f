"""All SQL for datasets and their versions."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from farpoint.server.datasets.tables import Dataset, DatasetVersion


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
