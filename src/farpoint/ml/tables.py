"""Stored tables back into pandas (ingest itself is `ml/ingest.py`)."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

from farpoint.core.errors import ValidationFailed

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["to_pandas"]


def to_pandas(parquet_bytes: bytes) -> pd.DataFrame:
    """A DataFrame from canonical Parquet bytes."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(io.BytesIO(parquet_bytes))
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise ValidationFailed(f"stored table is not readable Parquet: {exc}") from exc
    return table.to_pandas()
