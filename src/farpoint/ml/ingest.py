"""Streaming ingest of tables: CSV, Parquet or Arrow batches in, canonical Parquet out.

Files are read in blocks and written row group by row group, so memory stays bounded however
large the file is; the digest is `farpoint.ml.canonical`'s, over the canonical rows.

CSV rules (docs/data.md says the same for users):

- UTF-8 (a byte-order mark is ignored), comma-separated, a header row naming the columns.
  Fields may be double-quoted; "" inside quotes is one quote, and quoted fields may span
  lines. Blank lines are skipped. Every row has one field per header column.
- Null: an empty field, or a field that is exactly NA, N/A, null, NULL, NaN or nan (quoted
  or not). Nulls never decide a column's type.
- Values are taken as written: spaces are part of the value, so " 12" is text.
- The categories of a non-null value: bool is true or false in any letter case; integer is
  an optional sign and the digits 0-9; number is an integer, a decimal with an optional
  fraction and exponent (1.5, .5, 5., -1e-3, 2E+10), or inf / infinity in any case with an
  optional sign; date is YYYY-MM-DD; date-time is a date, then T or a space, then hh, hh:mm,
  hh:mm:ss or hh:mm:ss.f with 1 to 6 fraction digits, and it has a UTC offset if it then
  ends in Z, ±hh, ±hhmm or ±hh:mm; text is anything else.
- A column's type comes from all its values, the whole file: only bools → bool; only
  integers → int64; integers and numbers → float64; only dates → date32[day]; dates and
  date-times without offsets → timestamp[us]; date-times all with offsets →
  timestamp[us, tz=UTC], converted to UTC; only text, or only nulls → string.
- Any other mixture is refused, naming the column and the first line of each kind: text
  with numbers (or any typed value), numbers with dates, true/false with numbers, date-times
  with and without offsets. `types={"col": "string"}` keeps such a column as text.
- A value of a category that is not real (2023-02-30, hour 25, an integer outside int64) is
  refused with its line.
- `types` forces a column's type; every non-null value must then belong to it (float64
  takes integers, timestamp[us] takes dates, string takes anything).

How: one streaming read with every column as a string, block by block. The first block
decides each column's type; each later block is checked and converted with vectorised Arrow
casts, falling back to exact regular expressions for a block the fast check does not clear.
When a later block widens a type (an int64 column meets 2.5) the read starts over with the
wider type, so the rules hold for the whole file at the cost of one more read.
"""

from __future__ import annotations

import os
import queue
import re
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from farpoint.core.errors import PayloadTooLarge, ValidationFailed
from farpoint.ml.canonical import TableHasher, canonical_schema, cast_batch, type_key, type_named

if TYPE_CHECKING:
    import numpy as np
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

NULL_TOKENS = ("", "NA", "N/A", "null", "NULL", "NaN", "nan")
# Arrow's CSV reader keeps several blocks in flight: peak memory is about 25 times the block
# size, so 8 MiB blocks cost ~250 MB where 1 MiB blocks cost ~40 MB at the same speed.
DEFAULT_BLOCK_SIZE = 1 << 20
_MAX_BLOCK_SIZE = 64 << 20
ROW_GROUP_ROWS = 131_072
# Very wide rows cut a row group short, so that it never holds more than this in memory.
_ROW_GROUP_MAX_BYTES = 64 << 20
_PARQUET_MAGIC = b"PAR1"

_BOOL_WORDS = ("true", "false")
_INT_RE = r"^[+-]?[0-9]+$"
_NUMBER_RE = r"^[+-]?(?:(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|(?i:inf|infinity))$"
_DATE = r"[0-9]{4}-[0-9]{2}-[0-9]{2}"
_TIME = r"[T ][0-9]{2}(?::[0-9]{2}(?::[0-9]{2}(?:\.[0-9]{1,6})?)?)?"
_OFFSET = r"(?:Z|[+-][0-9]{2}(?::?[0-9]{2})?)"
_DATE_RE = f"^{_DATE}$"
_DATETIME_RE = f"^{_DATE}{_TIME}$"
_DATETIME_TZ_RE = f"^{_DATE}{_TIME}{_OFFSET}$"
_TYPED_RE = f"^(?:(?i:true|false)|{_NUMBER_RE[1:-1]}|{_DATE}(?:{_TIME}{_OFFSET}?)?)$"
# A non-text value starts with a digit, a sign or a dot, or is one of a few words; a block of
# text with neither needs no regular expression at all.
_NUMERIC_FIRST_BYTES = b"0123456789+-."
_WORDS = ("true", "false", "inf", "infinity")

