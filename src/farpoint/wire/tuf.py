"""The TUF image repository's admin views: status, online keys, upload results."""

from __future__ import annotations

from datetime import datetime

from farpoint.wire.common import WireModel

__all__ = ["OnlineKeysOut", "OnlineKeysRotate", "RoleStatus", "TufStatus", "UploadResult"]


class RoleStatus(WireModel):
    version: int
    expires: datetime
    digest: str
    """`sha256:` of the metadata bytes as served."""


class TufStatus(WireModel):
    initialized: bool
    """True once a root.json was uploaded (`farpoint trust init`)."""
    roles: dict[str, RoleStatus]
    """The latest version of each role the repository holds (root, targets, releases,
    snapshot, timestamp)."""
    trust_files: list[str]
    """Names of the stored `trust/*` files (`bindings.json`, `policy.json`, ...)."""


class OnlineKeysOut(WireModel):
    """Public PEMs of the server's online keys, for the offline root to name."""

    snapshot: str
    timestamp: str
    director: str
    next: dict[str, str] = {}
    """Keys made for a rotation (role → PEM): they sign once a root names them."""


class OnlineKeysRotate(WireModel):
    roles: list[str] = ["snapshot", "timestamp", "director"]


class UploadResult(WireModel):
    role: str
    version: int
    digest: str
    snapshot_version: int | None
    """The snapshot the server signed after this upload (None before targets.json exists)."""
    timestamp_version: int | None
