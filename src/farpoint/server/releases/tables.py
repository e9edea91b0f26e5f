from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from farpoint.server.db import Base, utcnow


class Release(Base):
    __tablename__ = "releases"
    id: Mapped[int] = mapped_column(primary_key=True)
    model_version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"), index=True)
    model: Mapped[str] = mapped_column(String(64), index=True)
    """The model's name, denormalized: desired state is per model name."""
    evaluation_id: Mapped[int] = mapped_column(ForeignKey("evaluations.id"))
    model_digest: Mapped[str] = mapped_column(String(71))
    manifest_digest: Mapped[str] = mapped_column(String(71))
    manifest: Mapped[dict[str, Any]]
    envelope: Mapped[dict[str, Any]]
    key_id: Mapped[str] = mapped_column(String(71))
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
