"""Streaming a CSV file into canonical Parquet, with the types of `farpoint.ml.csv_types`.

One streaming read with every column as a string, block by block. The first block
decides each column's type; each later block is checked and converted with vectorised Arrow
casts, falling back to exact regular expressions for a block the fast check does not clear
(`farpoint.ml.csv_convert`). When a later block widens a type (an int64 column meets 2.5)
the read starts over with the wider type, so the rules hold for the whole file at the cost
of one more read.

The writer (`farpoint.ml.table_writer.CanonicalWriter`) hashes and encodes Parquet in a
second thread while this one parses and converts the next block.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from farpoint.core.errors import ValidationFailed
from farpoint.ml.canonical import type_named
from farpoint.ml.csv_convert import Column, Retry, convert, plan
from farpoint.ml.csv_errors import BlockTooSmall, csv_failure, is_blank, lines_of_rows, not_utf8
from farpoint.ml.csv_types import NULL_TOKENS, AtRows
from farpoint.ml.table_writer import CanonicalWriter, IngestResult, check_names, forced_kinds

__all__ = ["DEFAULT_BLOCK_SIZE", "ingest_csv"]

# Arrow's CSV reader keeps several blocks in flight: peak memory is about 25 times the block
# size, so 8 MiB blocks cost ~250 MB where 1 MiB blocks cost ~40 MB at the same speed.
DEFAULT_BLOCK_SIZE = 1 << 20
_MAX_BLOCK_SIZE = 64 << 20


def ingest_csv(
    path: Path, filename: str, out_dir: Path, types: Mapping[str, str], block_size: int
) -> IngestResult:
    """The CSV file at `path` as canonical Parquet in `out_dir` (see `ingest.ingest_file`)."""
    what = repr(filename)
    names = _csv_names(path, filename, block_size)
    forced = forced_kinds(types, names, what)
    kinds: dict[str, str] | None = None
    # Each retry widens a column's type in a finite order, so this ends.
    for _ in range(4 * len(names) + 8):
        try:
            return _csv_pass(path, filename, out_dir, names, forced, kinds, block_size)
        except Retry as retry:
            kinds = retry.kinds
        except BlockTooSmall:
            if block_size >= _MAX_BLOCK_SIZE:
                raise ValidationFailed(
                    f"{what} has a row longer than {_MAX_BLOCK_SIZE} bytes; is a quote left open?"
                ) from None
            block_size = min(block_size * 8, _MAX_BLOCK_SIZE)
        except AtRows as problem:
            lines = lines_of_rows(path, problem.rows)
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
            raise not_utf8(path, filename) from exc
        except pa.ArrowInvalid as exc:
            if "Empty CSV" in str(exc):
                if is_blank(path):
                    raise ValidationFailed(
                        f"{filename!r} is empty: expected a header row and data rows"
                    ) from exc
                raise ValidationFailed(f"{filename!r} has a header but no data rows") from exc
            problem = csv_failure(exc, path, filename, None)
            if isinstance(problem, BlockTooSmall) and block_size < _MAX_BLOCK_SIZE:
                block_size = min(block_size * 8, _MAX_BLOCK_SIZE)
                continue
            raise problem from exc
    if all(not name.strip() for name in names) and is_blank(path):
        raise ValidationFailed(f"{filename!r} is empty: expected a header row and data rows")
    check_names(names, repr(filename), header=True)
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
        raise csv_failure(exc, path, filename, len(names)) from exc
    columns = [
        Column(n, forced.get(n) or (kinds or {}).get(n, "string"), n in forced) for n in names
    ]
    sink: CanonicalWriter | None = None
    row = 0
    try:
        while True:
            try:
                batch = reader.read_next_batch()
            except StopIteration:
                break
            except pa.ArrowInvalid as exc:
                raise csv_failure(exc, path, filename, len(names)) from exc
            if not batch.num_rows:
                continue
            if sink is None:
                if kinds is None:
                    plan(columns, batch)
                schema = pa.schema([pa.field(c.name, type_named(c.kind)) for c in columns])
                sink = CanonicalWriter(schema, out_dir, "csv")
            try:
                arrays = [convert(c, batch.column(i), row) for i, c in enumerate(columns)]
            except Retry as retry:
                retry.kinds = {c.name: c.kind for c in columns} | retry.kinds
                raise
            sink.write(pa.RecordBatch.from_arrays(arrays, schema=sink.schema))
            row += batch.num_rows
        if sink is None:
            raise ValidationFailed(f"{filename!r} has a header but no data rows")
        for column in columns:
            column.check_finished()
        return sink.finish()
    except BaseException:
        if sink is not None:
            sink.abort()
        raise
    finally:
        reader.close()