# Characters that only Arrow's lenient casts accept in a column of this type (see _fast).
_CAST_EXTRAS = {
    "bool": (b"0", b"1"),
    "int64": (b"x", b"X"),
    "float64": (b"n", b"N"),
    "date32": (b"0000-",),
    "timestamp_us": (b"0000-",),
    "timestamp_us_utc": (b"0000-",),
}
# A value's category → the column type that holds it; a type → the categories it takes.
_KIND_OF = {
    "bool": "bool",
    "int": "int64",
    "number": "float64",
    "date": "date32",
    "datetime": "timestamp_us",
    "datetime_tz": "timestamp_us_utc",
    "text": "string",
}
_TAKES = {
    "bool": {"bool"},
    "int64": {"int"},
    "float64": {"int", "number"},
    "date32": {"date"},
    "timestamp_us": {"date", "datetime"},
    "timestamp_us_utc": {"datetime_tz"},
    "string": set(_KIND_OF),
}
_FAMILY = {
    "bool": "true/false values",
    "int": "numbers",
    "number": "numbers",
    "date": "dates",
    "datetime": "date-times",
    "datetime_tz": "date-times with a UTC offset",
    "text": "text",
}
_INVALID = {
    "int64": "does not fit in a 64-bit integer",
    "date32": "is not a calendar date",
    "timestamp_us": "is not a valid date-time",
    "timestamp_us_utc": "is not a valid date-time",
}


@dataclass(frozen=True)
class IngestResult:
    """A canonical Parquet file written by an ingest, and what it holds."""

    parquet_path: Path
    digest: str
    columns: list[dict[str, Any]]  # [{"name", "dtype", "nullable"}]
    row_count: int
    size_bytes: int
    source_format: str


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
    if _format_of(path, filename) == "parquet":
        return _ingest_parquet(path, filename, out_dir, types or {})
    return _ingest_csv(path, filename, out_dir, types or {}, block_size)


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
    _check_names(schema.names, "the table")
    target = canonical_schema(schema)
    return _write_all(target, batches, out_dir, source_format, "the table", allow_empty)


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
    _check_names(table.column_names, "the DataFrame")
    target = canonical_schema(table.schema)
    canonical = pa.Table.from_batches(
        [cast_batch(batch, target) for batch in table.to_batches()], schema=target
    )
    sink = pa.BufferOutputStream()
    with pq.ParquetWriter(sink, target, **_writer_options()) as writer:
        writer.write_table(canonical, row_group_size=ROW_GROUP_ROWS)
    data: bytes = sink.getvalue().to_pybytes()
    return data


# ---------------------------------------------------------------------------------------------
# Format, names and types


def _format_of(path: Path, filename: str) -> str:
    lower = filename.lower()
    if lower.endswith((".parquet", ".pq")):
        return "parquet"
    if lower.endswith(".csv"):
        return "csv"
    # A name without a known extension is still fine when the bytes say Parquet.
    with open(path, "rb") as f:
        head = f.read(4)
        f.seek(max(path.stat().st_size - 4, 0))
        tail = f.read(4)
    if head == _PARQUET_MAGIC and tail == _PARQUET_MAGIC:
        return "parquet"
    raise ValidationFailed(
        f"cannot tell the format of {filename!r}: use a .csv, .parquet or .pq file"
    )


def _check_names(names: list[str], what: str, *, header: bool = False) -> None:
    if not names:
        raise ValidationFailed(f"{what} has no columns")
    if header and all(not str(name).strip() for name in names):
        raise ValidationFailed(f"{what} has no header row naming the columns")
    seen: set[str] = set()
    for position, name in enumerate(names, start=1):
        if not str(name).strip():
            raise ValidationFailed(
                f"{what}: column {position} has an empty name; give every column a name",
                column_position=position,
            )
        if name in seen:
            raise ValidationFailed(
                f"{what}: column name {name!r} appears more than once; names must be unique",
                column=name,
            )
        seen.add(name)


