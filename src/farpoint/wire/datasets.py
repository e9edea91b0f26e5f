"""Datasets and their immutable versions."""

from __future__ import annotations

from datetime import datetime

from farpoint.wire.common import ColumnRole, WireModel

__all__ = ["ColumnSchema", "DatasetOut", "DatasetVersionOut", "RolesUpdate"]


class ColumnSchema(WireModel):
    name: str
    dtype: str
    """Arrow type name: int64, double, string, bool, timestamp[us]..."""
    nullable: bool


class DatasetVersionOut(WireModel):
    dataset: str
    version: int
    ref: str
    """`NAME@VERSION`."""
    digest: str
    """Content address of the canonical Parquet blob."""
    size_bytes: int
    row_count: int
    columns: list[ColumnSchema]
    roles: dict[str, ColumnRole]
    source_filename: str
    created_by: str
    created_at: datetime


class DatasetOut(WireModel):
    name: str
    team: str | None
    latest_version: int
    created_at: datetime


class RolesUpdate(WireModel):
    roles: dict[str, ColumnRole]
