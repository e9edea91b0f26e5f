"""The release manifest: what a device needs to verify, install and self-test a model."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

__all__ = ["SCHEMA", "build_manifest", "latency_budget_ms", "manifest_bytes"]

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
    latency_budget_ms: dict[str, float] | None = None,
) -> dict[str, Any]:
    """The manifest; `budgets` appears only when the release has one (older manifests,
    and the devices that read them, stay as they were)."""
    manifest: dict[str, Any] = {
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
    if latency_budget_ms:
        manifest["budgets"] = {"latency_p95_ms": dict(sorted(latency_budget_ms.items()))}
    return manifest


def latency_budget_ms(manifest: dict[str, Any]) -> dict[str, float]:
    """The manifest's latency budget per hardware profile; empty when it has none."""
    budgets = manifest.get("budgets") or {}
    return dict(budgets.get("latency_p95_ms") or {})


def manifest_bytes(manifest: dict[str, Any]) -> bytes:
    """The exact bytes that are signed and hashed: canonical JSON."""
    return json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()
