"""Releases: signed, deployable packages of a model version."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from farpoint.wire.common import WireModel

__all__ = ["ReleaseCreate", "ReleaseOut"]


class ReleaseCreate(WireModel):
    model: str
    """Model version reference, `NAME@VERSION`; it must have a passed evaluation."""
    evaluation_id: int | None = None
    """The passed evaluation to cite; the latest passed one when omitted."""


class ReleaseOut(WireModel):
    id: int
    model: str
    model_version: int
    model_ref: str
    model_digest: str
    manifest_digest: str
    evaluation_id: int
    key_id: str
    manifest: dict[str, Any]
    envelope: dict[str, Any]
    created_by: str
    created_at: datetime
