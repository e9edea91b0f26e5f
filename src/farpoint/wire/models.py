"""Training runs and model versions."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field

from farpoint.wire.common import WireModel

__all__ = [
    "CodeRef",
    "GoldenVectors",
    "ModelOut",
    "ModelVersionMeta",
    "ModelVersionOut",
    "RunCreate",
    "RunOut",
    "Signature",
    "TensorSpec",
]


class CodeRef(WireModel):
    git_commit: str | None = None
    dirty: bool | None = None
    repository: str | None = None


class RunCreate(WireModel):
    name: str = Field(default="", max_length=200)
    params: dict[str, Any] = Field(default_factory=dict)
    metrics: dict[str, float] = Field(default_factory=dict)
    code: CodeRef = Field(default_factory=CodeRef)
    environment: dict[str, str] = Field(default_factory=dict)
    """Package name → version."""
    datasets: list[str] = Field(default_factory=list)
    """Dataset version references used, `NAME@VERSION`."""


class RunOut(RunCreate):
    id: int
    created_by: str
    created_at: datetime


class TensorSpec(WireModel):
    name: str
    dtype: Literal["float32", "float64", "int64", "int32", "string", "bool"]
    shape: list[int | None]
    """None is a free dimension (the batch)."""


class Signature(WireModel):
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]


class GoldenVectors(WireModel):
    """Rows and the outputs the model must reproduce on them (the device self-test)."""

    rows: list[dict[str, Any]]
    labels: list[int | str]
    probabilities: list[list[float]]


class ModelVersionMeta(WireModel):
    """What the SDK sends beside the ONNX file when it registers a version."""

    run_id: int
    framework: str = "sklearn"
    flavor: str = Field(default="", max_length=200)
    """The estimator, e.g. `Pipeline(StandardScaler, LogisticRegression)`."""
    signature: Signature
    label_column: str
    classes: list[int | str]
    golden: GoldenVectors
    parity: dict[str, Any] = Field(default_factory=dict)
    """The client-side parity check's figures (max probability difference, rows)."""
    policy: str | None = Field(default=None, max_length=200)
    """`NAME@VERSION` of the policy whose `data:` rules judge the training data (which
    quality failures block, which protected attributes may be inputs); the defaults when
    absent: a failed error-severity check blocks, no protected attribute as input."""


class ModelVersionOut(WireModel):
    model: str
    version: int
    ref: str
    digest: str
    size_bytes: int
    framework: str
    flavor: str
    signature: Signature
    label_column: str
    classes: list[int | str]
    golden: GoldenVectors
    parity: dict[str, Any]
    run_id: int
    datasets: list[str]
    data_policy: str | None = None
    """The policy whose `data:` rules judged the training data at registration (None: the
    defaults)."""
    status: Literal["registered", "evaluated", "approved", "released", "retired"]
    created_by: str
    created_at: datetime


class ModelOut(WireModel):
    name: str
    latest_version: int
    created_at: datetime