def _forced_kinds(types: Mapping[str, str], names: list[str], what: str) -> dict[str, str]:
    kinds = {}
    for column, type_name in types.items():
        if column not in names:
            raise ValidationFailed(
                f"types names column {column!r}, which {what} does not have; its columns are: "
                + ", ".join(names),
                column=column,
            )
        key = type_key(type_named(type_name))
        assert key is not None  # type_named only returns canonical types
        kinds[column] = key
    return kinds


# ---------------------------------------------------------------------------------------------
# Writing: one canonical Parquet file, hashed on the way


def _writer_options() -> dict[str, Any]:
    # Fixed settings, so one library version writes the same rows to the same bytes. A small
    # dictionary page limit gives up early on columns with many distinct values, where
    # building a dictionary only to drop it is most of the cost of writing them.
    return {
        "compression": "zstd",
        "compression_level": 1,
        "use_dictionary": True,
        "dictionary_pagesize_limit": 64 << 10,
        "write_statistics": True,
        "version": "2.6",
        "data_page_version": "1.0",
    }


def _dtype_name(arrow_type: pa.DataType) -> str:
    # Arrow calls float64 "double"; the API, contracts and profiles say float64.
    return "float64" if str(arrow_type) == "double" else str(arrow_type)


class _Sink:
    """Hashes canonical batches and writes them to a temporary file, in a second thread.

    The reading thread parses and converts; this one hashes and encodes Parquet, about as
    much work again, so on two cores the two overlap.
    """

    def __init__(self, schema: pa.Schema, out_dir: Path, source_format: str) -> None:
        import pyarrow.parquet as pq

        self._hasher = TableHasher(schema)
        fd, name = tempfile.mkstemp(dir=out_dir, prefix="ingest-", suffix=".parquet.part")
        os.close(fd)
        self.part = Path(name)
        self.schema = schema
        self.rows = 0
        self._source_format = source_format
        self._nulls = [0] * len(schema)
        try:
            self._writer = pq.ParquetWriter(str(self.part), schema, **_writer_options())
        except BaseException:
            self.part.unlink(missing_ok=True)
            raise
        # Bounded, so a slow disk holds the reader back instead of filling memory.
        self._queue: queue.Queue[pa.RecordBatch | None] = queue.Queue(maxsize=4)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._drain, name="ingest-writer", daemon=True)
        self._thread.start()

    def write(self, batch: pa.RecordBatch) -> None:
        for i, column in enumerate(batch.columns):
            self._nulls[i] += column.null_count
        self.rows += batch.num_rows
        while True:
            if self._error is not None:
                raise self._error
            try:
                self._queue.put(batch, timeout=0.1)
                return
            except queue.Full:
                continue

    def finish(self) -> IngestResult:
        self._stop()
        self._writer.close()
        final = self.part.with_name(self.part.name.removesuffix(".part"))
        os.replace(self.part, final)
        columns = [
            {"name": field.name, "dtype": _dtype_name(field.type), "nullable": nulls > 0}
            for field, nulls in zip(self.schema, self._nulls, strict=True)
        ]
        return IngestResult(
            parquet_path=final,
            digest=self._hasher.hexdigest(),
            columns=columns,
            row_count=self.rows,
            size_bytes=final.stat().st_size,
            source_format=self._source_format,
        )

    def abort(self) -> None:
        try:
            self._stop()
            self._writer.close()
        except BaseException:  # the original error matters more than this one
            pass
        finally:
            self.part.unlink(missing_ok=True)

    def _stop(self) -> None:
        self._queue.put(None)
        self._thread.join()
        if self._error is not None:
            raise self._error

    def _drain(self) -> None:
        import pyarrow as pa

        pending: list[pa.RecordBatch] = []
        rows = nbytes = 0
        while (batch := self._queue.get()) is not None:
            if self._error is not None:
                continue  # keep taking batches so the producer never blocks
            try:
                self._hasher.update(batch)
                pending.append(batch)
                rows += batch.num_rows
                nbytes += batch.nbytes
                # Exact row groups whatever the batch sizes, so chunking never shows in the file.
                while rows >= ROW_GROUP_ROWS or nbytes >= _ROW_GROUP_MAX_BYTES:
                    table = pa.Table.from_batches(pending, schema=self.schema)
                    take = min(rows, ROW_GROUP_ROWS)
                    self._writer.write_table(table.slice(0, take), row_group_size=take)
                    rest = table.slice(take)
                    pending, rows, nbytes = rest.to_batches(), rest.num_rows, rest.nbytes
            except BaseException as exc:
                self._error = exc
        if self._error is None and rows:
            try:
                table = pa.Table.from_batches(pending, schema=self.schema)
                self._writer.write_table(table, row_group_size=rows)
            except BaseException as exc:
                self._error = exc


