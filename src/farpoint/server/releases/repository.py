"""All SQL for releases."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from farpoint.server.releases.tables import Release


def release_by_id(s: Session, release_id: int) -> Release | None:
    return s.get(Release, release_id)


def list_releases(s: Session, after_id: int, limit: int) -> Sequence[Release]:
    q = select(Release).where(Release.id > after_id).order_by(Release.id).limit(limit)
    return s.scalars(q).all()


def releases_of(s: Session, model_version_ids: list[int]) -> Sequence[Release]:
    if not model_version_ids:
        return []
    q = select(Release).where(Release.model_version_id.in_(model_version_ids)).order_by(Release.id)
    return s.scalars(q).all()
