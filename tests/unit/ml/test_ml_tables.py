"""Stored canonical Parquet back into pandas."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from farpoint.core.errors import ValidationFailed
from farpoint.ml.ingest import ingest_file
from farpoint.ml.tables import to_pandas


def test_a_stored_version_reads_back_as_the_rows_uploaded(tmp_path: Path) -> None:
    csv = tmp_path / "people.csv"
    csv.write_text("name,age,score\nada,36,1.5\nbob,,2.0\n")
    result = ingest_file(csv, "people.csv", tmp_path)
    df = to_pandas(result.parquet_path.read_bytes())
    assert list(df.columns) == ["name", "age", "score"]
    assert df["name"].tolist() == ["ada", "bob"] and pd.isna(df["age"][1])


def test_bytes_that_are_not_parquet_are_refused() -> None:
    with pytest.raises(ValidationFailed, match="not readable Parquet"):
        to_pandas(b"PAR1 but not really")