def _write_all(
    target: pa.Schema,
    batches: Iterable[pa.RecordBatch],
    out_dir: Path,
    source_format: str,
    what: str,
    allow_empty: bool,
) -> IngestResult:
    sink = _Sink(target, out_dir, source_format)
    try:
        for batch in batches:
            if batch.num_rows:
                sink.write(cast_batch(batch, target))
        if not sink.rows and not allow_empty:
            raise ValidationFailed(f"{what} has columns but no rows")
        return sink.finish()
    except BaseException:
        sink.abort()
        raise


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
        _check_names(keep, what)
        forced = _forced_kinds(types, keep, what)
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

        return _write_all(target, batches(), out_dir, "parquet", what, allow_empty=False)


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
    _check_names([str(c) for c in df.columns], "the DataFrame")
    named_index = any(name is not None for name in df.index.names)
    try:
        table = pa.Table.from_pandas(df, preserve_index=named_index)
    except (pa.ArrowInvalid, pa.ArrowTypeError, ValueError) as exc:
        raise ValidationFailed(f"cannot store this DataFrame: {exc}") from exc
    if named_index:
        index = [c for c in table.schema.pandas_metadata["index_columns"] if isinstance(c, str)]
        table = table.select(index + [c for c in table.column_names if c not in index])
    return table


# ---------------------------------------------------------------------------------------------
# CSV


class _Retry(Exception):
    """A later block widened a column's type: read the file again with these types."""

    def __init__(self, kinds: dict[str, str]) -> None:
        super().__init__("retry")
        self.kinds = kinds


class _BlockTooSmall(Exception):
    """One row is longer than a block."""


class _AtRows(Exception):
    """A problem at data rows (0-based), turned into a message once lines are known."""

    def __init__(
        self, rows: list[int], message: Callable[[dict[int, str]], str], **extra: Any
    ) -> None:
        super().__init__("at rows")
        self.rows = rows
        self.message = message
        self.extra = extra


class _Column:
    """What an ingest knows about one CSV column: its type so far and first values seen."""

    __slots__ = ("first", "forced", "kind", "name")

    def __init__(self, name: str, kind: str, forced: bool) -> None:
        self.name = name
        self.kind = kind
        self.forced = forced
        self.first: dict[str, tuple[int, str]] = {}  # category → (row, value) first seen


def _ingest_csv(
    path: Path, filename: str, out_dir: Path, types: Mapping[str, str], block_size: int
) -> IngestResult:
    what = repr(filename)
    names = _csv_names(path, filename, block_size)
    forced = _forced_kinds(types, names, what)
    kinds: dict[str, str] | None = None
    # Each retry widens a column's type in a finite order, so this ends.
    for _ in range(4 * len(names) + 8):
        try:
            return _csv_pass(path, filename, out_dir, names, forced, kinds, block_size)
        except _Retry as retry:
            kinds = retry.kinds
        except _BlockTooSmall:
            if block_size >= _MAX_BLOCK_SIZE:
                raise ValidationFailed(
                    f"{what} has a row longer than {_MAX_BLOCK_SIZE} bytes; is a quote left open?"
                ) from None
            block_size = min(block_size * 8, _MAX_BLOCK_SIZE)
        except _AtRows as problem:
            lines = _lines_of_rows(path, problem.rows)
            where = {
                row: f"line {line}" if line else f"data row {row + 1}"
                for row, line in lines.items()
            }
            line = lines[problem.rows[-1]]
            raise ValidationFailed(
                f"{what}: " + problem.message(where),
                **problem.extra,
                **({"line": line} if line else {}),
            ) from None
    raise RuntimeError("column types did not settle")  # pragma: no cover


