"""Converting blocks of CSV text to their column's type, fast where cheap checks allow.

The first block decides each column's type (`plan`); each later block is checked and
converted with vectorised Arrow casts, falling back to the exact rules of
`farpoint.ml.csv_types` for a block the fast check does not clear. A block that needs a
wider type than the column has so far raises `Retry`, and the read starts over.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING

from farpoint.ml.canonical import type_named
from farpoint.ml.csv_types import (
    FAMILY,
    INVALID,
    KIND_OF,
    TAKES,
    AtRows,
    classify,
    first_index,
    mixed_error,
    narrowest_kind,
)

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

__all__ = ["Column", "Retry", "convert", "plan"]

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


# Looked up once per column and block: cached, since type_named parses a user's spelling.
_type_of = cache(type_named)


class Retry(Exception):
    """A later block widened a column's type: read the file again with these types."""

    def __init__(self, kinds: dict[str, str]) -> None:
        super().__init__("retry")
        self.kinds = kinds


class Column:
    """What an ingest knows about one CSV column: its type so far and first values seen."""

    __slots__ = ("first", "forced", "kind", "name", "overflow")

    def __init__(self, name: str, kind: str, forced: bool) -> None:
        self.name = name
        self.kind = kind
        self.forced = forced
        self.first: dict[str, tuple[int, str]] = {}  # category → (row, value) first seen
        # The first integer too big for int64, in a column a later decimal may yet make
        # float64 (which holds it): refused only if the column is still int64 at the end.
        self.overflow: AtRows | None = None

    def check_finished(self) -> None:
        """Raise the refusal this column put off until the whole file was read, if any."""
        if self.overflow is not None:
            raise self.overflow


def plan(columns: list[Column], batch: pa.RecordBatch) -> None:
    """Give each column not forced the type its first block asks for."""
    for i, column in enumerate(columns):
        if column.forced:
            continue
        found = classify(batch.column(i), 0)
        kind = narrowest_kind(set(found))
        if kind is None:
            raise mixed_error(column.name, found)
        column.kind = kind
        column.first = found


def convert(column: Column, values: pa.Array, row0: int) -> pa.Array:
    """`values` (strings) as the column's type; raises when the block does not fit it."""
    import pyarrow as pa

    if values.null_count == len(values):
        return pa.nulls(len(values), _type_of(column.kind))
    if column.forced and column.kind == "string":
        return values
    converted = _fast(column.kind, values)
    if converted is None:
        return _convert_exactly(column, values, row0)
    category = _representative(column.kind)
    if category not in column.first:
        i = 0 if not values.null_count else first_index(values.is_valid())
        column.first[category] = (row0 + i, values[i].as_py())
    return converted


def _representative(kind: str) -> str:
    return next(c for c, k in KIND_OF.items() if k == kind)


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
        converted: pa.Array = pc.cast(values, _type_of(kind))
    except pa.ArrowInvalid:
        return None
    return converted


def _convert_exactly(column: Column, values: pa.Array, row0: int) -> pa.Array:
    found = classify(values, row0)
    if column.forced:
        wrong = sorted((rv, c) for c, rv in found.items() if c not in TAKES[column.kind])
        if wrong:
            (bad_row, bad_value), category = wrong[0]
            raise AtRows(
                [bad_row],
                lambda where: (
                    f"column {column.name!r} is set to {_type_of(column.kind)} but "
                    f"{where[bad_row]} has {bad_value!r}, which is {FAMILY[category]}; "
                    "fix the value or choose another type"
                ),
                column=column.name,
            )
    else:
        merged = {**found, **column.first}  # the earlier occurrence wins
        kind = narrowest_kind(set(merged))
        if kind is None:
            raise mixed_error(column.name, merged)
        if kind != column.kind:
            raise Retry({column.name: kind})
    for category, first in found.items():
        column.first.setdefault(category, first)
    return _cast_or_locate(column, values, row0)


def _cast_or_locate(column: Column, values: pa.Array, row0: int) -> pa.Array:
    """Cast values whose categories fit; a value that only looks right is located."""
    import pyarrow as pa
    import pyarrow.compute as pc

    kind = column.kind
    if kind == "string":
        return values
    if kind == "bool":
        return pc.equal(pc.binary_length(values), 4)
    target = _type_of(kind)

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
    problem = AtRows(
        [bad_row],
        lambda where: (
            f"column {column.name!r}: {where[bad_row]} has {bad_value!r}, which "
            f"{INVALID.get(kind, 'is not valid')}; fix it, or pass "
            f"types={{{column.name!r}: 'string'}} to keep the column as text"
        ),
        column=column.name,
    )
    if kind == "int64" and not column.forced:
        # Too big for int64, yet a number: the column becomes float64 if a decimal follows.
        # The block's values do not matter meanwhile; nothing is kept unless the file ends
        # with the column still int64, and then this is the refusal.
        column.overflow = column.overflow or problem
        return pa.nulls(len(values), target)
    raise problem


@cache
def _first_byte_tables() -> tuple[np.ndarray, np.ndarray]:
    """Lookup tables: bytes that can start a number or date, and that can start a word."""
    import numpy as np

    numeric = np.zeros(256, dtype=bool)
    numeric[list(_NUMERIC_FIRST_BYTES)] = True
    word = np.zeros(256, dtype=bool)
    word[[ord(c) for w in _WORDS for c in (w[0], w[0].upper())]] = True
    return numeric, word


@cache
def _word_lengths() -> np.ndarray:
    """Lookup table: whether a value of this many bytes (the last entry: more) may be a word."""
    import numpy as np

    table = np.zeros(max(len(w) for w in _WORDS) + 2, dtype=bool)
    table[[len(w) for w in _WORDS]] = True
    return table


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
    lengths = np.diff(offsets)
    present = lengths > 0
    if values.null_count:
        present &= values.is_valid().to_numpy(zero_copy_only=False)
    if not present.any():
        return False
    # An empty value may start at the very end of the data: clip, its byte is masked anyway.
    firsts = np.frombuffer(data, dtype=np.uint8).take(offsets[:-1], mode="clip")
    numeric, word = _first_byte_tables()
    if (numeric[firsts] & present).any():
        return True
    # Names such as "Finn" start like "false": only the exact words count.
    maybe_word = word[firsts] & present
    if not maybe_word.any():
        return False
    word_length = _word_lengths()
    maybe_word &= word_length[np.minimum(lengths, len(word_length) - 1)]
    if not maybe_word.any():
        return False
    candidates = pc.utf8_lower(values.filter(pa.array(maybe_word)))
    return bool(pc.any(pc.is_in(candidates, value_set=pa.array(_WORDS))).as_py())
