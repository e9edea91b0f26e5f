"""Rollouts with their settings, their batches, each device's row, the controller's lease."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text, false, text, true
from sqlalchemy.orm import Mapped, mapped_column

from farpoint.server.db import Base, utcnow


class Rollout(Base):
    __tablename__ = "rollouts"
    id: Mapped[int] = mapped_column(primary_key=True)
    fleet_id: Mapped[int] = mapped_column(ForeignKey("fleets.id"), index=True)
    model: Mapped[str] = mapped_column(String(64))
    from_release_id: Mapped[int | None] = mapped_column(ForeignKey("releases.id"))
    """The fleet's release before (what a device joining mid-rollout gets)."""
    from_rollout_id: Mapped[int | None]
    """The rollout that had put `from_release_id` there, if one had. Not a foreign key:
    adding one would make SQLite's migration rebuild this table, which others reference."""
    to_release_id: Mapped[int] = mapped_column(ForeignKey("releases.id"))
    strategy: Mapped[str] = mapped_column(String(32))
    state: Mapped[str] = mapped_column(String(16), index=True)
    paused_reason: Mapped[str | None] = mapped_column(Text)
    reason: Mapped[str | None] = mapped_column(Text)
    """Why it stopped: failure, rollback, abort or being superseded."""
    settings: Mapped[dict[str, Any] | None]
    """The wire RolloutSettings as given (None for rollouts made before batches existed)."""
    success_threshold: Mapped[float] = mapped_column(server_default=text("1.0"))
    max_failures: Mapped[int] = mapped_column(server_default=text("0"))
    window_s: Mapped[int] = mapped_column(server_default=text("60"))
    """The health window's length; 0 means `active` alone is healthy."""
    approve_between_batches: Mapped[bool] = mapped_column(server_default=false())
    rollback_on_failure: Mapped[bool] = mapped_column(server_default=true())
    pending_timeout_s: Mapped[int] = mapped_column(server_default=text("3600"))
    batch_count: Mapped[int] = mapped_column(server_default=text("1"))
    current_batch: Mapped[int] = mapped_column(server_default=text("0"))
    """Index of the latest started batch, -1 before the first."""
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]


class RolloutBatch(Base):
    __tablename__ = "rollout_batches"
    rollout_id: Mapped[int] = mapped_column(ForeignKey("rollouts.id"), primary_key=True)
    idx: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    size: Mapped[int]
    state: Mapped[str] = mapped_column(String(16))
    """waiting, running, succeeded, failed, or stopped (the rollout ended first)."""
    healthy: Mapped[int] = mapped_column(default=0)
    failed: Mapped[int] = mapped_column(default=0)
    timed_out: Mapped[int] = mapped_column(default=0)
    """Devices of the batch per class, kept as they change (under the rollout's lock), so a
    verdict reads one row instead of counting every device; the rest are in progress."""
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]


class RolloutDevice(Base):
    """A device a rollout snapshotted at creation: its batch, assignment and progress."""

    __tablename__ = "rollout_devices"
    __table_args__ = (Index("ix_rollout_devices_batch", "rollout_id", "batch_index"),)
    rollout_id: Mapped[int] = mapped_column(ForeignKey("rollouts.id"), primary_key=True)
    device_id: Mapped[str] = mapped_column(ForeignKey("devices.id"), primary_key=True, index=True)
    batch_index: Mapped[int] = mapped_column(server_default=text("0"))
    assigned_release_id: Mapped[int | None]
    """The rollout's release once the device's batch started; None before that and after a
    rollback returned it: the device then gets `previous_release_id`."""
    previous_release_id: Mapped[int | None]
    """What the device's desired state named for the model when the rollout was created."""
    previous_rollout_id: Mapped[int | None]
    phase: Mapped[str] = mapped_column(String(16))
    error: Mapped[str | None] = mapped_column(Text)
    committed: Mapped[bool] = mapped_column(server_default=false())
    timed_out: Mapped[bool] = mapped_column(server_default=false())
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class ControllerLease(Base):
    """Who may run the timed part of the rollout controller; one row per lease name.

    A replica holds it until `expires_at` and renews it while it lives; another takes it
    over once it has expired. Works the same on SQLite and PostgreSQL.
    """

    __tablename__ = "controller_leases"
    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    holder: Mapped[str] = mapped_column(String(64))
    expires_at: Mapped[datetime]