def _open_csv(path: Path, block_size: int, names: list[str] | None) -> Any:
    import pyarrow as pa
    import pyarrow.csv as pacsv

    convert = (
        pacsv.ConvertOptions(
            column_types={name: pa.string() for name in names},
            null_values=list(NULL_TOKENS),
            strings_can_be_null=True,
            quoted_strings_can_be_null=True,
        )
        if names is not None
        else pacsv.ConvertOptions()
    )
    return pacsv.open_csv(
        str(path),
        read_options=pacsv.ReadOptions(block_size=block_size, use_threads=False),
        parse_options=pacsv.ParseOptions(newlines_in_values=True),
        convert_options=convert,
    )


def _csv_names(path: Path, filename: str, block_size: int) -> list[str]:
    import pyarrow as pa

    # Opening a reader parses (and infers types for) one block: keep it small, it is thrown away.
    block_size = min(block_size, 64 << 10)
    while True:
        try:
            reader = _open_csv(path, block_size, None)
            names: list[str] = reader.schema.names
            reader.close()
            break
        except UnicodeDecodeError as exc:
            raise _not_utf8(path, filename) from exc
        except pa.ArrowInvalid as exc:
            if "Empty CSV" in str(exc):
                if _is_blank(path):
                    raise ValidationFailed(
                        f"{filename!r} is empty: expected a header row and data rows"
                    ) from exc
                raise ValidationFailed(f"{filename!r} has a header but no data rows") from exc
            problem = _csv_failure(exc, path, filename, None)
            if isinstance(problem, _BlockTooSmall) and block_size < _MAX_BLOCK_SIZE:
                block_size = min(block_size * 8, _MAX_BLOCK_SIZE)
                continue
            raise problem from exc
    if all(not name.strip() for name in names) and _is_blank(path):
        raise ValidationFailed(f"{filename!r} is empty: expected a header row and data rows")
    _check_names(names, repr(filename), header=True)
    return names


def _csv_pass(
    path: Path,
    filename: str,
    out_dir: Path,
    names: list[str],
    forced: dict[str, str],
    kinds: dict[str, str] | None,
    block_size: int,
) -> IngestResult:
    import pyarrow as pa

    try:
        reader = _open_csv(path, block_size, names)
    except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
        raise _csv_failure(exc, path, filename, len(names)) from exc
    columns = [
        _Column(n, forced.get(n) or (kinds or {}).get(n, "string"), n in forced) for n in names
    ]
    sink: _Sink | None = None
    row = 0
    try:
        while True:
            try:
                batch = reader.read_next_batch()
            except StopIteration:
                break
            except pa.ArrowInvalid as exc:
                raise _csv_failure(exc, path, filename, len(names)) from exc
            if not batch.num_rows:
                continue
            if sink is None:
                if kinds is None:
                    _plan(columns, batch)
                schema = pa.schema([pa.field(c.name, type_named(c.kind)) for c in columns])
                sink = _Sink(schema, out_dir, "csv")
            try:
                arrays = [_convert(c, batch.column(i), row) for i, c in enumerate(columns)]
            except _Retry as retry:
                retry.kinds = {c.name: c.kind for c in columns} | retry.kinds
                raise
            sink.write(pa.RecordBatch.from_arrays(arrays, schema=sink.schema))
            row += batch.num_rows
        if sink is None:
            raise ValidationFailed(f"{filename!r} has a header but no data rows")
        return sink.finish()
    except BaseException:
        if sink is not None:
            sink.abort()
        raise
    finally:
        reader.close()


def _plan(columns: list[_Column], batch: pa.RecordBatch) -> None:
    """Give each column not forced the type its first block asks for."""
    for i, column in enumerate(columns):
        if column.forced:
            continue
        found = _classify(batch.column(i), 0)
        kind = _join(set(found))
        if kind is None:
            raise _mixed(column.name, found)
        column.kind = kind
        column.first = found


def _join(categories: set[str]) -> str | None:
    """The narrowest type taking every category; None when they do not mix."""
    if categories <= {"text"}:
        return "string"
    if "text" in categories:
        return None
    for kind in ("bool", "int64", "float64", "date32", "timestamp_us", "timestamp_us_utc"):
        if categories <= _TAKES[kind]:
            return kind
    return None


