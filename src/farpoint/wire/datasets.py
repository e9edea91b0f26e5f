"""Datasets, their immutable versions, and their governance: contracts, quality reports,
profiles, column classification, lineage, retention and erasure."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field

from farpoint.wire.common import ColumnRole, WireModel

__all__ = [
    "ClassificationOut",
    "ClassificationReview",
    "ColumnFinding",
    "ColumnSchema",
    "ContractOut",
    "ContractUpdate",
    "DatasetOut",
    "DatasetVersionOut",
    "ErasureCreate",
    "ErasureOut",
    "LineageOut",
    "PseudonymizeRequest",
    "QualityOut",
    "QualitySummary",
    "RetentionSweepOut",
    "RetentionUpdate",
    "RolesUpdate",
    "VersionComparison",
]

MAX_ERASURE_IDENTIFIERS = 10_000
"""Identifiers one erasure request may name (a request is bounded like every upload)."""


class ColumnSchema(WireModel):
    name: str
    dtype: str
    """Canonical Arrow type: bool, int64, float64, string, date32[day], timestamp[us]..."""
    nullable: bool


class QualitySummary(WireModel):
    passed: bool
    """No check of severity `error` failed."""
    errors: int
    warnings: int


class DatasetVersionOut(WireModel):
    dataset: str
    version: int
    ref: str
    """`NAME@VERSION`."""
    digest: str
    """Canonical content digest of the rows as registered (docs/data.md), the same whether
    they arrived as CSV, Parquet or a DataFrame."""
    size_bytes: int
    row_count: int
    columns: list[ColumnSchema]
    roles: dict[str, ColumnRole]
    source_filename: str
    source_format: str = "parquet"
    created_by: str
    created_at: datetime
    quality: QualitySummary | None = None
    contract_version: int | None = None
    """The contract version this version was validated against."""
    pending_classification: list[str] = Field(default_factory=list)
    """Columns proposed as PII or protected whose proposal nobody has reviewed yet."""
    schema_changes: list[dict[str, Any]] | None = None
    """How the columns changed from the previous version: `{"change": "added" | "removed" |
    "type_changed" | "nullability_changed" | "reordered", "column", "old", "new"}`; None
    for a first version."""
    parent: str | None = None
    """The version this one was derived from (`NAME@VERSION`)."""
    transform: dict[str, Any] | None = None
    rows_available: bool = True
    """False once the rows were purged (retention); digest, profile and lineage stay."""
    expires_at: datetime | None = None
    purged_at: datetime | None = None
    purge_reason: str | None = None
    erased_rows: int = 0
    """Rows removed from the stored version by erasure requests after registration: the
    stored rows then no longer match `digest`."""


class DatasetOut(WireModel):
    name: str
    team: str | None
    latest_version: int
    created_at: datetime
    retention_days: int | None = None
    contract_version: int | None = None


class RolesUpdate(WireModel):
    roles: dict[str, ColumnRole]


class ContractOut(WireModel):
    dataset: str
    version: int
    yaml: str
    spec: dict[str, Any]
    source: str
    created_by: str
    created_at: datetime


class ContractUpdate(WireModel):
    yaml: str = Field(max_length=1_000_000)


class QualityOut(WireModel):
    ref: str
    report: dict[str, Any]
    """`{"checks": [{"check", "column", "severity", "passed", "value", "threshold",
    "detail"}], "errors", "warnings", "passed"}`."""
    validation: dict[str, Any] | None
    """The contract validation: `{"passed", "failures": [...], "rows_checked"}`."""
    contract_version: int | None


class ColumnFinding(WireModel):
    column: str
    role: str
    """The proposed role: pii, protected or id."""
    kind: str
    confidence: float
    evidence: str
    source: str
    status: Literal["proposed", "accepted", "rejected"]
    reviewed_by: str | None = None


class ClassificationOut(WireModel):
    ref: str
    roles: dict[str, ColumnRole]
    findings: list[ColumnFinding]


class ClassificationReview(WireModel):
    """Accept or reject proposals; accepting sets the column to the proposed role."""

    accept: list[str] = Field(default_factory=list, max_length=10_000)
    reject: list[str] = Field(default_factory=list, max_length=10_000)


class VersionComparison(WireModel):
    dataset: str
    old: str
    new: str
    schema_changes: list[dict[str, Any]]
    columns: dict[str, Any]
    """Per column: dtype and null-rate changes, mean shift, PSI and JS distance over the
    old version's frozen bins, and a verdict."""


class PseudonymizeRequest(WireModel):
    columns: list[str] = Field(min_length=1, max_length=1000)


class RetentionUpdate(WireModel):
    days: int | None = Field(default=None, ge=1, le=36_500)
    """Rows of every version expire this many days after it was registered; null keeps them."""


class RetentionSweepOut(WireModel):
    purged: list[str]
    """`NAME@VERSION` of each version whose rows were purged by this sweep."""


class ErasureCreate(WireModel):
    column: str = Field(min_length=1, max_length=255)
    """The identifier column (an `id` or `pii` column), e.g. `mrn`."""
    identifiers: list[str | int] = Field(min_length=1, max_length=MAX_ERASURE_IDENTIFIERS)
    reason: str = Field(default="data subject request", max_length=500)


class ErasureOut(WireModel):
    id: int
    dataset: str
    column: str
    subjects: int
    rows_removed: int
    versions: list[dict[str, Any]]
    """`[{"ref", "rows_removed"}]`: every stored version the rows were purged from."""
    new_version: str | None
    """The version produced without the subjects' rows."""
    affected: dict[str, Any]
    """`{"runs": [...], "model_versions": [...], "releases": [...], "evaluations": [...]}`:
    everything trained or evaluated on data that held the rows."""
    reason: str
    created_by: str
    created_at: datetime


class LineageOut(WireModel):
    ref: str
    digest: str
    source: str
    """Where the rows came from: the uploaded file's name and format, or the transform."""
    ancestors: list[dict[str, Any]]
    """Parent first: `[{"ref", "digest", "transform", "source"}]` back to the upload."""
    descendants: list[str]
    """Versions derived from this one (pseudonymized, erased)."""
    runs: list[int]
    model_versions: list[str]
    releases: list[int]
    evaluations: list[int]
