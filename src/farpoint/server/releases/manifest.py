"""The release manifest: what a device needs to verify, install and self-test a model."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

__all__ = ["SCHEMA", "build_manifest", "manifest_bytes"]

SCHEMA = "farpoint.release-manifest/v1"


def build_manifest(
    *,
    release_id: int,
    model: str,
    model_version: int,
    model_digest: str,
    model_size: int,
    signature: dict[str, Any],
    label_column: str,
    classes: list[Any],
    golden: dict[str, Any],
    evaluation_id: int,
    author: str,
    created_at: datetime,
) -> dict[str, Any]:
    return {
        "schema": SCHEMA,
        "release_id": release_id,
        "model": model,
        "model_version": model_version,
        "model_ref": f"{model}@{model_version}",
        "model_digest": model_digest,
        "model_size": model_size,
        "signature": signature,
        "label_column": label_column,
        "classes": classes,
        "golden": golden,
        "evaluation_id": evaluation_id,
        "author": author,
        "created_at": created_at.isoformat(),
    }


def manifest_bytes(manifest: dict[str, Any]) -> bytes:
    """The exact bytes that are signed and hashed: canonical JSON."""
    return json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()
