"""Rollouts, the precedence behind a device's desired state, and fleet history."""

from __future__ import annotations

from datetime import datetime
from typing import Literal, Self

from pydantic import Field, model_validator

from farpoint.wire.common import WireModel
from farpoint.wire.devices import DesiredState, DevicePhase, HealthPolicy

__all__ = [
    "ROLLOUT_DONE",
    "BatchSpec",
    "CanarySpec",
    "DeviceAtInstant",
    "DeviceDesiredState",
    "FleetCandidate",
    "FleetHistory",
    "ModelDecision",
    "RolloutBatch",
    "RolloutCreate",
    "RolloutDevice",
    "RolloutOut",
    "RolloutSettings",
    "RolloutState",
    "RolloutSummary",
    "Strategy",
]

Strategy = Literal["all-at-once", "canary", "batches"]
RolloutState = Literal["running", "paused", "succeeded", "failed", "rolled_back", "aborted"]
ROLLOUT_DONE: frozenset[str] = frozenset({"succeeded", "failed", "rolled_back", "aborted"})
"""Rollout states that do not change any more."""

_MAX_TIMEOUT_S = 30 * 24 * 3600


def _exactly_one(kind: str, **given: object) -> None:
    named = [k for k, v in given.items() if v is not None]
    if len(named) != 1:
        options = " or ".join(f'{{"{k}": N}}' for k in given)
        got = ", ".join(named) if named else "none of them"
        raise ValueError(f"{kind} takes exactly one of {options}; got {got}")


class CanarySpec(WireModel):
    """The first batch: `count` devices or `percent` of the fleet, `selector` matches first."""

    count: int | None = Field(default=None, ge=1)
    percent: float | None = Field(default=None, gt=0, le=100)
    selector: dict[str, str] = Field(default_factory=dict)
    """Devices whose labels match are ordered first, so the canary is drawn from them."""

    @model_validator(mode="after")
    def _one_size(self) -> Self:
        _exactly_one("canary", count=self.count, percent=self.percent)
        return self


class BatchSpec(WireModel):
    """How the devices after the canary are split: `count` batches, or of `size`, or `percent`."""

    count: int | None = Field(default=None, ge=1)
    size: int | None = Field(default=None, ge=1)
    percent: float | None = Field(default=None, gt=0, le=100)

    @model_validator(mode="after")
    def _one_way(self) -> Self:
        _exactly_one("batches", count=self.count, size=self.size, percent=self.percent)
        return self


class RolloutSettings(WireModel):
    """How a rollout proceeds (docs/fleet-delivery.md, Rollouts)."""

    canary: CanarySpec | None = None
    """Required by the canary strategy, refused by the others."""
    batches: BatchSpec | None = None
    """Required by the batches strategy; with canary, how the rest is split (one batch if
    omitted); refused by all-at-once."""
    success_threshold: float = Field(default=1.0, ge=0, le=1)
    """Share of a batch's devices that must be healthy before the next batch starts."""
    max_failures: int = Field(default=0, ge=0)
    """Failed or rolled-back devices tolerated over the whole rollout."""
    health: HealthPolicy = Field(default_factory=HealthPolicy)
    """The health window each device runs after switching; `window_s: 0` means none."""
    approve_between_batches: bool = False
    rollback_on_failure: bool = True
    pending_timeout_s: int = Field(default=3600, gt=0, le=_MAX_TIMEOUT_S)
    """A device reporting no progress on the release this long stops blocking its batch
    (a device inside its health window gets the window on top)."""


class RolloutCreate(RolloutSettings):
    fleet: str
    release_id: int
    strategy: Strategy = "all-at-once"

    @model_validator(mode="after")
    def _strategy_fits(self) -> Self:
        if self.strategy == "all-at-once" and (self.canary or self.batches):
            raise ValueError("strategy all-at-once takes neither canary nor batches")
        if self.strategy == "canary" and self.canary is None:
            raise ValueError('strategy canary needs canary: {"count": N} or {"percent": P}')
        if self.strategy == "batches":
            if self.batches is None:
                raise ValueError(
                    'strategy batches needs batches: {"count": N}, {"size": N} or {"percent": P}'
                )
            if self.canary is not None:
                raise ValueError("strategy batches takes no canary; use strategy canary")
        return self


