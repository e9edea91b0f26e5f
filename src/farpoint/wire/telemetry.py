"""Telemetry a device reports: interval records of counts, never raw rows.

Shapes only; the counting rules are `farpoint.core.telemetry` (shared with the agent) and
docs/fleet-delivery.md.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from farpoint.wire.common import WireModel

__all__ = ["FeedbackCount", "ModelWindow", "TelemetryWindow"]


class FeedbackCount(WireModel):
    """How often, among predictions the application gave feedback on, a group of a
    protected attribute had this true label and this predicted label."""

    attribute: str = Field(max_length=64)
    group: str = Field(max_length=64)
    label: str = Field(max_length=64)
    predicted: str = Field(max_length=64)
    count: int = Field(ge=0)


class ModelWindow(WireModel):
    release_id: int | None = None
    requests: int = Field(default=0, ge=0)
    inferences: int = Field(default=0, ge=0)
    """Rows predicted."""
    errors: int = Field(default=0, ge=0)
    """Inference failures (the model or runtime failed), not the caller's 4xx."""
    input_errors: int = Field(default=0, ge=0)
    """Requests refused for their input (4xx)."""
    latency_ms: list[int] = Field(default_factory=list, max_length=64)
    """Request latency histogram: counts per bucket of `core.telemetry.LATENCY_EDGES_MS`
    (one more bucket than edges; the last counts everything above the last edge)."""
    predictions: dict[str, int] = Field(default_factory=dict, max_length=256)
    """Predicted label -> rows."""
    feedback: list[FeedbackCount] = Field(default_factory=list, max_length=1024)


class TelemetryWindow(WireModel):
    seq: int = Field(ge=0)
    """Per-device sequence number: the server keeps each (device, seq) once."""
    start: datetime
    end: datetime
    models: dict[str, ModelWindow] = Field(default_factory=dict, max_length=64)
    resources: dict[str, float | int | None] = Field(default_factory=dict, max_length=32)
    """cpu_percent, rss_bytes, disk_free_bytes averaged or sampled over the window."""
