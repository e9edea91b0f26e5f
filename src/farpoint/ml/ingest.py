"""Streaming ingest of tables: CSV, Parquet or Arrow batches in, canonical Parquet out.

Files are read in blocks and written row group by row group, so memory stays bounded however
large the file is; the digest is `farpoint.ml.canonical`'s, over the canonical rows. The CSV
rules are in `farpoint.ml.csv_types` (and docs/data.md), the CSV read in
`farpoint.ml.csv_reader`, the Parquet writing and hashing in `farpoint.ml.table_writer`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from farpoint.core.errors import PayloadTooLarge, ValidationFailed
from farpoint.ml.canonical import canonical_schema, cast_batch, type_named
from farpoint.ml.csv_reader import DEFAULT_BLOCK_SIZE, ingest_csv
from farpoint.ml.csv_types import NULL_TOKENS
from farpoint.ml.table_writer import (
    ROW_GROUP_ROWS,
    IngestResult,
    check_names,
    forced_kinds,
    write_all,
    writer_options,
)

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = [
    "DEFAULT_BLOCK_SIZE",
    "NULL_TOKENS",
    "ROW_GROUP_ROWS",
    "IngestResult",
    "dataframe_to_parquet_bytes",
    "ingest_batches",
    "ingest_file",
    "iter_batches",
]

_PARQUET_MAGIC = b"PAR1"


# ---------------------------------------------------------------------------------------------
# Public entry points


def ingest_file(
    path: Path,
    filename: str,
    out_dir: Path,
    *,
    types: Mapping[str, str] | None = None,
    max_bytes: int | None = None,
    block_size: int = DEFAULT_BLOCK_SIZE,
) -> IngestResult:
    """Read a CSV or Parquet file at `path` into canonical Parquet in `out_dir`.

    `filename` is the name the user gave (it decides the format and appears in errors);
    `types` forces column types by name. On any error nothing is left in `out_dir`.
    """
    size = path.stat().st_size
    if max_bytes is not None and size > max_bytes:
        raise PayloadTooLarge(
            f"{filename!r} is {size} bytes, larger than the limit of {max_bytes} bytes "
            "(FARPOINT_MAX_UPLOAD_BYTES)",
            limit=max_bytes,
        )
    if size == 0:
        raise ValidationFailed(f"{filename!r} is empty: expected a header row and data rows")
    if _format_of(path, filename, size) == "parquet":
        return _ingest_parquet(path, filename, out_dir, types or {})
    return ingest_csv(path, filename, out_dir, types or {}, block_size)


def ingest_batches(
    schema: pa.Schema,
    batches: Iterable[pa.RecordBatch],
    out_dir: Path,
    *,
    source_format: str = "arrow",
    allow_empty: bool = False,
) -> IngestResult:
    """Write already-typed batches as canonical Parquet in `out_dir`.

    `allow_empty` accepts zero rows, for tables derived from others (an erasure may remove
    every row); an upload with no rows is refused.
    """
    check_names(schema.names, "the table")
    target = canonical_schema(schema)
    return write_all(target, batches, out_dir, source_format, "the table", allow_empty)


def iter_batches(
    parquet_path: Path, columns: list[str] | None = None, batch_size: int = 65_536
) -> Iterator[pa.RecordBatch]:
    """Stream the rows of a stored table, optionally only some columns."""
    import pyarrow.parquet as pq

    parquet = pq.ParquetFile(parquet_path)
    missing = [c for c in columns or [] if c not in parquet.schema_arrow.names]
    if missing:
        parquet.close()
        raise ValidationFailed(
            f"the table has no column {missing[0]!r}; its columns are: "
            + ", ".join(parquet.schema_arrow.names),
            column=missing[0],
        )
    return _batches_then_close(parquet, columns, batch_size)


def dataframe_to_parquet_bytes(df: Any) -> bytes:
    """A pandas or polars DataFrame as canonical Parquet bytes, ready to upload.

    The pandas index is dropped unless it is named, in which case it becomes the first
    column(s). Other objects are refused with a TypeError.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = _table_of_dataframe(df)
    check_names(table.column_names, "the DataFrame")
    target = canonical_schema(table.schema)
    canonical = pa.Table.from_batches(
        [cast_batch(batch, target) for batch in table.to_batches()], schema=target
    )
    sink = pa.BufferOutputStream()
    options = writer_options(
        target, canonical.slice(0, ROW_GROUP_ROWS) if canonical.num_rows else None
    )
    with pq.ParquetWriter(sink, target, **options) as writer:
        writer.write_table(canonical, row_group_size=ROW_GROUP_ROWS)
    data: bytes = sink.getvalue().to_pybytes()
    return data


