"""Device key rotation and remote diagnostics."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field

from farpoint.wire.common import WireModel

__all__ = [
    "MAX_ERRORS",
    "MAX_LOG_LINES",
    "MAX_LOG_MESSAGE",
    "DiagnosticsOut",
    "DiagnosticsUpload",
    "KeyRotated",
    "KeyRotation",
    "LogLine",
]

MAX_LOG_LINES = 1000
MAX_ERRORS = 100
MAX_LOG_MESSAGE = 2000


class KeyRotation(WireModel):
    """`POST /devices/self/key`, signed with the current key (docs/fleet-delivery.md)."""

    public_key_pem: str = Field(max_length=4096)
    """The new public key (ECDSA P-256, PEM)."""
    old_key_id: str = Field(max_length=71)
    """The key being replaced: the one that signs this request."""
    proof_b64: str = Field(max_length=512)
    """The new key's signature over `farpoint.core.key_rotation.rotation_statement`."""


class KeyRotated(WireModel):
    device_id: str
    key_id: str
    previous_key_id: str | None
    rotated_at: datetime | None


class LogLine(WireModel):
    at: float
    """Unix time of the record on the device's clock."""
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]
    logger: str = Field(max_length=200)
    message: str = Field(max_length=MAX_LOG_MESSAGE)


class DiagnosticsUpload(WireModel):
    """What a device uploads to `POST /devices/self/diagnostics/{id}` (at most 64 KiB)."""

    logs: list[LogLine] = Field(default_factory=list, max_length=MAX_LOG_LINES)
    """Recent log lines, oldest first."""
    errors: list[LogLine] = Field(default_factory=list, max_length=MAX_ERRORS)
    """The last errors (level ERROR and above), oldest first, with tracebacks."""
    dropped_lines: int = Field(default=0, ge=0)
    """Lines left out to stay within the size limit (the oldest first)."""
    agent: dict[str, Any] = Field(default_factory=dict)
    """Facts about the agent: version, uptime, what it serves, its last sync refusal."""


class DiagnosticsOut(WireModel):
    id: int
    device_id: str
    requested_by: str
    requested_at: datetime
    uploaded_at: datetime | None
    size_bytes: int | None
    bundle: DiagnosticsUpload | None
