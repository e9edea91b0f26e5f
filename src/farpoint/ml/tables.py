"""Ingest of uploaded tables: CSV or Parquet in, one canonical Parquet encoding out."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Any

from farpoint.core.errors import ValidationFailed

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

__all__ = ["canonical_parquet", "read_upload", "schema_of", "to_pandas"]

_PARQUET_MAGIC = b"PAR1"
_CSV_SUFFIXES = (".csv",)
_PARQUET_SUFFIXES = (".parquet", ".pq")


def _format_of(data: bytes, filename: str) -> str:
    lower = filename.lower()
    if lower.endswith(_PARQUET_SUFFIXES):
        return "parquet"
    if lower.endswith(_CSV_SUFFIXES):
        return "csv"
    # A name without a known extension is still fine when the bytes say Parquet.
    if data[:4] == _PARQUET_MAGIC and data[-4:] == _PARQUET_MAGIC:
        return "parquet"
    raise ValidationFailed(
        f"cannot tell the format of {filename!r}: use a .csv, .parquet or .pq file"
    )


def _check_header(data: bytes, filename: str) -> list[str]:
    """The header's column names; raises on an empty file, a bad encoding or bad names."""
    import csv

    if not data.strip():
        raise ValidationFailed(f"{filename!r} is empty: expected a header row and data rows")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ValidationFailed(
            f"{filename!r} is not UTF-8 text (undecodable byte at line {line}, "
            f"byte offset {exc.start}): save it as UTF-8 CSV"
        ) from exc
    header = next(csv.reader(io.StringIO(text)), [])
    if not header or all(not name.strip() for name in header):
        raise ValidationFailed(f"{filename!r} has no header row naming the columns")
    _check_names(header, filename)
    _check_field_counts(text, len(header), filename)
    return header


def _check_field_counts(text: str, expected: int, filename: str) -> None:
    import csv

    reader = csv.reader(io.StringIO(text))
    next(reader, None)
    for row in reader:
        if not row:  # blank lines are skipped by the parser too
            continue
        if len(row) != expected:
            raise ValidationFailed(
                f"{filename!r} line {reader.line_num} has {len(row)} fields, "
                f"the header has {expected}"
            )


def _check_names(names: list[str], filename: str) -> None:
    seen: set[str] = set()
    for position, name in enumerate(names, start=1):
        if not str(name).strip():
            raise ValidationFailed(f"{filename!r}: column {position} has an empty name")
        if name in seen:
            raise ValidationFailed(f"{filename!r}: column name {name!r} appears more than once")
        seen.add(name)


def _read_csv(data: bytes, filename: str) -> pa.Table:
    import pyarrow as pa
    import pyarrow.csv as pacsv

    _check_header(data, filename)
    try:
        return pacsv.read_csv(
            io.BytesIO(data),
            read_options=pacsv.ReadOptions(encoding="utf8"),
            parse_options=pacsv.ParseOptions(newlines_in_values=True),
        )
    except pa.ArrowInvalid as exc:
        raise ValidationFailed(f"{filename!r} is not a readable CSV file: {exc}") from exc


def _read_parquet(data: bytes, filename: str) -> pa.Table:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(io.BytesIO(data))
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise ValidationFailed(f"{filename!r} is not a readable Parquet file: {exc}") from exc
    _check_names(table.column_names, filename)
    return table


def read_upload(data: bytes, filename: str) -> pa.Table:
    """Parse an uploaded CSV or Parquet file; ValidationFailed says what is wrong and where."""
    if not data:
        raise ValidationFailed(f"{filename!r} is empty: expected a header row and data rows")
    fmt = _format_of(data, filename)
    table = _read_csv(data, filename) if fmt == "csv" else _read_parquet(data, filename)
    if table.num_columns == 0:
        raise ValidationFailed(f"{filename!r} has no columns")
    if table.num_rows == 0:
        raise ValidationFailed(f"{filename!r} has a header but no data rows")
    return table


def _canonical_type(arrow_type: pa.DataType) -> pa.DataType:
    import pyarrow as pa

    if pa.types.is_large_string(arrow_type) or pa.types.is_string_view(arrow_type):
        return pa.string()
    if pa.types.is_large_binary(arrow_type) or pa.types.is_binary_view(arrow_type):
        return pa.binary()
    return arrow_type


def canonical_parquet(table: pa.Table) -> bytes:
    """One byte-exact Parquet encoding of `table`: same table in, same bytes out."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    # Only the data decides the bytes: drop schema metadata (pandas index, writer details)
    # and fold the large/view string variants (pandas 3 makes large_string) into one type.
    fields = [pa.field(f.name, _canonical_type(f.type), nullable=f.nullable) for f in table.schema]
    clean = table.replace_schema_metadata(None).cast(pa.schema(fields))
    sink = pa.BufferOutputStream()
    pq.write_table(
        clean.combine_chunks(),
        sink,
        compression="zstd",
        compression_level=3,
        use_dictionary=True,
        write_statistics=True,
        version="2.6",
        data_page_version="1.0",
        row_group_size=1 << 20,
    )
    encoded: bytes = sink.getvalue().to_pybytes()
    return encoded


def schema_of(table: pa.Table) -> list[dict[str, Any]]:
    """`[{"name", "dtype", "nullable"}]`; nullable means the column holds at least one null."""
    return [
        {"name": field.name, "dtype": str(field.type), "nullable": column.null_count > 0}
        for field, column in zip(table.schema, table.columns, strict=True)
    ]


def to_pandas(parquet_bytes: bytes) -> pd.DataFrame:
    """A DataFrame from canonical Parquet bytes."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(io.BytesIO(parquet_bytes))
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise ValidationFailed(f"stored table is not readable Parquet: {exc}") from exc
    return table.to_pandas()
