"""Enrollment tokens, devices, what each device last reported per model, and the
diagnostics IT operations asked devices for."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, String, Text, false
from sqlalchemy.orm import Mapped, mapped_column

from farpoint.server.db import Base, utcnow


class EnrollmentToken(Base):
    __tablename__ = "enrollment_tokens"
    id: Mapped[int] = mapped_column(primary_key=True)
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    """SHA-256 hex of the token's secret; the secret itself is shown once and never stored."""
    labels: Mapped[dict[str, Any]]
    server_key_id: Mapped[str] = mapped_column(String(71))
    root_version: Mapped[int]
    """The image repository's root when the token was made: the device trusts it first."""
    root_digest: Mapped[str] = mapped_column(String(71))
    """`sha256:` of that root's bytes; the token carries its hex."""
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
    device_id: Mapped[str | None] = mapped_column(String(36))
    fleet: Mapped[str | None] = mapped_column(String(64))
    """The fleet the token enrolls into: the device receives its selector labels."""
    requires_approval: Mapped[bool] = mapped_column(default=False, server_default=false())
    """Devices enrolled with it wait in state `pending` until IT operations approve them."""
    ca_digest: Mapped[str | None] = mapped_column(String(71))
    """`sha256:` of the TLS CA certificate the device pins (FARPOINT_TLS_CA), if any."""


class Device(Base):
    __tablename__ = "devices"
    seq: Mapped[int] = mapped_column(primary_key=True)
    """Insertion order, for cursor pagination; the public identity is `id`."""
    id: Mapped[str] = mapped_column(String(36), unique=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    public_key_pem: Mapped[str] = mapped_column(Text)
    key_id: Mapped[str] = mapped_column(String(71))
    labels: Mapped[dict[str, Any]]
    hardware: Mapped[dict[str, Any]]
    heartbeat: Mapped[dict[str, Any]]
    enrollment_token_id: Mapped[int] = mapped_column(ForeignKey("enrollment_tokens.id"))
    enrolled_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime | None]
    state: Mapped[str] = mapped_column(String(16), default="active", server_default="active")
    """`pending` (awaiting approval), `active`, `rejected` or `decommissioned`."""
    state_changed_at: Mapped[datetime | None]
    state_changed_by: Mapped[str | None] = mapped_column(String(64))
    previous_key_id: Mapped[str | None] = mapped_column(String(71))
    """The key the last rotation replaced (refused since); lets a retried rotation succeed."""
    key_rotated_at: Mapped[datetime | None]


class DeviceModelState(Base):
    """The phase a device last reported for one model (one row per device and model)."""

    __tablename__ = "device_model_states"
    device_id: Mapped[str] = mapped_column(ForeignKey("devices.id"), primary_key=True)
    model: Mapped[str] = mapped_column(String(64), primary_key=True)
    release_id: Mapped[int | None]
    """As reported by the device; not a foreign key, a device may name a release it kept."""
    phase: Mapped[str] = mapped_column(String(16))
    error: Mapped[str | None] = mapped_column(Text)
    committed: Mapped[bool] = mapped_column(default=False, server_default=false())
    """The release passed its health window on the device."""
    serving_release_id: Mapped[int | None]
    """What the device serves of the model (differs from release_id after a rollback);
    None when it serves nothing, or did not say."""
    rollout_id: Mapped[int | None]
    """The rollout the device named for the release (echoed from its desired state)."""
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class DeviceDiagnostics(Base):
    """One request for a device's recent logs and last errors, and what it uploaded."""

    __tablename__ = "device_diagnostics"
    id: Mapped[int] = mapped_column(primary_key=True)
    device_id: Mapped[str] = mapped_column(ForeignKey("devices.id"), index=True)
    requested_by: Mapped[str] = mapped_column(String(64))
    requested_at: Mapped[datetime] = mapped_column(default=utcnow)
    uploaded_at: Mapped[datetime | None]
    bundle: Mapped[dict[str, Any] | None]
    """What the device sent: log lines, last errors, agent facts (bounded on both sides)."""
    size_bytes: Mapped[int | None]
