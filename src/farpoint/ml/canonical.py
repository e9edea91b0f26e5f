"""The canonical column types of a stored table, and the digest of its content.

Every table Farpoint stores has columns of exactly these Arrow types:

    bool, int64, float64 (Arrow prints it as "double"), string, date32[day],
    timestamp[us] (naive wall-clock time) and timestamp[us, tz=UTC]

`canonical_schema` maps an input schema onto them: every signed or unsigned integer to int64,
float16/32 to float64, large_string, string_view and dictionary-encoded columns to their
value type, timestamps of any unit to microseconds (a time zone becomes UTC: Arrow already
holds instants in UTC), date64 to date32, and an all-null column to string. Anything else
(lists, structs, binary, decimals, durations, times of day...) is refused by name. Casting is
exact: an unsigned value above the int64 range, a timestamp finer than a microsecond or a
date64 that is not a whole day is refused rather than rounded.

The digest, `farpoint-table-digest-v1`, depends only on the column names, their order and
canonical types, and the values row by row; never on how the rows were split into batches,
nor on the file format they arrived in (Parquet bytes change between library versions).

    digest = "sha256:" + lowercase hex of SHA-256(H)

    H = b"farpoint-table-digest-v1\\n"
        || S || b"\\n"
        || ASCII decimal row count || b"\\n"
        || C_1 || ... || C_n                    (one block per column, in column order)

S is the schema as JSON: `{"columns":[{"name":<name>,"type":<type>},...]}`, keys sorted,
no whitespace, UTF-8, non-ASCII characters written as themselves; `"` and `\\` are escaped
with a backslash, control characters below U+0020 as \\b \\f \\n \\r \\t or \\u00xx (lowercase
hex). This is exactly Python's `json.dumps(obj, sort_keys=True, separators=(",", ":"),
ensure_ascii=False)`. The type names are "bool", "int64", "float64", "string", "date32",
"timestamp_us" and "timestamp_us_utc".

Each C_i is the concatenation of raw 32-byte SHA-256 digests of byte streams, one value per
row, in row order:

- validity: one byte per row, 0x01 for a value and 0x00 for a null.
- for bool, int64, float64, date32 and the timestamps, values: one fixed-width little-endian
  value per row; a null row contributes as many 0x00 bytes.
  bool: 1 byte, 0x00 or 0x01. int64: 8 bytes, two's complement. float64: 8 bytes IEEE 754
  binary64, with -0.0 written as +0.0 and every NaN as 0x7FF8000000000000. date32: 4 bytes,
  signed days since 1970-01-01. timestamps: 8 bytes, signed microseconds since
  1970-01-01T00:00:00 (UTC for timestamp_us_utc, the wall clock for timestamp_us).
  So C_i = SHA-256(validity) || SHA-256(values).
- for string, two streams: lengths, one 8-byte little-endian signed integer per row holding
  the value's length in UTF-8 bytes (0 for a null), and bytes, the UTF-8 bytes of every
  value concatenated (a null contributes nothing).
  So C_i = SHA-256(validity) || SHA-256(lengths) || SHA-256(bytes).

A null and an empty string differ in the validity stream. -0.0 and +0.0 are one value, since
they compare equal, and so are all NaNs, whose sign and payload bits carry no meaning in a
table and differ between libraries that produce them. Only the digest folds them: the
stored Parquet keeps the values as they came.
"""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Any

from farpoint.core.errors import ValidationFailed

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

__all__ = [
    "DIGEST_VERSION",
    "TYPE_NAMES",
    "TableHasher",
    "canonical_schema",
    "canonical_type",
    "cast_batch",
    "type_key",
    "type_named",
]

DIGEST_VERSION = "farpoint-table-digest-v1"

# Digest name → the names a user may give the type (`types=` of an ingest); the first is
# Arrow's spelling. An ingest reports the same `dtype`, except `float64` for Arrow's
# "double" (table_writer._dtype_name).
TYPE_NAMES: dict[str, tuple[str, ...]] = {
    "bool": ("bool", "boolean"),
    "int64": ("int64", "int", "integer"),
    "float64": ("double", "float64", "float"),
    "string": ("string", "str", "text"),
    "date32": ("date32[day]", "date32", "date"),
    "timestamp_us": ("timestamp[us]", "timestamp", "datetime", "timestamp_us"),
    "timestamp_us_utc": ("timestamp[us, tz=UTC]", "timestamp_utc", "timestamp_us_utc"),
}

