"""Enrollment, devices, their desired state and status, fleets (rollouts: `wire.rollouts`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field

from farpoint.wire.common import Name, WireModel
from farpoint.wire.telemetry import TelemetryWindow

__all__ = [
    "DesiredModel",
    "DesiredState",
    "DeviceModelStatus",
    "DeviceOut",
    "DevicePhase",
    "DeviceState",
    "DeviceStatusReport",
    "DiagnosticsRequest",
    "EnrollRequest",
    "EnrollResponse",
    "EnrollmentTokenCreate",
    "EnrollmentTokenCreated",
    "FleetCreate",
    "FleetOut",
    "HealthPolicy",
]

DevicePhase = Literal[
    "pending", "downloading", "verifying", "installing", "active", "failed", "rolled_back"
]


DeviceState = Literal["pending", "active", "rejected", "decommissioned"]
"""`pending`: enrolled with a token that requires approval, waiting for IT operations."""


class EnrollmentTokenCreate(WireModel):
    labels: dict[str, str] = Field(default_factory=dict)
    """Labels every device enrolled with this token receives."""
    fleet: Name | None = None
    """Enroll into this fleet: the device receives the fleet's selector labels too."""
    requires_approval: bool = False
    """Devices enrolled with it stay `pending` until IT operations approve them."""
    expires_in_s: int = Field(default=24 * 3600, gt=0, le=30 * 24 * 3600)


class EnrollmentTokenCreated(WireModel):
    id: int
    token: str
    """`fpe1.<secret>.<root hex>[.<ca hex>]`: single use; root hex is the sha256 of the root
    the device trusts, ca hex (when the server has FARPOINT_TLS_CA) the sha256 of the TLS CA
    certificate it pins."""
    labels: dict[str, str]
    fleet: str | None = None
    requires_approval: bool = False
    expires_at: datetime
    server_key_id: str
    root_digest: str = ""
    """`sha256:` of the root metadata bytes the token names."""
    ca_digest: str | None = None
    """`sha256:` of the TLS CA certificate the token names (GET /tls/ca.pem), if any."""


class EnrollRequest(WireModel):
    token: str
    name: Name
    public_key_pem: str = Field(max_length=4096)
    labels: dict[str, str] = Field(default_factory=dict)
    hardware: dict[str, Any] = Field(default_factory=dict)


class EnrollResponse(WireModel):
    device_id: str
    server_public_key_pem: str
    server_key_id: str
    labels: dict[str, str]
    root_json_b64: str
    """The root metadata the token named (base64); it must hash to the token's hex."""
    root_digest: str
    """`sha256:<hex>` of those bytes."""
    state: DeviceState = "active"
    """`pending` when the token requires approval: only status reports are taken until then."""


class DeviceModelStatus(WireModel):
    model: str
    release_id: int | None
    """The release this status is about (the one the device is working on)."""
    phase: DevicePhase
    error: str | None = None
    committed: bool = False
    """True once the release passed its health window on the device (its last known-good)."""
    serving_release_id: int | None = None
    """What the device serves for this model now (differs from release_id after a rollback)."""
    rollout_id: int | None = None
    """The rollout the desired state named for this release, echoed back."""
    updated_at: datetime | None = None


class DeviceOut(WireModel):
    id: str
    name: str
    labels: dict[str, str]
    hardware: dict[str, Any]
    key_id: str
    enrolled_at: datetime
    last_seen_at: datetime | None
    online: bool
    models: list[DeviceModelStatus]
    heartbeat: dict[str, Any]
    state: DeviceState = "active"
    state_changed_at: datetime | None = None
    state_changed_by: str | None = None
    key_rotated_at: datetime | None = None


class HealthPolicy(WireModel):
    """The health window a device runs after switching to a release (docs/fleet-delivery.md)."""

    window_s: int = Field(default=60, ge=0, le=7 * 24 * 3600)
    max_error_rate: float = Field(default=0.05, ge=0, le=1)
    """Inference failures over requests in the window; judged once min_requests arrived."""
    min_requests: int = Field(default=20, ge=1)
    max_latency_p95_ms: float | None = Field(default=None, gt=0)
    max_crashes: int = Field(default=1, ge=0)
    """Agent restarts tolerated inside the window; one more rolls the release back."""


class DesiredModel(WireModel):
    model: str
    release_id: int
    manifest_digest: str
    model_digest: str
    fleet: str
    rollout_id: int | None = None
    """The rollout that assigned this release to the device, if one did."""
    health: HealthPolicy = Field(default_factory=HealthPolicy)


class DiagnosticsRequest(WireModel):
    id: int
    """Upload the device's recent logs to POST /devices/self/diagnostics/{id}."""


class DesiredState(WireModel):
    device_id: str
    etag: str
    models: list[DesiredModel]
    diagnostics: DiagnosticsRequest | None = None


class DeviceStatusReport(WireModel):
    models: list[DeviceModelStatus] = Field(default_factory=list)
    heartbeat: dict[str, Any] = Field(default_factory=dict)
    """Gauges as of now: uptime, resource use, execution providers, per-model figures."""
    telemetry: list[TelemetryWindow] = Field(default_factory=list)
    """Interval records queued on the device, oldest first; stored once per (device, seq)."""
    dropped_telemetry: int = Field(default=0, ge=0)
    """Records the device's bounded queue dropped (oldest first) since its last report."""


class FleetCreate(WireModel):
    name: Name
    selector: dict[str, str] = Field(default_factory=dict)
    """Label equality selector; empty selects every device."""


class FleetOut(WireModel):
    name: str
    selector: dict[str, str]
    desired_release_id: int | None
    device_count: int
    created_at: datetime
