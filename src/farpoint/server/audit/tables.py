"""The audit chain, its signed checkpoints, and the row that serializes appends."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from farpoint.server.db import Base


class AuditEvent(Base):
    __tablename__ = "audit_events"
    id: Mapped[int] = mapped_column(primary_key=True)
    seq: Mapped[int] = mapped_column(unique=True)
    """1, 2, 3...; unique so two appends can never claim one position."""
    at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str] = mapped_column(String(300))
    digests: Mapped[dict[str, Any]]
    prev_hash: Mapped[str] = mapped_column(String(71), unique=True)
    """Unique as well: a fork is two entries naming one predecessor."""
    hash: Mapped[str] = mapped_column(String(71))


class AuditCheckpoint(Base):
    __tablename__ = "audit_checkpoints"
    id: Mapped[int] = mapped_column(primary_key=True)
    seq: Mapped[int] = mapped_column(index=True)
    hash: Mapped[str] = mapped_column(String(71))
    at: Mapped[datetime]
    key_id: Mapped[str] = mapped_column(String(71))
    envelope: Mapped[dict[str, Any]]


class AuditChainLock(Base):
    """One row (id 1). Every append updates it first: on PostgreSQL that is a row lock the
    next appender waits on, on SQLite it takes the database's write lock."""

    __tablename__ = "audit_chain_lock"
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    appends: Mapped[int] = mapped_column(default=0)
