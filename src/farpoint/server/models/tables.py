from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from farpoint.server.db import Base, utcnow


class TrainingRun(Base):
    __tablename__ = "training_runs"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    params: Mapped[dict[str, Any]]
    metrics: Mapped[dict[str, Any]]
    code: Mapped[dict[str, Any]]
    environment: Mapped[dict[str, Any]]
    datasets: Mapped[list[Any]]
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Model(Base):
    __tablename__ = "models"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ModelVersion(Base):
    __tablename__ = "model_versions"
    __table_args__ = (UniqueConstraint("model_id", "version"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id"), index=True)
    version: Mapped[int]
    digest: Mapped[str] = mapped_column(String(71))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    framework: Mapped[str] = mapped_column(String(64))
    flavor: Mapped[str] = mapped_column(String(200))
    signature: Mapped[dict[str, Any]]
    label_column: Mapped[str] = mapped_column(String(255))
    classes: Mapped[list[Any]]
    golden: Mapped[dict[str, Any]]
    parity: Mapped[dict[str, Any]]
    run_id: Mapped[int] = mapped_column(ForeignKey("training_runs.id"))
    status: Mapped[str] = mapped_column(String(16))
    data_policy: Mapped[str | None] = mapped_column(String(200))
    """`NAME@VERSION` of the policy whose data rules judged the training data; None: the
    defaults (a failed error-severity check blocks, no protected attribute as input)."""
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
