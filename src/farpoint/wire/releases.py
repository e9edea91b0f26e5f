"""Releases: signed, deployable packages of a model version."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import Field, StringConstraints

from farpoint.wire.common import WireModel

__all__ = [
    "MAX_BUDGET_PROFILES",
    "PROFILE_PATTERN",
    "HardwareProfile",
    "LatencyBudgetMs",
    "ReleaseCreate",
    "ReleaseOut",
]

PROFILE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$"
"""A hardware profile: a device's `hardware-profile` label or its architecture
(`x86_64`, `aarch64`), or `default` for every other device."""
MAX_BUDGET_PROFILES = 16
HardwareProfile = Annotated[str, StringConstraints(pattern=PROFILE_PATTERN)]
LatencyBudgetMs = Annotated[float, Field(gt=0, allow_inf_nan=False)]


class ReleaseCreate(WireModel):
    model: str
    """Model version reference, `NAME@VERSION`; it must have a passed evaluation."""
    evaluation_id: int | None = None
    """The passed evaluation to cite; the latest passed one when omitted."""
    latency_budget_ms: dict[HardwareProfile, LatencyBudgetMs] = Field(
        default_factory=dict, max_length=MAX_BUDGET_PROFILES
    )
    """Single-row p95 latency (ms) the device's self-test allows, per hardware profile
    (`default` for the others); signed into the manifest as `budgets.latency_p95_ms`."""


class ReleaseOut(WireModel):
    id: int
    model: str
    model_version: int
    model_ref: str
    model_digest: str
    manifest_digest: str
    evaluation_id: int
    key_id: str
    latency_budget_ms: dict[str, float] = Field(default_factory=dict)
    """The manifest's `budgets.latency_p95_ms` (empty: no latency budget)."""
    manifest: dict[str, Any]
    envelope: dict[str, Any]
    created_by: str
    created_at: datetime
