"""Telemetry windows devices reported, one row per (device, seq), and their counts.

Counts are kept in narrow rows (per model; per latency bucket, predicted label and
feedback cell), so a summary over any set of devices is one GROUP BY per kind.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, ForeignKeyConstraint, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from farpoint.server.db import Base

__all__ = [
    "TelemetryDevice",
    "TelemetryFeedback",
    "TelemetryLatency",
    "TelemetryModel",
    "TelemetryPrediction",
    "TelemetryWindowRow",
]


class TelemetryWindowRow(Base):
    """One interval record; the (device, seq) key makes a retried report count once."""

    __tablename__ = "telemetry_windows"
    device_id: Mapped[str] = mapped_column(ForeignKey("devices.id"), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    start_at: Mapped[datetime]
    end_at: Mapped[datetime]
    received_at: Mapped[datetime]
    resources: Mapped[dict[str, Any]]
    __table_args__ = (Index("ix_telemetry_windows_device_end", "device_id", "end_at"),)


class TelemetryModel(Base):
    """What one release of one model did in one window."""

    __tablename__ = "telemetry_models"
    device_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    model: Mapped[str] = mapped_column(String(64), primary_key=True)
    release_id: Mapped[int | None]
    """As the device reported it; not a foreign key (a device may report a release it kept)."""
    end_at: Mapped[datetime]
    """The window's end, here too: summaries filter on it without a join."""
    requests: Mapped[int] = mapped_column(BigInteger)
    inferences: Mapped[int] = mapped_column(BigInteger)
    errors: Mapped[int] = mapped_column(BigInteger)
    input_errors: Mapped[int] = mapped_column(BigInteger)
    __table_args__ = (
        ForeignKeyConstraint(
            ["device_id", "seq"], ["telemetry_windows.device_id", "telemetry_windows.seq"]
        ),
        Index("ix_telemetry_models_release_end", "release_id", "end_at"),
        Index("ix_telemetry_models_end", "end_at"),
    )


def _model_key() -> ForeignKeyConstraint:
    return ForeignKeyConstraint(
        ["device_id", "seq", "model"],
        ["telemetry_models.device_id", "telemetry_models.seq", "telemetry_models.model"],
    )


class TelemetryLatency(Base):
    """One non-empty bucket of a window's latency histogram (`core.telemetry` edges)."""

    __tablename__ = "telemetry_latency"
    device_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    model: Mapped[str] = mapped_column(String(64), primary_key=True)
    bucket: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    count: Mapped[int] = mapped_column(BigInteger)
    __table_args__ = (_model_key(),)


class TelemetryPrediction(Base):
    """Rows a window predicted one label for."""

    __tablename__ = "telemetry_predictions"
    device_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    model: Mapped[str] = mapped_column(String(64), primary_key=True)
    label: Mapped[str] = mapped_column(String(64), primary_key=True)
    count: Mapped[int] = mapped_column(BigInteger)
    __table_args__ = (_model_key(),)


class TelemetryFeedback(Base):
    """A confusion cell of a window: per group of an attribute, or overall when the
    attribute is empty (`ModelWindow.confusion`)."""

    __tablename__ = "telemetry_feedback"
    device_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    model: Mapped[str] = mapped_column(String(64), primary_key=True)
    attribute: Mapped[str] = mapped_column(String(64), primary_key=True)
    group_name: Mapped[str] = mapped_column(String(64), primary_key=True)
    label: Mapped[str] = mapped_column(String(64), primary_key=True)
    predicted: Mapped[str] = mapped_column(String(64), primary_key=True)
    count: Mapped[int] = mapped_column(BigInteger)
    __table_args__ = (_model_key(),)


class TelemetryDevice(Base):
    """Records a device's queue dropped while it could not report, as it told us."""

    __tablename__ = "telemetry_devices"
    device_id: Mapped[str] = mapped_column(ForeignKey("devices.id"), primary_key=True)
    dropped_total: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[datetime]
