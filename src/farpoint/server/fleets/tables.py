"""Fleets, the release each fleet wants per model, and rollouts with per-device progress."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from farpoint.server.db import Base, utcnow


class Fleet(Base):
    __tablename__ = "fleets"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    selector: Mapped[dict[str, Any]]
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class FleetRelease(Base):
    """The release a fleet wants for one model; `set_at` decides precedence between fleets."""

    __tablename__ = "fleet_releases"
    fleet_id: Mapped[int] = mapped_column(ForeignKey("fleets.id"), primary_key=True)
    model: Mapped[str] = mapped_column(String(64), primary_key=True)
    release_id: Mapped[int] = mapped_column(ForeignKey("releases.id"))
    set_at: Mapped[datetime] = mapped_column(default=utcnow)


class Rollout(Base):
    __tablename__ = "rollouts"
    id: Mapped[int] = mapped_column(primary_key=True)
    fleet_id: Mapped[int] = mapped_column(ForeignKey("fleets.id"), index=True)
    model: Mapped[str] = mapped_column(String(64))
    from_release_id: Mapped[int | None] = mapped_column(ForeignKey("releases.id"))
    to_release_id: Mapped[int] = mapped_column(ForeignKey("releases.id"))
    strategy: Mapped[str] = mapped_column(String(32))
    state: Mapped[str] = mapped_column(String(16), index=True)
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]


class RolloutDevice(Base):
    """A device a rollout targeted when it was created, and its progress on the target release."""

    __tablename__ = "rollout_devices"
    rollout_id: Mapped[int] = mapped_column(ForeignKey("rollouts.id"), primary_key=True)
    device_id: Mapped[str] = mapped_column(ForeignKey("devices.id"), primary_key=True, index=True)
    phase: Mapped[str] = mapped_column(String(16))
    error: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