# ---------------------------------------------------------------------------------------------
# Format


def _format_of(path: Path, filename: str, size: int) -> str:
    lower = filename.lower()
    if lower.endswith((".parquet", ".pq")):
        return "parquet"
    if lower.endswith(".csv"):
        return "csv"
    # A name without a known extension is still fine when the bytes say Parquet.
    with open(path, "rb") as f:
        head = f.read(4)
        f.seek(max(size - 4, 0))
        tail = f.read(4)
    if head == _PARQUET_MAGIC and tail == _PARQUET_MAGIC:
        return "parquet"
    raise ValidationFailed(
        f"cannot tell the format of {filename!r}: use a .csv, .parquet or .pq file"
    )


# ---------------------------------------------------------------------------------------------
# Parquet and DataFrames


def _ingest_parquet(
    path: Path, filename: str, out_dir: Path, types: Mapping[str, str]
) -> IngestResult:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise ValidationFailed(f"{filename!r} is not a readable Parquet file: {exc}") from exc
    with parquet:
        schema = parquet.schema_arrow
        keep = [n for n in schema.names if n not in _pandas_index_columns(schema)]
        what = repr(filename)
        check_names(keep, what)
        forced = forced_kinds(types, keep, what)
        target = canonical_schema(pa.schema([schema.field(n) for n in keep]))
        for column, kind in forced.items():
            i = target.get_field_index(column)
            target = target.set(i, pa.field(column, type_named(kind)))

        def batches() -> Iterator[pa.RecordBatch]:
            try:
                yield from parquet.iter_batches(batch_size=65_536, columns=keep)
            except (pa.ArrowException, OSError) as exc:
                raise ValidationFailed(
                    f"{filename!r} is not a readable Parquet file: {exc}"
                ) from exc

        return write_all(target, batches(), out_dir, "parquet", what, allow_empty=False)


def _pandas_index_columns(schema: pa.Schema) -> set[str]:
    """Unnamed pandas index columns (`__index_level_0__`), which hold no user data."""
    meta = schema.pandas_metadata or {}
    return {
        c
        for c in meta.get("index_columns", [])
        if isinstance(c, str) and c.startswith("__index_level_")
    }


def _batches_then_close(
    parquet: Any, columns: list[str] | None, batch_size: int
) -> Iterator[pa.RecordBatch]:
    with parquet:
        yield from parquet.iter_batches(batch_size=batch_size, columns=columns)


def _table_of_dataframe(df: Any) -> pa.Table:
    import pyarrow as pa

    module = type(df).__module__.split(".")[0]
    kind = f"{module}.{type(df).__qualname__}"
    if module == "polars":
        if type(df).__name__ != "DataFrame":
            raise TypeError(f"expected a polars DataFrame, got a {kind} (collect it first)")
        table: pa.Table = df.to_arrow()
        return table
    if module != "pandas":
        raise TypeError(f"expected a pandas or polars DataFrame, got a {kind}")
    import pandas as pd

    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"expected a pandas or polars DataFrame, got a {kind}")
    check_names([str(c) for c in df.columns], "the DataFrame")
    named_index = any(name is not None for name in df.index.names)
    try:
        table = pa.Table.from_pandas(df, preserve_index=named_index)
    except (pa.ArrowInvalid, pa.ArrowTypeError, ValueError) as exc:
        raise ValidationFailed(f"cannot store this DataFrame: {exc}") from exc
    if named_index:
        index = [c for c in table.schema.pandas_metadata["index_columns"] if isinstance(c, str)]
        table = table.select(index + [c for c in table.column_names if c not in index])
    return table
