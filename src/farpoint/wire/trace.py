"""The chain of custody of a release or a device, link by link (`farpoint trace`)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from farpoint.wire.common import WireModel
from farpoint.wire.trust import AttestationOut

__all__ = ["Trace", "TraceLink"]

LinkKind = Literal[
    "device", "release", "evaluation", "model_version", "training_run", "dataset_version"
]


class TraceLink(WireModel):
    kind: LinkKind
    ref: str
    """Human reference: `device/gw-001`, `release/3`, `deterioration@2`, `vitals@1`."""
    digest: str | None = None
    summary: str = ""
    signed_by: str | None = None
    """Who signed this record itself: `server` for release manifests, else None."""
    key_id: str | None = None
    envelope: dict[str, Any] | None = None
    """The signed record itself, for the client to verify (release manifests)."""
    attestations: list[AttestationOut] = Field(default_factory=list)
    """Attestations about this link's digest, signed by people's keys."""
    children: list[TraceLink] = Field(default_factory=list)


class Trace(WireModel):
    root: TraceLink
    server_key_id: str
    server_public_key_pem: str


TraceLink.model_rebuild()
