"""Reading Arrow columns the way every pass over a canonical Parquet file needs them:
batches streamed from the file, validity bitmaps and numbers straight from the Arrow
buffers, per-batch value counts, canonical type names and JSON-ready values."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

__all__ = [
    "BATCH_ROWS",
    "column_kind",
    "json_value",
    "non_null_numbers",
    "raw_numbers",
    "stream_batches",
    "type_name",
    "validity_mask",
    "value_counts",
]

BATCH_ROWS = 65_536
"""Rows per batch of every streamed pass (profile, validation, quality)."""

_TYPE_NAMES = {
    "double": "float64",
    "float": "float32",
    "halffloat": "float16",
    "large_string": "string",
    "large_utf8": "string",
    "utf8": "string",
}


def type_name(dtype: pa.DataType) -> str:
    """The canonical type string of an Arrow type: `float64` where Arrow says `double`."""
    name = str(dtype)
    return _TYPE_NAMES.get(name, name)


def column_kind(dtype: pa.DataType) -> str:
    """boolean, numeric, categorical (strings), temporal or other."""
    import pyarrow as pa

    if pa.types.is_boolean(dtype):
        return "boolean"
    if pa.types.is_integer(dtype) or pa.types.is_floating(dtype):
        return "numeric"
    if pa.types.is_string(dtype) or pa.types.is_large_string(dtype):
        return "categorical"
    if pa.types.is_date(dtype) or pa.types.is_timestamp(dtype):
        return "temporal"
    return "other"


def validity_mask(arr: pa.Array) -> np.ndarray:
    """The validity bitmap of `arr` as a numpy bool array."""
    import numpy as np
    import pyarrow as pa

    if pa.types.is_dictionary(arr.type):
        arr = arr.indices
    bitmap = arr.buffers()[0] if len(arr) else None
    if bitmap is None:
        return np.full(len(arr), arr.null_count == 0)
    bits = np.frombuffer(bitmap, dtype=np.uint8)
    return np.unpackbits(bits, count=arr.offset + len(arr), bitorder="little")[arr.offset :].view(
        bool
    )


def raw_numbers(arr: pa.Array) -> np.ndarray:
    """Every slot of a numeric or temporal array as numpy (null slots hold arbitrary
    numbers: mask them with `validity_mask`); dates and timestamps as integers since the
    epoch. Read straight from the Arrow buffer, without a copy where the type allows."""
    import numpy as np
    import pyarrow as pa

    dtype = arr.type
    if pa.types.is_null(dtype) or len(arr) == arr.null_count:
        return np.zeros(len(arr), dtype=np.int64)
    if pa.types.is_date32(dtype):
        np_dtype: Any = np.int32
    elif pa.types.is_date64(dtype) or pa.types.is_timestamp(dtype):
        np_dtype = np.int64
    elif pa.types.is_integer(dtype) or pa.types.is_floating(dtype):
        np_dtype = dtype.to_pandas_dtype()
    else:
        raise TypeError(f"not a numeric or temporal column: {dtype}")
    values = np.frombuffer(arr.buffers()[1], dtype=np_dtype, count=arr.offset + len(arr))[
        arr.offset :
    ]
    return values.astype(np.int64) if np_dtype is np.int32 else values


def non_null_numbers(arr: pa.Array) -> np.ndarray:
    """The non-null values of a numeric or temporal array as numpy (see `raw_numbers`)."""
    values = raw_numbers(arr)
    # A boolean mask beats drop_null's filter kernel tenfold on a batch with a few nulls.
    return values[validity_mask(arr)] if arr.null_count else values


def stream_batches(
    path: Path, columns: Sequence[str], batch_size: int, dictionary: Sequence[str] = ()
) -> Iterator[pa.RecordBatch]:
    """Record batches of `columns`, streamed; the `dictionary` columns arrive
    dictionary-encoded (Parquet stores low-cardinality strings that way, and decoding
    them to strings costs five times more than reading the codes)."""
    import pyarrow.parquet as pq

    with pq.ParquetFile(path, read_dictionary=list(dictionary) or None) as f:
        yield from f.iter_batches(batch_size=batch_size, columns=list(columns))


def value_counts(arr: pa.Array) -> pa.Table:
    """`(value, count)` of the non-null values of one batch; a dictionary-encoded batch
    (see `stream_batches`) is counted from its indices without touching the strings."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    if pa.types.is_dictionary(arr.type):
        indices = non_null_numbers(arr.indices)
        counts = np.bincount(indices, minlength=len(arr.dictionary))
        used = np.flatnonzero(counts)
        return pa.table({"value": arr.dictionary.take(pa.array(used)), "count": counts[used]})
    counted = pc.value_counts(arr.drop_null() if arr.null_count else arr)
    return pa.table({"value": counted.field("values"), "count": counted.field("counts")})


def json_value(value: Any) -> Any:
    """A value as JSON takes it: dates as ISO strings, NaN and infinities as strings."""
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value
