"""Helpers that drive the data → model → evaluation → release path through the API."""

from __future__ import annotations

import io
import json
from typing import Any

from conftest import bearer


def upload_csv(api: Any, token: str, name: str, frame: Any, roles: dict[str, str]) -> Any:
    buf = io.BytesIO()
    frame.to_csv(buf, index=False)
    return api.post(
        f"/api/v1/datasets/{name}/versions",
        files={"file": (f"{name}.csv", buf.getvalue(), "text/csv")},
        data={"roles": json.dumps(roles)},
        headers=bearer(token),
    )


def register_model(api: Any, token: str, converted: Any, run_id: int, label: str) -> Any:
    meta = {
        "run_id": run_id,
        "framework": "sklearn",
        "flavor": "Pipeline",
        "signature": converted.signature,
        "label_column": label,
        "classes": converted.classes,
        "golden": converted.golden,
        "parity": converted.parity,
    }
    return api.post(
        "/api/v1/models/deterioration/versions",
        files={"file": ("model.onnx", converted.onnx_bytes, "application/octet-stream")},
        data={"meta": json.dumps(meta)},
        headers=bearer(token),
    )
