"""Policies and evaluations."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from farpoint.wire.common import WireModel

__all__ = ["EvaluationCreate", "EvaluationOut", "GateResult", "PolicyCreate", "PolicyOut"]


class PolicyCreate(WireModel):
    name: str
    yaml: str = Field(max_length=64_000)


class PolicyOut(WireModel):
    name: str
    version: int
    ref: str
    yaml: str
    spec: dict[str, object]
    created_by: str
    created_at: datetime


class EvaluationCreate(WireModel):
    model: str
    """Model version reference, `NAME@VERSION`."""
    dataset: str
    """Dataset version reference to evaluate on (held out from training)."""
    policy: str
    """Policy reference, `NAME` (latest) or `NAME@VERSION`."""


class GateResult(WireModel):
    name: str
    metric: str
    op: Literal[">=", "<=", ">", "<"]
    threshold: float
    value: float | None
    passed: bool
    reason: str


class EvaluationOut(WireModel):
    id: int
    model: str
    dataset: str
    policy: str
    metrics: dict[str, float]
    group_metrics: dict[str, dict[str, dict[str, float]]]
    """Protected column → group value → metric → value."""
    gates: list[GateResult]
    passed: bool
    created_by: str
    created_at: datetime
