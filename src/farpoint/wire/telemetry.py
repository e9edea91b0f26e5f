"""Telemetry a device reports: interval records of counts, never raw rows.

Shapes only; the counting rules are `farpoint.core.telemetry` (shared with the agent) and
docs/fleet-delivery.md. The agent mirrors the record shapes in `farpoint.agent.telemetry`
(contract tests keep them equal).
"""

from __future__ import annotations

from datetime import datetime
from typing import Self

from pydantic import Field, field_validator, model_validator

from farpoint.core.telemetry import LATENCY_BUCKETS, LATENCY_EDGES_MS
from farpoint.wire.common import WireModel

__all__ = [
    "ConfusionCount",
    "DeviceTelemetry",
    "FeedbackCount",
    "FeedbackSummary",
    "GroupSummary",
    "LatencySummary",
    "ModelSummary",
    "ModelWindow",
    "StoredWindow",
    "TelemetrySummary",
    "TelemetryWindow",
]


class ConfusionCount(WireModel):
    """How often the true label was `label` where the model predicted `predicted`."""

    label: str = Field(max_length=64)
    predicted: str = Field(max_length=64)
    count: int = Field(ge=0)


class FeedbackCount(WireModel):
    """How often, among predictions the application gave feedback on, a group of a
    protected attribute had this true label and this predicted label."""

    attribute: str = Field(min_length=1, max_length=64)
    group: str = Field(max_length=64)
    label: str = Field(max_length=64)
    predicted: str = Field(max_length=64)
    count: int = Field(ge=0)


class ModelWindow(WireModel):
    """What one release of one model did on the device during the window."""

    release_id: int | None = None
    requests: int = Field(default=0, ge=0)
    """Predict requests that reached the model (answered 200, 4xx for input, or 5xx)."""
    inferences: int = Field(default=0, ge=0)
    """Rows predicted."""
    errors: int = Field(default=0, ge=0)
    """Inference failures (the model or runtime failed: a 5xx), not the caller's 4xx."""
    input_errors: int = Field(default=0, ge=0)
    """Requests refused for their input (4xx)."""
    latency_ms: list[int] = Field(default_factory=list, max_length=64)
    """Latency histogram of the successful requests (time in the model's predict: input
    checks, inference, the answer's rows): counts per bucket of
    `core.telemetry.LATENCY_EDGES_MS` (one more bucket than edges; the last counts
    everything above the last edge). Empty when no request succeeded."""
    predictions: dict[str, int] = Field(default_factory=dict, max_length=256)
    """Predicted label -> rows."""
    feedback: list[FeedbackCount] = Field(default_factory=list, max_length=1024)
    """Confusion cells per group of each protected attribute the application named."""
    confusion: list[ConfusionCount] = Field(default_factory=list, max_length=1024)
    """Confusion cells of every feedback, whatever attributes it named (for accuracy)."""

    @field_validator("latency_ms")
    @classmethod
    def _buckets(cls, value: list[int]) -> list[int]:
        if value and len(value) != LATENCY_BUCKETS:
            raise ValueError(
                f"latency_ms has {len(value)} buckets; expected {LATENCY_BUCKETS} "
                f"(edges {list(LATENCY_EDGES_MS)} ms and one above) or none"
            )
        if any(n < 0 for n in value):
            raise ValueError("latency_ms counts must not be negative")
        return value

    @field_validator("predictions")
    @classmethod
    def _counts(cls, value: dict[str, int]) -> dict[str, int]:
        if any(n < 0 for n in value.values()):
            raise ValueError("prediction counts must not be negative")
        return value


class TelemetryWindow(WireModel):
    seq: int = Field(ge=0)
    """Per-device sequence number: the server keeps each (device, seq) once."""
    start: datetime
    end: datetime
    models: dict[str, ModelWindow] = Field(default_factory=dict, max_length=64)
    resources: dict[str, float | int | None] = Field(default_factory=dict, max_length=32)
    """cpu_percent, rss_bytes, disk_free_bytes averaged or sampled over the window."""

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.end < self.start:
            raise ValueError(f"window {self.seq} ends before it starts")
        return self


class StoredWindow(TelemetryWindow):
    """A window as the server stored it."""

    received_at: datetime


class DeviceTelemetry(WireModel):
    """A page of one device's windows, oldest first (`GET /devices/{id}/telemetry`)."""

    device_id: str
    items: list[StoredWindow]
    next_cursor: str | None = None
    dropped_total: int = 0
    """Records the device's queue dropped (oldest first, while offline) and told us about."""


class LatencySummary(WireModel):
    edges_ms: list[float]
    counts: list[int]
    """Summed histogram: one count per edge, then the count above the last edge."""
    p50_ms: float | None
    """Upper edge of the bucket holding the quantile; null when no request succeeded,
    or when the quantile lies above the last edge (see the last count)."""
    p95_ms: float | None
    p99_ms: float | None


class GroupSummary(WireModel):
    attribute: str
    group: str
    count: int
    correct: int
    accuracy: float | None
    confusion: list[ConfusionCount]


class FeedbackSummary(WireModel):
    count: int
    """Predictions the application posted the true label of."""
    correct: int
    accuracy: float | None
    confusion: list[ConfusionCount]
    groups: list[GroupSummary]


class ModelSummary(WireModel):
    model: str
    release_id: int | None
    devices: int
    windows: int
    requests: int
    inferences: int
    errors: int
    input_errors: int
    error_rate: float | None
    """errors / requests."""
    latency: LatencySummary
    predictions: dict[str, int]
    feedback: FeedbackSummary


class TelemetrySummary(WireModel):
    """Counts of every window ending in (since, until], summed per model and release."""

    release_id: int | None
    fleet: str | None
    model: str | None
    since: datetime
    until: datetime
    devices: int
    """Devices that reported at least one window of these models in the range."""
    models: list[ModelSummary]
