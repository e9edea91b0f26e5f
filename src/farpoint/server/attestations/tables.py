"""Tables of this room: signed attestations and the digests they are about."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from farpoint.server.db import Base, utcnow


class Attestation(Base):
    __tablename__ = "attestations"
    id: Mapped[int] = mapped_column(primary_key=True)
    predicate_type: Mapped[str] = mapped_column(String(512), index=True)
    envelope: Mapped[dict[str, Any]]
    statement: Mapped[dict[str, Any]]
    signer_user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    signer: Mapped[str] = mapped_column(String(64))
    key_id: Mapped[str] = mapped_column(String(71))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class AttestationSubject(Base):
    __tablename__ = "attestation_subjects"
    id: Mapped[int] = mapped_column(primary_key=True)
    attestation_id: Mapped[int] = mapped_column(ForeignKey("attestations.id"), index=True)
    name: Mapped[str] = mapped_column(String(1024))
    digest: Mapped[str] = mapped_column(String(71), index=True)