def _convert(column: _Column, values: pa.Array, row0: int) -> pa.Array:
    """`values` (strings) as the column's type; raises when the block does not fit it."""
    import pyarrow as pa

    if values.null_count == len(values):
        return pa.nulls(len(values), type_named(column.kind))
    if column.forced and column.kind == "string":
        return values
    converted = _fast(column.kind, values)
    if converted is None:
        return _convert_exactly(column, values, row0)
    category = _representative(column.kind)
    if category not in column.first:
        i = 0 if not values.null_count else _first_index(values.is_valid())
        column.first[category] = (row0 + i, values[i].as_py())
    return converted


def _representative(kind: str) -> str:
    return next(c for c, k in _KIND_OF.items() if k == kind)


def _fast(kind: str, values: pa.Array) -> pa.Array | None:
    """The converted block when cheap vectorised checks prove every value fits; else None."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if kind == "string":
        return None if _may_be_typed(values) else values
    # Arrow's casts take a little more than the rules (1 and 0 as booleans, hex integers, nan
    # spellings, the year 0): a block holding the characters those need goes the exact way.
    excluded = _CAST_EXTRAS.get(kind)
    if excluded is not None:
        raw = _data_bytes(values)
        if any(byte in raw for byte in excluded):
            return None
    try:
        converted: pa.Array = pc.cast(values, type_named(kind))
    except pa.ArrowInvalid:
        return None
    return converted


def _convert_exactly(column: _Column, values: pa.Array, row0: int) -> pa.Array:
    found = _classify(values, row0)
    if column.forced:
        wrong = sorted((rv, c) for c, rv in found.items() if c not in _TAKES[column.kind])
        if wrong:
            (bad_row, bad_value), category = wrong[0]
            raise _AtRows(
                [bad_row],
                lambda where: (
                    f"column {column.name!r} is set to {type_named(column.kind)} but "
                    f"{where[bad_row]} has {bad_value!r}, which is {_FAMILY[category]}; "
                    "fix the value or choose another type"
                ),
                column=column.name,
            )
    else:
        merged = {**found, **column.first}  # the earlier occurrence wins
        kind = _join(set(merged))
        if kind is None:
            raise _mixed(column.name, merged)
        if kind != column.kind:
            raise _Retry({column.name: kind})
    for category, first in found.items():
        column.first.setdefault(category, first)
    return _cast_or_locate(column, values, row0)


def _cast_or_locate(column: _Column, values: pa.Array, row0: int) -> pa.Array:
    """Cast values whose categories fit; a value that only looks right is located."""
    import pyarrow as pa
    import pyarrow.compute as pc

    kind = column.kind
    if kind == "string":
        return values
    if kind == "bool":
        return pc.equal(pc.binary_length(values), 4)
    target = type_named(kind)

    def cast(v: pa.Array) -> pa.Array:
        if kind in ("int64", "float64"):
            v = pc.replace_substring_regex(v, r"^\+", "")  # Arrow refuses "+5" as an integer
        elif pc.any(pc.starts_with(v, "0000-")).as_py():
            # Arrow takes the year 0; Python's datetime, and so pandas and every client, cannot.
            raise pa.ArrowInvalid("year 0")
        result: pa.Array = pc.cast(v, target)
        return result

    try:
        return cast(values)
    except pa.ArrowInvalid:
        pass
    lo, hi = 0, len(values)
    while hi - lo > 1:  # bisect to the first value the cast refuses
        mid = (lo + hi) // 2
        try:
            cast(values.slice(lo, mid - lo))
            lo = mid
        except pa.ArrowInvalid:
            hi = mid
    bad_row, bad_value = row0 + lo, values[lo].as_py()
    raise _AtRows(
        [bad_row],
        lambda where: (
            f"column {column.name!r}: {where[bad_row]} has {bad_value!r}, which "
            f"{_INVALID.get(kind, 'is not valid')}; fix it, or pass "
            f"types={{{column.name!r}: 'string'}} to keep the column as text"
        ),
        column=column.name,
    )


def _mixed(name: str, first: dict[str, tuple[int, str]]) -> _AtRows:
    ordered = sorted(first.items(), key=lambda item: item[1][0])
    settled, (row_a, value_a) = ordered[0]
    odd, (row_b, value_b) = next((c, rv) for c, rv in ordered[1:] if _join({settled, c}) is None)
    if {settled, odd} == {"datetime", "datetime_tz"} or {settled, odd} == {"date", "datetime_tz"}:
        advice = "give every value a UTC offset, or none"
    else:
        advice = f"clean the column, or pass types={{{name!r}: 'string'}} to keep it all as text"
    if any(v != v.strip() for v in (value_a, value_b)):
        advice += " (spaces around a value make it text)"

    def message(where: dict[int, str]) -> str:
        return (
            f"column {name!r} mixes {_FAMILY[settled]} and {_FAMILY[odd]}: {where[row_a]} has "
            f"{value_a!r} but {where[row_b]} has {value_b!r}; {advice}"
        )

    return _AtRows([row_a, row_b], message, column=name)


def _classify(values: pa.Array, row0: int) -> dict[str, tuple[int, str]]:
    """Category → (row, value) of its first non-null value in this block, exactly by the rules."""
    import pyarrow.compute as pc

    found: dict[str, tuple[int, str]] = {}
    valid = len(values) - values.null_count
    if not valid:
        return found

    def note(category: str, mask: pa.Array) -> None:
        i = _first_index(mask)
        if i >= 0:
            found[category] = (row0 + i, values[i].as_py())

    typed = pc.fill_null(pc.match_substring_regex(values, _TYPED_RE), False)
    note("text", pc.and_(values.is_valid(), pc.invert(typed)))
    if not pc.any(typed).as_py():
        return found
    note("bool", pc.is_in(values, value_set=_bool_spellings()))
    is_int = pc.fill_null(pc.match_substring_regex(values, _INT_RE), False)
    note("int", is_int)
    note("number", pc.and_not(pc.match_substring_regex(values, _NUMBER_RE), is_int))
    note("date", pc.match_substring_regex(values, _DATE_RE))
    note("datetime", pc.match_substring_regex(values, _DATETIME_RE))
    note("datetime_tz", pc.match_substring_regex(values, _DATETIME_TZ_RE))
    return found


def _first_index(mask: pa.Array) -> int:
    import pyarrow.compute as pc

    index: int = pc.index(pc.fill_null(mask, False), True).as_py()
    return index


@cache
def _bool_spellings() -> pa.Array:
    import itertools

    import pyarrow as pa

    spellings = [
        "".join(letters)
        for word in _BOOL_WORDS
        for letters in itertools.product(*((c.lower(), c.upper()) for c in word))
    ]
    return pa.array(spellings)


@cache
def _first_byte_tables() -> tuple[np.ndarray, np.ndarray]:
    """Lookup tables: bytes that can start a number or date, and that can start a word."""
    import numpy as np

    numeric = np.zeros(256, dtype=bool)
    numeric[list(_NUMERIC_FIRST_BYTES)] = True
    word = np.zeros(256, dtype=bool)
    word[[ord(c) for w in _WORDS for c in (w[0], w[0].upper())]] = True
    return numeric, word


def _offsets(values: pa.Array) -> np.ndarray:
    import numpy as np

    return np.frombuffer(
        values.buffers()[1], dtype=np.int32, count=len(values) + 1, offset=values.offset * 4
    )


def _data_bytes(values: pa.Array) -> bytes:
    data = values.buffers()[2]
    if data is None:
        return b""
    offsets = _offsets(values)
    return bytes(memoryview(data)[int(offsets[0]) : int(offsets[-1])])


def _may_be_typed(values: pa.Array) -> bool:
    """Whether any value could be a bool, a number or a date, judged without regexes."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    data = values.buffers()[2]
    if data is None:
        return False
    offsets = _offsets(values)
    starts, lengths = offsets[:-1], np.diff(offsets)
    present = lengths > 0
    if values.null_count:
        present &= values.is_valid().to_numpy(zero_copy_only=False)
    firsts = np.zeros(len(values), dtype=np.uint8)
    firsts[present] = np.frombuffer(data, dtype=np.uint8)[starts[present]]
    numeric, word = _first_byte_tables()
    if (numeric[firsts] & present).any():
        return True
    # Names such as "Finn" start like "false": only the exact words count.
    maybe_word = word[firsts] & present & np.isin(lengths, [len(w) for w in _WORDS])
    if not maybe_word.any():
        return False
    candidates = pc.utf8_lower(values.filter(pa.array(maybe_word)))
    return bool(pc.any(pc.is_in(candidates, value_set=pa.array(_WORDS))).as_py())


