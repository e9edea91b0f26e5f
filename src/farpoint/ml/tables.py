"""Stored tables back into pandas (ingest itself is `ml/ingest.py`)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from farpoint.core.errors import ValidationFailed

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["read_columns"]


def read_columns(path: Path, columns: Sequence[str]) -> tuple[pd.DataFrame, list[str]]:
    """The named columns of a stored Parquet file as a DataFrame (only those are read, so
    memory follows what is needed, not the width of the table), and the names it lacks."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        present = set(pq.read_schema(path).names)
        wanted = [c for c in dict.fromkeys(columns) if c in present]
        table = pq.read_table(path, columns=wanted)
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise ValidationFailed(f"stored table is not readable Parquet: {exc}") from exc
    return table.to_pandas(), [c for c in columns if c not in present]
