"""The table digest: the same rows give the same digest however they are batched, and the
encoding is the one the module documents (re-implemented here, value by value)."""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import json
import math
import struct
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from farpoint.core.errors import ValidationFailed
from farpoint.ml.canonical import TableHasher, canonical_schema, cast_batch

UTC = dt.UTC
EPOCH = dt.datetime(1970, 1, 1)
ARROW = {
    "bool": pa.bool_(),
    "int64": pa.int64(),
    "float64": pa.float64(),
    "string": pa.string(),
    "date32": pa.date32(),
    "timestamp_us": pa.timestamp("us"),
    "timestamp_us_utc": pa.timestamp("us", tz="UTC"),
}


def sha(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def reference_digest(table: pa.Table) -> str:
    """farpoint-table-digest-v1 written from the module docstring, one Python value at a time."""
    keys = [next(k for k, t in ARROW.items() if t == f.type) for f in table.schema]
    schema = json.dumps(
        {
            "columns": [
                {"name": n, "type": k} for n, k in zip(table.column_names, keys, strict=True)
            ]
        },
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    blocks = b""
    for key, column in zip(keys, table.columns, strict=True):
        values = column.to_pylist()
        blocks += sha(bytes(0 if v is None else 1 for v in values))
        if key == "string":
            blocks += sha(b"".join(struct.pack("<q", len((v or "").encode())) for v in values))
            blocks += sha(b"".join(v.encode() for v in values if v is not None))
        else:
            blocks += sha(b"".join(_fixed(key, v) for v in values))
    header = f"farpoint-table-digest-v1\n{schema}\n{table.num_rows}\n".encode()
    return "sha256:" + hashlib.sha256(header + blocks).hexdigest()


def _fixed(key: str, v: Any) -> bytes:
    if key == "bool":
        return struct.pack("<B", bool(v))
    if key == "int64":
        return struct.pack("<q", v or 0)
    if key == "float64":
        if v is not None and math.isnan(v):
            return bytes.fromhex("000000000000f87f")
        return struct.pack("<d", (v or 0.0) + 0.0)  # adding +0.0 turns -0.0 into +0.0
    if key == "date32":
        return struct.pack("<i", 0 if v is None else (v - dt.date(1970, 1, 1)).days)
    if v is None:
        return bytes(8)
    naive = v.astimezone(UTC).replace(tzinfo=None) if v.tzinfo else v
    return struct.pack("<q", (naive - EPOCH) // dt.timedelta(microseconds=1))


def digest_of(table: pa.Table, chunk: int | None = None) -> str:
    hasher = TableHasher(table.schema)
    for batch in table.to_batches(max_chunksize=chunk):
        hasher.update(batch)
    return hasher.hexdigest()


VALUES = {
    "bool": st.booleans(),
    "int64": st.integers(-(2**63), 2**63 - 1),
    "float64": st.floats(allow_nan=True, allow_infinity=True),
    "string": st.text(max_size=8),
    "date32": st.dates(),
    "timestamp_us": st.datetimes(),
    "timestamp_us_utc": st.datetimes(timezones=st.just(UTC)),
}


@st.composite
def tables(draw: st.DrawFn) -> pa.Table:
    rows = draw(st.integers(0, 40))
    keys = draw(st.lists(st.sampled_from(sorted(ARROW)), min_size=1, max_size=4))
    columns = {}
    for i, key in enumerate(keys):
        values = draw(st.lists(st.none() | VALUES[key], min_size=rows, max_size=rows))
        columns[f"c{i}"] = pa.array(values, type=ARROW[key])
    return pa.table(columns)


@settings(max_examples=150, deadline=None)
@given(tables(), st.lists(st.integers(0, 40), max_size=6))
def test_digest_follows_the_documented_encoding_whatever_the_batches(
    table: pa.Table, cuts: list[int]
) -> None:
    # Random cuts make batches of uneven sizes, some empty, most with a nonzero Arrow offset.
    edges = sorted({0, table.num_rows, *(c for c in cuts if c <= table.num_rows)})
    hasher = TableHasher(table.schema)
    for start, end in itertools.pairwise(edges):
        for batch in table.slice(start, end - start).to_batches():
            hasher.update(batch)
    expected = reference_digest(table)
    assert hasher.hexdigest() == expected
    assert digest_of(table, chunk=1) == expected
    assert digest_of(table.combine_chunks()) == expected


def test_digest_is_sha256_shaped_and_stable_across_calls() -> None:
    table = pa.table({"a": [1, 2]})
    hasher = TableHasher(table.schema)
    hasher.update(table.to_batches()[0])
    first = hasher.hexdigest()
    assert first == hasher.hexdigest()
    assert first.startswith("sha256:") and len(first) == 7 + 64


@pytest.mark.parametrize(
    "other",
    [
        pa.table({"a": [1, 3], "b": ["x", "y"]}),  # one value
        pa.table({"a": [2, 1], "b": ["y", "x"]}),  # row order
        pa.table({"b": ["x", "y"], "a": [1, 2]}),  # column order
        pa.table({"A": [1, 2], "b": ["x", "y"]}),  # a name
        pa.table({"a": [1.0, 2.0], "b": ["x", "y"]}),  # a type
        pa.table({"a": [1, 2, None], "b": ["x", "y", None]}),  # one more (null) row
        pa.table({"a": [1, None], "b": ["x", "y"]}),  # a null where a value was
    ],
)
def test_any_change_to_names_order_types_or_values_changes_the_digest(other: pa.Table) -> None:
    assert digest_of(other) != digest_of(pa.table({"a": [1, 2], "b": ["x", "y"]}))


def test_string_boundaries_count() -> None:
    # The same bytes split differently between rows are different rows.
    assert digest_of(pa.table({"s": ["ab", "c"]})) != digest_of(pa.table({"s": ["a", "bc"]}))


def test_null_and_empty_string_differ_and_nan_differs_from_null() -> None:
    assert digest_of(pa.table({"s": pa.array([None], pa.string())})) != digest_of(
        pa.table({"s": [""]})
    )
    assert digest_of(pa.table({"f": pa.array([None], pa.float64())})) != digest_of(
        pa.table({"f": [math.nan]})
    )


def test_negative_zero_and_every_nan_payload_are_one_value() -> None:
    quiet = struct.unpack("<d", bytes.fromhex("000000000000f87f"))[0]
    payload = struct.unpack("<d", bytes.fromhex("0100000000f0ff7f"))[0]  # a signalling NaN
    negative = struct.unpack("<d", bytes.fromhex("000000000000f8ff"))[0]
    assert digest_of(pa.table({"f": [-0.0, 1.0]})) == digest_of(pa.table({"f": [0.0, 1.0]}))
    digests = {digest_of(pa.table({"f": [nan]})) for nan in (quiet, payload, negative)}
    assert len(digests) == 1


def test_bytes_hidden_under_nulls_do_not_count() -> None:
    # Arrow lets a null slot keep any value or span any bytes; only the visible rows count.
    ints = pa.Array.from_buffers(
        pa.int64(),
        2,
        [pa.py_buffer(bytes([0b01])), pa.py_buffer(struct.pack("<qq", 7, 12345))],
    )
    strings = pa.Array.from_buffers(
        pa.string(),
        2,
        [
            pa.py_buffer(bytes([0b01])),
            pa.py_buffer(struct.pack("<iii", 0, 1, 6)),
            pa.py_buffer(b"xjunk!"),
        ],
    )
    hidden = pa.table({"i": ints, "s": strings})
    clean = pa.table({"i": pa.array([7, None], pa.int64()), "s": pa.array(["x", None])})
    assert hidden.to_pylist() == clean.to_pylist()
    assert digest_of(hidden) == digest_of(clean)


def test_hasher_refuses_batches_of_another_schema() -> None:
    hasher = TableHasher(pa.schema([("a", pa.int64())]))
    with pytest.raises(ValueError, match="does not match"):
        hasher.update(pa.record_batch({"a": pa.array([1.0])}))
    with pytest.raises(ValueError, match="non-canonical"):
        TableHasher(pa.schema([("a", pa.int32())]))


@pytest.mark.parametrize(
    ("source", "canonical"),
    [
        (pa.int8(), pa.int64()),
        (pa.int32(), pa.int64()),
        (pa.uint16(), pa.int64()),
        (pa.uint64(), pa.int64()),
        (pa.float16(), pa.float64()),
        (pa.float32(), pa.float64()),
        (pa.large_string(), pa.string()),
        (pa.string_view(), pa.string()),
        (pa.dictionary(pa.int32(), pa.string()), pa.string()),
        (pa.dictionary(pa.uint32(), pa.large_string()), pa.string()),
        (pa.timestamp("ns"), pa.timestamp("us")),
        (pa.timestamp("s"), pa.timestamp("us")),
        (pa.timestamp("ms", tz="Europe/Paris"), pa.timestamp("us", tz="UTC")),
        (pa.date64(), pa.date32()),
        (pa.null(), pa.string()),
        (pa.bool_(), pa.bool_()),
    ],
)
def test_accepted_types_map_to_canonical_ones(source: pa.DataType, canonical: pa.DataType) -> None:
    schema = canonical_schema(pa.schema([pa.field("c", source)], metadata={b"pandas": b"{}"}))
    assert schema.field("c").type == canonical
    assert schema.metadata is None


@pytest.mark.parametrize(
    "source",
    [
        pa.list_(pa.int64()),
        pa.struct([("x", pa.int64())]),
        pa.binary(),
        pa.decimal128(10, 2),
        pa.duration("s"),
        pa.time64("us"),
        pa.map_(pa.string(), pa.int64()),
    ],
)
def test_other_types_are_refused_naming_the_column(source: pa.DataType) -> None:
    with pytest.raises(ValidationFailed, match="column 'weird' has type") as err:
        canonical_schema(pa.schema([("ok", pa.int64()), ("weird", source)]))
    assert err.value.extra["column"] == "weird"


def test_casts_keep_values_and_refuse_to_round() -> None:
    paris = pa.array(
        [dt.datetime(2024, 1, 1, 12, tzinfo=UTC)], pa.timestamp("ns", tz="Europe/Paris")
    )
    batch = pa.record_batch({"n": pa.array([1, None], pa.uint8()), "s": ["a", None]})
    target = canonical_schema(batch.schema)
    assert cast_batch(batch, target).to_pylist() == [{"n": 1, "s": "a"}, {"n": None, "s": None}]
    t = pa.record_batch({"t": paris})
    assert cast_batch(t, canonical_schema(t.schema)).column(0).to_pylist() == [
        dt.datetime(2024, 1, 1, 12, tzinfo=UTC)
    ]

    big = pa.record_batch({"id": pa.array([1, 2**63], pa.uint64())})
    with pytest.raises(ValidationFailed, match="column 'id' holds an integer above") as err:
        cast_batch(big, canonical_schema(big.schema))
    assert err.value.extra["column"] == "id"

    fine = pa.record_batch({"t": pa.array([1_000_001], pa.timestamp("ns"))})
    with pytest.raises(ValidationFailed, match="finer than a microsecond"):
        cast_batch(fine, canonical_schema(fine.schema))
