from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from farpoint.server.db import Base, utcnow


class Dataset(Base):
    __tablename__ = "datasets"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    retention_days: Mapped[int | None] = mapped_column(Integer)
    """Rows of each version expire this many days after it was registered (None: kept)."""


class DatasetVersion(Base):
    __tablename__ = "dataset_versions"
    __table_args__ = (UniqueConstraint("dataset_id", "version"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id"), index=True)
    version: Mapped[int]
    digest: Mapped[str] = mapped_column(String(71))
    """The canonical content digest of the rows as registered (ml/canonical.py); versions
    registered before it existed carry their Parquet blob's digest here."""
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    row_count: Mapped[int] = mapped_column(BigInteger)
    columns: Mapped[list[Any]]
    roles: Mapped[dict[str, Any]]
    source_filename: Mapped[str] = mapped_column(String(255))
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    blob_digest: Mapped[str | None] = mapped_column(String(71))
    """Where the rows are stored now (canonical Parquet); None once they were purged."""
    source_format: Mapped[str] = mapped_column(String(16), default="parquet")
    profile: Mapped[dict[str, Any] | None]
    quality: Mapped[dict[str, Any] | None]
    validation: Mapped[dict[str, Any] | None]
    contract_version: Mapped[int | None] = mapped_column(Integer)
    """The version of the dataset's contract this version was validated against."""
    classification: Mapped[dict[str, Any] | None]
    """Proposed column classifications and their review: column → finding + status."""
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("dataset_versions.id"))
    transform: Mapped[dict[str, Any] | None]
    """How a derived version was made from its parent (pseudonymize, erasure)."""
    expires_at: Mapped[datetime | None]
    purged_at: Mapped[datetime | None]
    purge_reason: Mapped[str | None] = mapped_column(String(16))
    schema_changes: Mapped[list[Any] | None]
    """How the columns changed from the previous version (ml.contract.schema_diff); None
    for a first version."""
    erased_rows: Mapped[int] = mapped_column(BigInteger, default=0)
    """Rows removed from this stored version by erasure requests after it was registered."""


class DatasetContract(Base):
    """The contract of a dataset, versioned: every edit is a new row."""

    __tablename__ = "dataset_contracts"
    __table_args__ = (UniqueConstraint("dataset_id", "version"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id"), index=True)
    version: Mapped[int]
    spec: Mapped[dict[str, Any]]
    yaml: Mapped[str] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(80))
    """`inferred from NAME@V` or `edited`."""
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class DatasetErasure(Base):
    """A data subject's rows erased by identifier. The identifiers themselves are not kept:
    only keyed hashes of them, so the record of an erasure holds no personal data."""

    __tablename__ = "dataset_erasures"
    id: Mapped[int] = mapped_column(primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id"), index=True)
    column: Mapped[str] = mapped_column(String(255))
    subject_hashes: Mapped[list[Any]]
    rows_removed: Mapped[int] = mapped_column(BigInteger)
    versions: Mapped[list[Any]]
    """`[{"ref", "rows_removed"}]` of each stored version the rows were purged from."""
    new_version: Mapped[int | None] = mapped_column(Integer)
    affected: Mapped[dict[str, Any]]
    """Runs, model versions and releases trained on data that held the rows."""
    reason: Mapped[str] = mapped_column(String(500))
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