# ---------------------------------------------------------------------------------------------
# CSV errors: Arrow says what went wrong; a streaming scan of our own says where.


def _csv_failure(exc: Exception, path: Path, filename: str, width: int | None) -> Exception:
    text = str(exc)
    if isinstance(exc, UnicodeDecodeError) or "UTF8" in text or "UTF-8" in text:
        return _not_utf8(path, filename)
    if "straddl" in text:
        return _BlockTooSmall()
    expected = re.search(r"Expected (\d+) columns, got", text)
    if expected:
        width = width or int(expected.group(1))
        found = _first_ragged(path, width)
        if found is not None:
            line, fields = found
            return ValidationFailed(
                f"{filename!r} line {line} has {fields} field{'s' * (fields != 1)}, "
                f"the header has {width}; "
                "every row needs one field per column (quote fields that contain commas)",
                line=line,
            )
        return ValidationFailed(f"{filename!r} has a row with the wrong number of fields: {text}")
    return ValidationFailed(f"{filename!r} is not a readable CSV file: {text}")


def _not_utf8(path: Path, filename: str) -> ValidationFailed:
    found = _first_bad_utf8(path)
    if found is None:
        return ValidationFailed(f"{filename!r} is not UTF-8 text: save it as UTF-8 CSV")
    line, offset = found
    return ValidationFailed(
        f"{filename!r} is not UTF-8 text: line {line} has an undecodable byte at byte offset "
        f"{offset}; save it as UTF-8 CSV",
        line=line,
        byte_offset=offset,
    )


