"""All SQL for users' signing keys."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from farpoint.server.keys.tables import SigningKey


def by_key_id(s: Session, key_id: str) -> SigningKey | None:
    return s.scalars(select(SigningKey).where(SigningKey.key_id == key_id)).one_or_none()


def list_keys(
    s: Session, after_id: int, limit: int, user_id: int | None = None
) -> Sequence[SigningKey]:
    q = select(SigningKey).where(SigningKey.id > after_id)
    if user_id is not None:
        q = q.where(SigningKey.user_id == user_id)
    return s.scalars(q.order_by(SigningKey.id).limit(limit)).all()


def active_keys_of(s: Session, user_id: int) -> Sequence[SigningKey]:
    q = select(SigningKey).where(SigningKey.user_id == user_id, SigningKey.revoked_at.is_(None))
    return s.scalars(q.order_by(SigningKey.id)).all()
