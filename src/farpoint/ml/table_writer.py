"""Writing a canonical table: one Parquet file, hashed on the way, and its checks.

`CanonicalWriter` takes batches already in the canonical schema; a thread of its own hashes
them (`farpoint.ml.canonical.TableHasher`) and encodes Parquet while the caller reads on.
"""

from __future__ import annotations

import os
import queue
import tempfile
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from farpoint.core.errors import ValidationFailed
from farpoint.ml.canonical import TableHasher, cast_batch, type_key, type_named

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = [
    "ROW_GROUP_ROWS",
    "CanonicalWriter",
    "IngestResult",
    "check_names",
    "forced_kinds",
    "write_all",
    "writer_options",
]

ROW_GROUP_ROWS = 131_072
# Very wide rows cut a row group short, so that it never holds more than this in memory.
_ROW_GROUP_MAX_BYTES = 64 << 20
_DICTIONARY_PAGE_BYTES = 64 << 10


@dataclass(frozen=True)
class IngestResult:
    """A canonical Parquet file written by an ingest, and what it holds."""

    parquet_path: Path
    digest: str
    columns: list[dict[str, Any]]  # [{"name", "dtype", "nullable"}]
    row_count: int
    size_bytes: int
    source_format: str


def check_names(names: list[str], what: str, *, header: bool = False) -> None:
    """Refuse a table with no columns, or with an empty or repeated column name."""
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


def forced_kinds(types: Mapping[str, str], names: list[str], what: str) -> dict[str, str]:
    """Column → canonical type key for `types` (a user's `types=`), refusing unknown columns."""
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


def writer_options(schema: pa.Schema, first_rows: pa.Table | None = None) -> dict[str, Any]:
    """The Parquet settings of a canonical file with `schema` whose first row group is
    `first_rows`.

    They depend only on the schema and those rows, so one library version writes the same rows
    to the same bytes. Columns use a dictionary, with a small page limit that gives up early on
    columns with many distinct values. An integer, date or timestamp column with more distinct
    values in the first row group than that limit holds is delta-encoded instead: ids and times
    that grow row by row shrink to almost nothing, and it is cheaper than building a dictionary
    only to drop it.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    delta = []
    for field in schema:
        t = field.type
        if first_rows is None or not (
            pa.types.is_integer(t) or pa.types.is_date(t) or pa.types.is_timestamp(t)
        ):
            continue
        fits = _DICTIONARY_PAGE_BYTES // (t.bit_width // 8)
        if pc.count_distinct(first_rows.column(field.name)).as_py() > fits:
            delta.append(field.name)
    return {
        "compression": "zstd",
        "compression_level": 1,
        "use_dictionary": [name for name in schema.names if name not in delta],
        "column_encoding": dict.fromkeys(delta, "DELTA_BINARY_PACKED"),
        "dictionary_pagesize_limit": _DICTIONARY_PAGE_BYTES,
        "write_statistics": True,
        "version": "2.6",
        "data_page_version": "1.0",
    }


def _dtype_name(arrow_type: pa.DataType) -> str:
    # Arrow calls float64 "double"; the API, contracts and profiles say float64.
    return "float64" if str(arrow_type) == "double" else str(arrow_type)


class CanonicalWriter:
    """Hashes canonical batches and writes them to a temporary file, in a thread of its own.

    The caller parses and converts; this thread hashes and encodes Parquet, about as much
    work again, so on two cores the two overlap.
    """

    def __init__(self, schema: pa.Schema, out_dir: Path, source_format: str) -> None:
        self._hasher = TableHasher(schema)
        fd, name = tempfile.mkstemp(dir=out_dir, prefix="ingest-", suffix=".parquet.part")
        os.close(fd)
        self.part = Path(name)
        self.schema = schema
        self.rows = 0
        self._source_format = source_format
        self._nulls = [0] * len(schema)
        # Opened at the first row group, whose values choose the encodings.
        self._writer: Any = None
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
        if self._writer is None:  # no rows
            self._open(None)
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
            if self._writer is not None:
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
                    self._write_group(table.slice(0, take))
                    rest = table.slice(take)
                    pending, rows, nbytes = rest.to_batches(), rest.num_rows, rest.nbytes
            except BaseException as exc:
                self._error = exc
        if self._error is None and rows:
            try:
                table = pa.Table.from_batches(pending, schema=self.schema)
                self._write_group(table)
            except BaseException as exc:
                self._error = exc

    def _write_group(self, table: pa.Table) -> None:
        if self._writer is None:
            self._open(table)
        self._writer.write_table(table, row_group_size=table.num_rows)

    def _open(self, first_rows: pa.Table | None) -> None:
        import pyarrow.parquet as pq

        options = writer_options(self.schema, first_rows)
        self._writer = pq.ParquetWriter(str(self.part), self.schema, **options)


def write_all(
    target: pa.Schema,
    batches: Iterable[pa.RecordBatch],
    out_dir: Path,
    source_format: str,
    what: str,
    allow_empty: bool,
) -> IngestResult:
    """Cast `batches` to `target` and write them; `what` names the table in errors."""
    sink = CanonicalWriter(target, out_dir, source_format)
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
