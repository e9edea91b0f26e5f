"""Fleets, the release each fleet wants per model, and what each device served when."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String
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
    rollout_id: Mapped[int | None] = mapped_column(ForeignKey("rollouts.id"))
    """The rollout that set it: it decides each device's release (None: set directly)."""


class ServingInterval(Base):
    """A device served `release_id` of `model` from `started_at` until `ended_at` (None: now).

    Written when a status report shows the serving release change; history reads these
    instead of scanning reports.
    """

    __tablename__ = "serving_intervals"
    __table_args__ = (
        Index("ix_serving_intervals_device_model", "device_id", "model", "started_at"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    device_id: Mapped[str] = mapped_column(ForeignKey("devices.id"))
    model: Mapped[str] = mapped_column(String(64))
    release_id: Mapped[int]
    """As reported; not a foreign key, a device may name a release it kept."""
    started_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]