class RolloutBatch(WireModel):
    index: int
    """0 is the canary under the canary strategy."""
    size: int
    state: Literal["waiting", "running", "succeeded", "failed", "stopped"]
    """`stopped`: started, then the rollout ended before the batch decided."""
    healthy: int
    failed: int
    in_progress: int
    """Devices of a started batch still working on the release (0 while it waits)."""
    timed_out: int
    started_at: datetime | None
    finished_at: datetime | None


class RolloutDevice(WireModel):
    device_id: str
    device_name: str
    batch: int
    phase: DevicePhase
    """The device's phase on the rollout's release; `pending` until it reports working on it."""
    error: str | None
    committed: bool = False
    """The device passed its health window on the release."""
    healthy: bool = False
    """Counts as healthy for its batch: active and committed (or active, with no window)."""
    timed_out: bool = False
    """No progress on the release for `pending_timeout_s`: it no longer blocks its batch."""
    assigned_release_id: int | None = None
    """What this rollout tells the device to run now: the new release once its batch
    started, else (not started, or returned by a rollback) its previous release."""
    previous_release_id: int | None = None
    updated_at: datetime | None = None


class RolloutSummary(WireModel):
    """A rollout without its per-device rows (what lists return)."""

    id: int
    fleet: str
    model: str
    from_release_id: int | None
    to_release_id: int
    strategy: Strategy
    state: RolloutState
    paused_reason: str | None = None
    """Who paused it, or `awaiting approval of batch N`."""
    reason: str | None = None
    """Why it stopped (failed, rolled back, aborted)."""
    settings: RolloutSettings = Field(default_factory=RolloutSettings)
    current_batch: int | None = None
    """Index of the latest started batch; None before any (or with no devices)."""
    failures: int = 0
    """Failed plus rolled-back devices so far."""
    progress: dict[str, int]
    """Devices per phase, every phase listed."""
    batches: list[RolloutBatch] = Field(default_factory=list)
    created_by: str
    created_at: datetime
    finished_at: datetime | None


class RolloutOut(RolloutSummary):
    """A rollout with every device it snapshotted, in batch then name order."""

    devices: list[RolloutDevice] = Field(default_factory=list)


class FleetCandidate(WireModel):
    """A fleet that selects the device and wants a release of the model."""

    fleet: str
    set_at: datetime
    """When the fleet's release was set (a rollout sets it): the newest wins."""
    fleet_release_id: int
    rollout_id: int | None
    rollout_state: RolloutState | None
    release_id: int | None
    """What this fleet gives the device now (none: it has nothing for it yet)."""
    rollout_batch: int | None
    """The device's batch in that rollout (None: it joined the fleet after the rollout)."""
    why: str


class ModelDecision(WireModel):
    model: str
    winner: str | None
    """The fleet that decides; None when no candidate gives the device a release."""
    release_id: int | None
    rollout_id: int | None
    batch: int | None
    reason: str
    candidates: list[FleetCandidate]
    """Newest first: the order precedence tries them in."""


class DeviceDesiredState(WireModel):
    """`GET /devices/{id}/desired-state`: what the device is told, and why."""

    device_id: str
    device_name: str
    state: DesiredState
    decisions: list[ModelDecision]


class DeviceAtInstant(WireModel):
    device_id: str
    device_name: str
    releases: dict[str, int]
    """Model name → the release the device was serving then (models it served nothing of
    are absent)."""


class FleetHistory(WireModel):
    fleet: str
    at: datetime
    devices: list[DeviceAtInstant]
    """Every device the fleet selects now, in name order."""
