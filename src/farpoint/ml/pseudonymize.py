"""Keyed pseudonymisation: replace identifiers by HMACs so a derived dataset keeps its joins
but not its people.

Each value of a chosen column becomes `"ps_" + 32 hex digits`, the first 128 bits of
HMAC-SHA256(key, canonical UTF-8 text of the value). The same value gives the same
pseudonym under the same key, in every column and every batch, so tables pseudonymised
with one key still join; under another key the pseudonyms are unrelated. Without the key
nobody can check a guess ("is ps_9f… Alice's e-mail?"), which is what separates this
from a plain hash, whose inputs (e-mail addresses, 7-digit record numbers) are few
enough to try them all.

Why 128 bits are enough: the key, not the length, keeps pseudonyms from being reversed,
and 128 bits make two different values sharing a pseudonym (a wrong join) vanishingly
rare: for a billion distinct values the chance is about 1.5e-21 (n² / 2¹²⁹). NIST SP
800-107 allows HMAC truncation to this length.

Pseudonymised data is still personal data under the GDPR (the key holder can
re-identify); it lowers the risk, it does not anonymise.
"""

from __future__ import annotations

import hashlib
import hmac
import math
from collections.abc import Iterable, Iterator, Sequence
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

from farpoint.core.errors import ValidationFailed

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["MIN_KEY_BYTES", "PREFIX", "derive_key", "pseudonym", "pseudonymize_batches"]

PREFIX = "ps_"
MIN_KEY_BYTES = 16  # a shorter key is guessable, and then so is every pseudonym
_HEX_DIGITS = 32  # 128 bits; see the module docstring
_FIELD_NOTE = {b"farpoint.pseudonymized": b"hmac-sha256/128"}


def derive_key(secret: bytes, dataset: str, purpose: str = "pseudonymize") -> bytes:
    """A 32-byte key for one dataset and purpose, from one server secret (HKDF-SHA256).

    Pseudonyms from different datasets do not link unless they share a key on purpose:
    pass the same `dataset` string to tables that must join."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    if not isinstance(secret, bytes) or len(secret) < MIN_KEY_BYTES:
        raise ValidationFailed(
            f"the secret must be at least {MIN_KEY_BYTES} bytes: generate one with "
            "secrets.token_bytes(32) and keep it out of the dataset"
        )
    if not dataset:
        raise ValidationFailed("derive_key needs a dataset name: each dataset gets its own key")
    # Length-prefixed, so ("a/b", "c") and ("a", "b/c") cannot yield the same key.
    parts = [b"farpoint-pseudonym-v1", purpose.encode(), dataset.encode()]
    info = b"".join(len(p).to_bytes(4, "big") + p for p in parts)
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(secret)


def _canonical(value: object) -> bytes:
    """The UTF-8 text a value is hashed as: the same for 42 in an int64 column and "42" in
    a string column, so a join across the two still works after pseudonymisation."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, bool):
        return b"true" if value else b"false"
    if isinstance(value, float):
        if value.is_integer() and math.isfinite(value):
            return str(int(value)).encode()  # 42.0 joins 42
        return repr(value).encode()
    if isinstance(value, Decimal):
        normal = value.normalize()
        return format(normal, "f").encode()
    if isinstance(value, datetime | date | time):
        return value.isoformat().encode()
    if isinstance(value, timedelta):
        return str(value.total_seconds()).encode()
    return str(value).encode()


def pseudonym(value: object, key: bytes) -> str:
    """The pseudonym of one value under `key`."""
    digest = hmac.new(key, _canonical(value), hashlib.sha256).hexdigest()
    return PREFIX + digest[:_HEX_DIGITS]


def _check_key(key: object) -> bytes:
    if not isinstance(key, bytes) or not key:
        raise ValidationFailed(
            "the pseudonymisation key is empty: derive one with derive_key(secret, dataset)"
        )
    if len(key) < MIN_KEY_BYTES:
        raise ValidationFailed(
            f"the pseudonymisation key is {len(key)} bytes; use at least {MIN_KEY_BYTES} "
            "(derive_key gives 32)"
        )
    return key


def _replace(column: pa.Array, key: bytes, name: str) -> pa.Array:
    import pyarrow as pa
    import pyarrow.compute as pc

    if pa.types.is_dictionary(column.type):
        column = column.dictionary_decode()
    if pa.types.is_nested(column.type):
        raise ValidationFailed(
            f"column {name!r} has type {column.type}: only scalar columns can be pseudonymised"
        )
    # Hash each distinct value once per batch: identifiers repeat (a patient per visit).
    encoded = pc.dictionary_encode(column)
    distinct = encoded.dictionary.to_pylist()
    hashed = pa.array([pseudonym(v, key) for v in distinct], type=pa.string())
    return hashed.take(encoded.indices)  # null indices stay null


def pseudonymize_batches(
    batches: Iterable[pa.RecordBatch], columns: Sequence[str], key: bytes
) -> Iterator[pa.RecordBatch]:
    """The batches with each value of `columns` replaced by its keyed pseudonym.

    The named columns become strings; nulls stay null; other columns pass through. An
    empty or short key, or a column the batches do not have, raises ValidationFailed."""
    key = _check_key(key)
    names = [columns] if isinstance(columns, str) else list(dict.fromkeys(columns))
    if not names:
        raise ValidationFailed("name at least one column to pseudonymise")
    return _pseudonymized(batches, names, key)


def _output_schema(schema: pa.Schema, names: list[str]) -> pa.Schema:
    import pyarrow as pa

    missing = [n for n in names if not schema.get_all_field_indices(n)]
    if missing:
        raise ValidationFailed(
            f"no column named {', '.join(map(repr, missing))} to pseudonymise; "
            f"the columns are {', '.join(schema.names)}",
            columns=missing,
        )
    twice = [n for n in names if len(schema.get_all_field_indices(n)) > 1]
    if twice:
        raise ValidationFailed(
            f"more than one column is named {', '.join(map(repr, twice))}: rename them first",
            columns=twice,
        )
    out = schema
    for name in names:
        field = pa.field(name, pa.string(), nullable=True, metadata=_FIELD_NOTE)
        out = out.set(schema.get_field_index(name), field)
    return out


def _pseudonymized(
    batches: Iterable[pa.RecordBatch], names: list[str], key: bytes
) -> Iterator[pa.RecordBatch]:
    import pyarrow as pa

    schema: pa.Schema | None = None
    out_schema: pa.Schema | None = None
    for batch in batches:
        if schema is None or out_schema is None or not batch.schema.equals(schema):
            schema, out_schema = batch.schema, _output_schema(batch.schema, names)
        arrays = list(batch.columns)
        for name in names:
            i = schema.get_field_index(name)
            arrays[i] = _replace(arrays[i], key, name)
        yield pa.RecordBatch.from_arrays(arrays, schema=out_schema)
