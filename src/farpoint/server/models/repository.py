"""All SQL for training runs, models and model versions."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from farpoint.server.models.tables import Model, ModelVersion, TrainingRun


def run_by_id(s: Session, run_id: int) -> TrainingRun | None:
    return s.get(TrainingRun, run_id)


def list_runs(s: Session, after_id: int, limit: int) -> Sequence[TrainingRun]:
    q = select(TrainingRun).where(TrainingRun.id > after_id).order_by(TrainingRun.id).limit(limit)
    return s.scalars(q).all()


def model_by_name(s: Session, name: str) -> Model | None:
    return s.scalars(select(Model).where(Model.name == name)).one_or_none()


def model_by_id(s: Session, model_id: int) -> Model | None:
    return s.get(Model, model_id)


def list_models(s: Session, after_id: int, limit: int) -> Sequence[Model]:
    q = select(Model).where(Model.id > after_id).order_by(Model.id).limit(limit)
    return s.scalars(q).all()


def latest_version_number(s: Session, model_id: int) -> int:
    q = select(func.max(ModelVersion.version)).where(ModelVersion.model_id == model_id)
    return s.scalar(q) or 0


def version(s: Session, model_id: int, number: int) -> ModelVersion | None:
    q = select(ModelVersion).where(
        ModelVersion.model_id == model_id, ModelVersion.version == number
    )
    return s.scalars(q).one_or_none()


def version_by_id(s: Session, version_id: int) -> ModelVersion | None:
    return s.get(ModelVersion, version_id)


def versions(s: Session, model_id: int, after_id: int, limit: int) -> Sequence[ModelVersion]:
    q = (
        select(ModelVersion)
        .where(ModelVersion.model_id == model_id, ModelVersion.id > after_id)
        .order_by(ModelVersion.id)
        .limit(limit)
    )
    return s.scalars(q).all()


def runs_using(s: Session, dataset_refs: set[str]) -> list[TrainingRun]:
    """Training runs that read any of these dataset versions (`NAME@VERSION`).

    The run's datasets are a JSON list; scanning it in Python keeps one query for SQLite
    and PostgreSQL alike (runs are few next to rows)."""
    return [
        r
        for r in s.scalars(select(TrainingRun).order_by(TrainingRun.id))
        if set(r.datasets) & dataset_refs
    ]


def versions_of_runs(s: Session, run_ids: list[int]) -> Sequence[ModelVersion]:
    if not run_ids:
        return []
    q = select(ModelVersion).where(ModelVersion.run_id.in_(run_ids)).order_by(ModelVersion.id)
    return s.scalars(q).all()