_NEG_ZERO = 0x8000_0000_0000_0000
_CANONICAL_NAN = 0x7FF8_0000_0000_0000
_MAX_INT64 = (1 << 63) - 1


def _arrow_type_of(key: str) -> pa.DataType:
    import pyarrow as pa

    return {
        "bool": pa.bool_(),
        "int64": pa.int64(),
        "float64": pa.float64(),
        "string": pa.string(),
        "date32": pa.date32(),
        "timestamp_us": pa.timestamp("us"),
        "timestamp_us_utc": pa.timestamp("us", tz="UTC"),
    }[key]


def type_key(arrow_type: pa.DataType) -> str | None:
    """The digest name of a canonical type (a key of TYPE_NAMES); None if not canonical."""
    for key in TYPE_NAMES:
        if arrow_type == _arrow_type_of(key):
            return key
    return None


def type_named(name: str) -> pa.DataType:
    """The canonical type a user named (`"string"`, `"float64"`, `"timestamp[us]"`...)."""
    wanted = name.strip().lower()
    for key, names in TYPE_NAMES.items():
        if wanted in (n.lower() for n in names):
            return _arrow_type_of(key)
    known = "bool, int64, float64, string, date32, timestamp[us], timestamp[us, tz=UTC]"
    raise ValidationFailed(f"unknown column type {name!r}; the types are: {known}", dtype=name)


def canonical_type(arrow_type: pa.DataType, column: str) -> pa.DataType:
    """The canonical type that stores `arrow_type`; ValidationFailed names `column` if none."""
    import pyarrow as pa

    t = pa.types
    if t.is_boolean(arrow_type):
        return pa.bool_()
    if t.is_integer(arrow_type):
        return pa.int64()
    if t.is_floating(arrow_type):
        return pa.float64()
    if t.is_string(arrow_type) or t.is_large_string(arrow_type) or t.is_string_view(arrow_type):
        return pa.string()
    if t.is_null(arrow_type):
        return pa.string()
    if t.is_dictionary(arrow_type):
        return canonical_type(arrow_type.value_type, column)
    if t.is_timestamp(arrow_type):
        return pa.timestamp("us", tz="UTC" if arrow_type.tz else None)
    if t.is_date(arrow_type):
        return pa.date32()
    raise ValidationFailed(
        f"column {column!r} has type {arrow_type}, which Farpoint does not store; columns hold "
        "booleans, integers, floats, strings, dates or timestamps: convert it to one of those "
        "(a string, for example) before uploading",
        column=column,
        dtype=str(arrow_type),
    )


def canonical_schema(schema: pa.Schema) -> pa.Schema:
    """`schema` with every column's type mapped to its canonical type, without metadata."""
    import pyarrow as pa

    return pa.schema(
        [pa.field(field.name, canonical_type(field.type, field.name)) for field in schema]
    )


def _cast_failure(name: str, source: pa.DataType, target: pa.DataType, exc: Exception) -> str:
    import pyarrow as pa

    reason = str(exc)
    if pa.types.is_integer(source) and "not in range" in reason:
        return (
            f"column {name!r} holds an integer above {_MAX_INT64}, the largest Farpoint stores "
            f"(int64): store it as a float or a string ({reason})"
        )
    if pa.types.is_timestamp(source) and "lose data" in reason:
        return (
            f"column {name!r} has timestamps finer than a microsecond, which Farpoint stores "
            f"at most: round them first, e.g. with pandas `.dt.floor('us')` ({reason})"
        )
    if pa.types.is_date(source) and "lose data" in reason:
        return f"column {name!r} has date64 values that are not whole days ({reason})"
    return f"column {name!r}: cannot store {source} values as {target} ({reason})"


