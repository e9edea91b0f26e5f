"""Uploads: good files become canonical Parquet; bad ones are refused with the reason."""

from __future__ import annotations

import csv
import io

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from farpoint.core.digest import digest_bytes
from farpoint.core.errors import ValidationFailed
from farpoint.ml.tables import canonical_parquet, read_upload, schema_of, to_pandas

CSV = b"name,age,score\nada,36,0.5\nbob,,1.25\n"


def test_csv_upload_round_trips_through_canonical_parquet() -> None:
    table = read_upload(CSV, "people.csv")
    assert table.num_rows == 2
    assert schema_of(table) == [
        {"name": "name", "dtype": "string", "nullable": False},
        {"name": "age", "dtype": "int64", "nullable": True},
        {"name": "score", "dtype": "double", "nullable": False},
    ]
    df = to_pandas(canonical_parquet(table))
    assert list(df.columns) == ["name", "age", "score"]
    assert df["name"].tolist() == ["ada", "bob"]
    assert df["score"].tolist() == [0.5, 1.25]


def test_parquet_upload_by_extension_or_magic_bytes() -> None:
    buf = io.BytesIO()
    pq.write_table(pa.table({"x": [1, 2, 3]}), buf)
    for name in ("data.parquet", "data.pq", "export.bin"):
        assert read_upload(buf.getvalue(), name).column("x").to_pylist() == [1, 2, 3]


def test_canonical_bytes_ignore_pandas_metadata_and_chunking() -> None:
    df = pd.DataFrame({"b": [3, 1], "a": ["x", "y"]}, index=[10, 20])
    from_pandas = pa.Table.from_pandas(df, preserve_index=False)
    plain = pa.table({"b": [3, 1], "a": ["x", "y"]})
    chunked = pa.concat_tables([plain.slice(0, 1), plain.slice(1, 1)])
    out = canonical_parquet(from_pandas)
    assert out == canonical_parquet(plain) == canonical_parquet(chunked) == canonical_parquet(plain)
    assert pq.read_schema(io.BytesIO(out)).names == ["b", "a"]  # column order as given
    assert b"pandas" not in out


@pytest.mark.parametrize(
    ("data", "filename", "message"),
    [
        (b"", "x.csv", "empty"),
        (b"\n\n", "x.csv", "empty"),
        (b"a,b\n1,2\n3\n", "x.csv", "line 3 has 1 fields, the header has 2"),
        (b"a,b\n1,2,3\n", "x.csv", "line 2 has 3 fields"),
        (b"a,b\n\xff\xfe,1\n", "x.csv", "not UTF-8 text .*line 2"),
        (b"a,a\n1,2\n", "x.csv", "'a' appears more than once"),
        (b"a,,c\n1,2,3\n", "x.csv", "column 2 has an empty name"),
        (b"a,b\n", "x.csv", "no data rows"),
        (b"PAR1garbagePAR1", "x.parquet", "not a readable Parquet"),
        (b"a,b\n1,2\n", "x.xlsx", "cannot tell the format"),
    ],
)
def test_bad_uploads_are_refused_with_the_reason(data: bytes, filename: str, message: str) -> None:
    with pytest.raises(ValidationFailed, match=message):
        read_upload(data, filename)


def test_parquet_with_zero_rows_is_refused() -> None:
    buf = io.BytesIO()
    pq.write_table(pa.table({"x": pa.array([], pa.int64())}), buf)
    with pytest.raises(ValidationFailed, match="no data rows"):
        read_upload(buf.getvalue(), "empty.parquet")


names = st.lists(
    st.text(alphabet="abcdefghij_", min_size=1, max_size=6), min_size=1, max_size=4, unique=True
)
cell = st.one_of(
    st.integers(min_value=-(10**6), max_value=10**6),
    st.text(alphabet='xyz ,"é', min_size=1, max_size=5).filter(lambda s: s.strip() == s),
)


@settings(max_examples=40, deadline=None)
@given(names, st.data())
def test_csv_round_trip_keeps_values_and_a_stable_digest(
    cols: list[str], data: st.DataObject
) -> None:
    n_rows = data.draw(st.integers(min_value=1, max_value=5))
    # One type per column so the CSV reader infers it back; letters keep strings as strings.
    kinds = data.draw(st.lists(st.booleans(), min_size=len(cols), max_size=len(cols)))
    columns = {
        c: data.draw(
            st.lists(
                st.integers(min_value=-(10**6), max_value=10**6)
                if is_int
                else st.text(alphabet='xyz ,"é', min_size=1, max_size=5).map(lambda s: "k" + s),
                min_size=n_rows,
                max_size=n_rows,
            )
        )
        for c, is_int in zip(cols, kinds, strict=True)
    }
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(cols)
    writer.writerows(zip(*columns.values(), strict=True))
    raw = out.getvalue().encode("utf-8")

    first = canonical_parquet(read_upload(raw, "t.csv"))
    second = canonical_parquet(read_upload(raw, "t.csv"))
    assert digest_bytes(first) == digest_bytes(second)
    back = to_pandas(first)
    assert list(back.columns) == cols
    for c in cols:
        assert back[c].tolist() == columns[c]
