"""64-bit value hashes, equal values giving equal hashes: exact distinct counts of
private columns, `unique` checks and whole-row duplicates, in 8 bytes a row and without
keeping any value. Computed with numpy over the Arrow buffers, no Python loop per value."""

from __future__ import annotations

from typing import TYPE_CHECKING

from farpoint.ml.columns import column_kind, raw_numbers, validity_mask

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

__all__ = ["value_hashes"]

_M1, _M2, _GOLDEN = 0xBF58476D1CE4E5B9, 0x94D049BB133111EB, 0x9E3779B97F4A7C15
_NULL_HASH = 0x5BD1E9955BD1E995
_STRING_CHUNK_BYTES = 1 << 22


def _mix(z: np.ndarray) -> np.ndarray:
    import numpy as np

    # splitmix64's finaliser: every input bit moves about half of the output bits.
    z = z ^ (z >> np.uint64(30))
    z = z * np.uint64(_M1)
    z = z ^ (z >> np.uint64(27))
    z = z * np.uint64(_M2)
    mixed: np.ndarray = z ^ (z >> np.uint64(31))
    return mixed


_SHORT_STRING = 64
_SMALL_KEYS = _SHORT_STRING * 256
_small_key_cache: list[np.ndarray] = []


def _small_key_mix() -> np.ndarray:
    """`_mix` of every (position < 64, byte) key, looked up instead of computed: the
    same hash, three times faster on short strings."""
    import numpy as np

    if not _small_key_cache:
        _small_key_cache.append(_mix(np.arange(_SMALL_KEYS, dtype=np.uint64) + np.uint64(_GOLDEN)))
    return _small_key_cache[0]


def _string_hashes(arr: pa.Array) -> np.ndarray:
    import numpy as np
    import pyarrow as pa

    large = pa.types.is_large_string(arr.type)
    offsets = np.frombuffer(
        arr.buffers()[1],
        dtype=np.int64 if large else np.int32,
        count=len(arr) + 1,
        offset=arr.offset * (8 if large else 4),
    ).astype(np.int64)
    data_buffer = arr.buffers()[2]
    data = np.frombuffer(data_buffer, dtype=np.uint8) if data_buffer else np.zeros(0, np.uint8)
    lengths = np.diff(offsets)
    out = np.empty(len(arr), dtype=np.uint64)
    # Each byte is mixed with its position and the results are summed per string
    # (tabulation-style hashing numpy computes without a Python loop over the values);
    # chunks of rows bound the temporaries when strings are long.
    start = 0
    while start < len(arr):
        stop = int(np.searchsorted(offsets, offsets[start] + _STRING_CHUNK_BYTES, "right"))
        stop = min(len(arr), max(stop - 1, start + 1))
        lens = lengths[start:stop]
        longest = int(lens.max()) if lens.size else 0
        if longest <= _SHORT_STRING:
            sums = _short_sums(data, offsets[start:stop], lens, longest)
        else:
            sums = _long_sums(data, offsets[start : stop + 1], lens)
        out[start:stop] = _mix(sums ^ (lens.astype(np.uint64) * np.uint64(_GOLDEN)))
        start = stop
    return out


def _short_sums(data: np.ndarray, starts: np.ndarray, lens: np.ndarray, longest: int) -> np.ndarray:
    """Per-string sums of mixed (position, byte) keys, one vectorised step per position."""
    import numpy as np

    table = _small_key_mix()
    sums = np.zeros(lens.size, dtype=np.uint64)
    last = max(0, data.size - 1)
    for j in range(longest):
        live = lens > j
        key = data[np.minimum(starts + j, last)].astype(np.int64) | (j << 8)
        sums += np.where(live, table[key], np.uint64(0))
    return sums


def _long_sums(data: np.ndarray, offsets: np.ndarray, lens: np.ndarray) -> np.ndarray:
    """The same sums as `_short_sums`, one vectorised step over all bytes at once."""
    import numpy as np

    first, last = offsets[0], offsets[-1]
    rel = offsets[:-1] - first
    position = np.arange(last - first, dtype=np.int64) - np.repeat(rel, lens)
    keys = (position.astype(np.uint64) << np.uint64(8)) | data[first:last].astype(np.uint64)
    mixed = _small_key_mix()[np.minimum(keys, np.uint64(_SMALL_KEYS - 1))]
    long_keys = keys >= np.uint64(_SMALL_KEYS)
    if long_keys.any():
        mixed[long_keys] = _mix(keys[long_keys] + np.uint64(_GOLDEN))
    sums = np.zeros(lens.size, dtype=np.uint64)
    nonempty = lens > 0
    if mixed.size:
        sums[nonempty] = np.add.reduceat(mixed, rel[nonempty])
    return sums


def value_hashes(arr: pa.Array) -> np.ndarray:
    """A 64-bit hash per value (uint64), equal values giving equal hashes; nulls share
    one hash. Used for exact distinct counts, `unique` checks and duplicate rows."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    if pa.types.is_dictionary(arr.type):
        if not len(arr.dictionary):
            return np.full(len(arr), _NULL_HASH, dtype=np.uint64)
        # Each distinct value is hashed once, then spread by the indices.
        hashes: np.ndarray = value_hashes(arr.dictionary)[raw_numbers(arr.indices)]
        if arr.null_count:
            hashes[~validity_mask(arr)] = np.uint64(_NULL_HASH)
        return hashes
    kind = column_kind(arr.type)
    if kind == "categorical":
        hashes = _string_hashes(arr)
    elif kind in ("numeric", "temporal", "boolean"):
        if kind == "boolean":
            values = (arr.fill_null(False) if arr.null_count else arr).to_numpy(
                zero_copy_only=False
            )
        else:
            values = raw_numbers(arr)
        if values.dtype.kind == "f":
            # -0.0 == 0.0 and every NaN is the same missing number.
            values = np.where(np.isnan(values), np.nan, values + 0.0).astype(np.float64)
            bits = values.view(np.uint64)
        else:
            bits = values.astype(np.int64).view(np.uint64)
        hashes = _mix(bits + np.uint64(_GOLDEN))
    else:
        return value_hashes(pc.cast(arr, pa.string()))
    if arr.null_count:
        hashes[~validity_mask(arr)] = np.uint64(_NULL_HASH)
    return hashes