def cast_batch(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    """`batch` cast to `schema` (same column names, in order); refuses inexact casts."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if batch.schema.names != schema.names:
        raise ValueError(f"batch columns {batch.schema.names} are not {schema.names}")
    arrays = []
    for field, column in zip(schema, batch.columns, strict=True):
        if column.type == field.type:
            arrays.append(column)
            continue
        try:
            arrays.append(pc.cast(column, field.type, safe=True))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise ValidationFailed(
                _cast_failure(field.name, column.type, field.type, exc), column=field.name
            ) from exc
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


class TableHasher:
    """The `farpoint-table-digest-v1` digest of rows fed batch by batch (see the module doc)."""

    def __init__(self, schema: pa.Schema) -> None:
        keys = []
        for field in schema:
            key = type_key(field.type)
            if key is None:
                raise ValueError(f"column {field.name!r} has non-canonical type {field.type}")
            keys.append(key)
        self._names: list[str] = list(schema.names)
        self._types = list(schema.types)
        self._keys = keys
        width = [3 if key == "string" else 2 for key in keys]
        self._streams: list[list[Any]] = [[hashlib.sha256() for _ in range(n)] for n in width]
        self._rows = 0

    def update(self, batch: pa.RecordBatch) -> None:
        """Feed the next rows; `batch` must have exactly the schema the hasher was made with."""
        if batch.schema.names != self._names or batch.schema.types != self._types:
            raise ValueError(f"batch schema {batch.schema} does not match the hashed schema")
        if not batch.num_rows:
            return  # an empty array may have no buffers at all
        for key, column, streams in zip(self._keys, batch.columns, self._streams, strict=True):
            _feed_validity(column, streams[0])
            if key == "string":
                _feed_strings(column, streams[1], streams[2])
            else:
                streams[1].update(_fixed_width_bytes(key, column))
        self._rows += batch.num_rows

    def hexdigest(self) -> str:
        """`sha256:<64 hex>` over the header, the schema, the row count and every stream."""
        columns = [
            {"name": name, "type": key} for name, key in zip(self._names, self._keys, strict=True)
        ]
        schema_json = json.dumps(
            {"columns": columns}, sort_keys=True, separators=(",", ":"), ensure_ascii=False
        )
        outer = hashlib.sha256()
        outer.update(f"{DIGEST_VERSION}\n".encode())
        outer.update(schema_json.encode("utf-8") + b"\n")
        outer.update(f"{self._rows}\n".encode("ascii"))
        for streams in self._streams:
            for stream in streams:
                outer.update(stream.copy().digest())
        return "sha256:" + outer.hexdigest()


def _validity(column: pa.Array) -> np.ndarray:
    """One byte per row: 1 for a value, 0 for a null."""
    import numpy as np

    if column.null_count == 0:
        return np.ones(len(column), dtype=np.uint8)
    return _bits(column.buffers()[0], column.offset, len(column))


def _bits(buffer: pa.Buffer, offset: int, length: int) -> np.ndarray:
    import numpy as np

    packed = np.frombuffer(buffer, dtype=np.uint8, count=(offset + length + 7) // 8)
    return np.unpackbits(packed, bitorder="little")[offset : offset + length]


def _feed_validity(column: pa.Array, stream: Any) -> None:
    stream.update(_validity(column))


def _fixed_width_bytes(key: str, column: pa.Array) -> np.ndarray:
    """The little-endian values of a fixed-width column, nulls as zeros, read off its buffers."""
    import numpy as np

    n, offset = len(column), column.offset
    out: np.ndarray
    if key == "bool":
        out = _bits(column.buffers()[1], offset, n)
    else:
        # Arrow buffers are in the machine's byte order; the digest wants little-endian.
        dtype = np.dtype({"float64": np.float64, "date32": np.int32}.get(key, np.int64))
        out = np.frombuffer(
            column.buffers()[1], dtype=dtype, count=n, offset=offset * dtype.itemsize
        )
        if key == "float64":
            bits = out.view(np.uint64)
            neg_zero = bits == _NEG_ZERO
            nan = np.isnan(out)
            if neg_zero.any() or nan.any():
                bits = bits.copy()
                bits[neg_zero] = 0
                bits[nan] = _CANONICAL_NAN
            out = bits
    if column.null_count:
        # Null slots may hold anything in Arrow: zero them.
        out = np.where(_validity(column).astype(bool), out, np.zeros(1, dtype=out.dtype))
    return out.astype(out.dtype.newbyteorder("<"), copy=False)


def _feed_strings(column: pa.Array, lengths: Any, data: Any) -> None:
    import numpy as np

    offsets = np.frombuffer(
        column.buffers()[1], dtype=np.int32, count=len(column) + 1, offset=column.offset * 4
    )
    sizes = np.diff(offsets).astype("<i8")
    data_buf = column.buffers()[2]
    if not column.null_count:
        lengths.update(sizes)
        if data_buf is not None and offsets[-1] > offsets[0]:
            data.update(memoryview(data_buf)[int(offsets[0]) : int(offsets[-1])])
        return
    # A null slot may legally span bytes in Arrow: only the values' bytes count.
    valid = _validity(column).astype(bool)
    lengths.update(np.where(valid, sizes, 0))
    if data_buf is None:
        return
    raw = np.frombuffer(data_buf, dtype=np.uint8)[int(offsets[0]) : int(offsets[-1])]
    data.update(raw[np.repeat(valid, sizes)] if sizes[~valid].any() else raw)