def _first_bad_utf8(path: Path) -> tuple[int, int] | None:
    """(line, byte offset) of the first byte that is not UTF-8, read 1 MiB at a time."""
    line, offset, carry = 1, 0, b""
    with open(path, "rb") as f:
        while True:
            chunk = f.read(1 << 20)
            data = carry + chunk
            if not data:
                return None
            try:
                data.decode("utf-8")
                good, carry = len(data), b""
            except UnicodeDecodeError as exc:
                truncated = exc.reason == "unexpected end of data" and exc.end == len(data)
                if not (truncated and chunk):
                    return line + data.count(b"\n", 0, exc.start), offset + exc.start
                good, carry = exc.start, data[exc.start :]  # a character split by the chunk
            line += data.count(b"\n", 0, good)
            offset += good


def _is_blank(path: Path) -> bool:
    with open(path, "rb") as f:
        chunk = f.read(1 << 20).removeprefix(b"\xef\xbb\xbf")
        while chunk:
            if chunk.strip():
                return False
            chunk = f.read(1 << 20)
    return True


def _csv_records(path: Path) -> Iterator[tuple[int, list[str]]]:
    """(first line, fields) of each record after the header, skipping blank lines as Arrow does."""
    import csv

    with open(path, encoding="utf-8-sig", errors="replace", newline="") as f:
        reader = csv.reader(f)
        seen_header = False
        last_line = 0
        for fields in reader:
            start, last_line = last_line + 1, reader.line_num
            if not fields:
                continue
            if seen_header:
                yield start, fields
            seen_header = True


def _first_ragged(path: Path, width: int) -> tuple[int, int] | None:
    import csv

    try:
        for line, fields in _csv_records(path):
            if len(fields) != width:
                return line, len(fields)
    except csv.Error:
        return None
    return None


def _lines_of_rows(path: Path, rows: list[int]) -> dict[int, int | None]:
    """Data row index → the physical line it starts on; None where the scan cannot tell."""
    import csv

    wanted = set(rows)
    lines: dict[int, int | None] = dict.fromkeys(wanted)
    found = 0
    try:
        for row, (line, _) in enumerate(_csv_records(path)):
            if row in wanted:
                lines[row] = line
                found += 1
                if found == len(wanted):
                    break
    except csv.Error:
        pass  # a field past the csv module's size limit: say "data row" instead
    return lines
