"""Tables of this room: signed TUF metadata, trust files and each device's director state."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from farpoint.server.db import Base, utcnow


class TufMetadata(Base):
    """One version of one image-repository role, stored as the exact bytes served."""

    __tablename__ = "tuf_metadata"
    __table_args__ = (UniqueConstraint("role", "version"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    role: Mapped[str] = mapped_column(String(32), index=True)
    """root, targets, releases, snapshot or timestamp."""
    version: Mapped[int]
    data: Mapped[bytes] = mapped_column(LargeBinary)
    digest: Mapped[str] = mapped_column(String(71))
    expires: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class TufTrustFile(Base):
    """A `trust/<name>` target (bindings, policies): bytes the offline targets key hashed."""

    __tablename__ = "tuf_trust_files"
    name: Mapped[str] = mapped_column(String(255), primary_key=True)
    data: Mapped[bytes] = mapped_column(LargeBinary)
    digest: Mapped[str] = mapped_column(String(71))
    updated_by: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class DirectorTargets(Base):
    """The director metadata last signed for one device."""

    __tablename__ = "tuf_director_targets"
    device_id: Mapped[str] = mapped_column(ForeignKey("devices.id"), primary_key=True)
    version: Mapped[int]
    content_digest: Mapped[str] = mapped_column(String(71))
    """sha256 of what the metadata says (targets and device), to tell when it changes."""
    data: Mapped[bytes] = mapped_column(LargeBinary)
    expires: Mapped[datetime]
    signed_at: Mapped[datetime]


class ReleaseModelSignature(Base):
    """A release manager's OpenSSF Model Signing bundle for a release's model (`model.sig`)."""

    __tablename__ = "tuf_release_signatures"
    release_id: Mapped[int] = mapped_column(ForeignKey("releases.id"), primary_key=True)
    data: Mapped[bytes] = mapped_column(LargeBinary)
    digest: Mapped[str] = mapped_column(String(71))
    signer_key_id: Mapped[str] = mapped_column(String(71))
    uploaded_by: Mapped[str] = mapped_column(String(64))
    uploaded_at: Mapped[datetime] = mapped_column(default=utcnow)
