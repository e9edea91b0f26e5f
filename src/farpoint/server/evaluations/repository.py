"""All SQL for policies and evaluations."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from farpoint.server.evaluations.tables import Evaluation, Policy


def latest_policy_version(s: Session, name: str) -> int:
    return s.scalar(select(func.max(Policy.version)).where(Policy.name == name)) or 0


def policy(s: Session, name: str, version: int) -> Policy | None:
    q = select(Policy).where(Policy.name == name, Policy.version == version)
    return s.scalars(q).one_or_none()


def policy_by_id(s: Session, policy_id: int) -> Policy | None:
    return s.get(Policy, policy_id)


def latest_policies(s: Session) -> Sequence[Policy]:
    newest = (
        select(Policy.name, func.max(Policy.version).label("v")).group_by(Policy.name).subquery()
    )
    q = (
        select(Policy)
        .join(newest, (Policy.name == newest.c.name) & (Policy.version == newest.c.v))
        .order_by(Policy.name)
    )
    return s.scalars(q).all()


def evaluation_by_id(s: Session, evaluation_id: int) -> Evaluation | None:
    return s.get(Evaluation, evaluation_id)


def list_evaluations(
    s: Session, after_id: int, limit: int, model_version_id: int | None = None
) -> Sequence[Evaluation]:
    q = select(Evaluation).where(Evaluation.id > after_id)
    if model_version_id is not None:
        q = q.where(Evaluation.model_version_id == model_version_id)
    return s.scalars(q.order_by(Evaluation.id).limit(limit)).all()


def latest_passed(s: Session, model_version_id: int) -> Evaluation | None:
    q = (
        select(Evaluation)
        .where(Evaluation.model_version_id == model_version_id, Evaluation.passed.is_(True))
        .order_by(Evaluation.id.desc())
        .limit(1)
    )
    return s.scalars(q).first()


def evaluations_on(s: Session, dataset_version_ids: list[int]) -> Sequence[Evaluation]:
    if not dataset_version_ids:
        return []
    q = (
        select(Evaluation)
        .where(Evaluation.dataset_version_id.in_(dataset_version_ids))
        .order_by(Evaluation.id)
    )
    return s.scalars(q).all()
