"""Stored canonical Parquet back into pandas, only the columns asked for."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from farpoint.core.errors import ValidationFailed
from farpoint.ml.ingest import ingest_file
from farpoint.ml.tables import read_columns


def test_a_stored_version_reads_back_the_columns_asked_for(tmp_path: Path) -> None:
    csv = tmp_path / "people.csv"
    csv.write_text("name,age,score\nada,36,1.5\nbob,,2.0\n")
    result = ingest_file(csv, "people.csv", tmp_path)
    df, missing = read_columns(result.parquet_path, ["score", "name", "height"])
    assert list(df.columns) == ["score", "name"] and missing == ["height"]
    assert df["name"].tolist() == ["ada", "bob"] and df["score"].tolist() == [1.5, 2.0]
    ages, _ = read_columns(result.parquet_path, ["age"])
    assert pd.isna(ages["age"][1])


def test_a_file_that_is_not_parquet_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"PAR1 but not really")
    with pytest.raises(ValidationFailed, match="not readable Parquet"):
        read_columns(bad, ["x"])
