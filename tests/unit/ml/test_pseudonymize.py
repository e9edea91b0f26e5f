"""Keyed pseudonymisation: joins survive, people do not, mistakes are named."""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterator

import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from farpoint.core.errors import ValidationFailed
from farpoint.ml.pseudonymize import derive_key, pseudonym, pseudonymize_batches

KEY = derive_key(b"s" * 32, "vitals-2024")
OTHER_KEY = derive_key(b"s" * 32, "claims-2024")


def _run(table: pa.Table, columns: list[str], key: bytes = KEY) -> pa.Table:
    return pa.Table.from_batches(
        list(pseudonymize_batches(table.to_batches(max_chunksize=3), columns, key))
    )


def test_pseudonym_is_a_truncated_hmac_sha256_of_the_value_text() -> None:
    expected = hmac.new(KEY, b"Grace Chen", hashlib.sha256).hexdigest()[:32]
    assert pseudonym("Grace Chen", KEY) == "ps_" + expected
    assert re.fullmatch(r"ps_[0-9a-f]{32}", pseudonym(1234567, KEY))


def test_named_columns_become_strings_nulls_stay_null_and_the_rest_pass_through() -> None:
    table = pa.table(
        {
            "mrn": pa.array([1234567, None, 7654321, 1234567], pa.int64()),
            "name": ["Grace Chen", "Omar Haddad", None, "Grace Chen"],
            "heart_rate": [72.0, 80.5, 66.0, 71.0],
        }
    )
    out = _run(table, ["mrn", "name"])
    assert out.schema.field("mrn").type == pa.string()
    assert out.schema.field("name").type == pa.string()
    assert out.column("heart_rate").equals(table.column("heart_rate"))
    mrn = out.column("mrn").to_pylist()
    assert mrn[1] is None and out.column("name").to_pylist()[2] is None
    assert mrn[0] == mrn[3] != mrn[2]  # the same patient, across batch boundaries
    assert "Grace Chen" not in str(out.to_pydict())
    assert out.schema.field("mrn").metadata == {b"farpoint.pseudonymized": b"hmac-sha256/128"}


def test_tables_pseudonymised_with_one_key_still_join() -> None:
    visits = pa.table({"patient": ["p1", "p2", "p1", "p3"], "ward": ["a", "b", "a", "c"]})
    patients = pa.table({"patient": ["p1", "p2", "p3"], "age": [40, 51, 63]})
    joined = _run(visits, ["patient"]).join(_run(patients, ["patient"]), "patient")
    assert joined.num_rows == 4 and sorted(joined.column("age").to_pylist()) == [40, 40, 51, 63]


def test_an_integer_and_its_text_share_a_pseudonym_so_mixed_type_keys_join() -> None:
    ints = _run(pa.table({"id": pa.array([42, 7], pa.int64())}), ["id"])
    texts = _run(pa.table({"id": ["42", "7"]}), ["id"])
    floats = _run(pa.table({"id": [42.0, 7.0]}), ["id"])
    assert ints.column("id").equals(texts.column("id"))
    assert ints.column("id").equals(floats.column("id"))


def test_different_keys_give_unrelated_pseudonyms() -> None:
    table = pa.table({"email": [f"u{i}@example.com" for i in range(50)]})
    a = set(_run(table, ["email"], KEY).column("email").to_pylist())
    b = set(_run(table, ["email"], OTHER_KEY).column("email").to_pylist())
    assert len(a) == len(b) == 50 and not a & b


def test_dictionary_columns_are_decoded_and_pseudonymised() -> None:
    names = pa.array(["Grace", "Omar", "Grace", None]).dictionary_encode()
    out = _run(pa.table({"n": names}), ["n"])
    values = out.column("n").to_pylist()
    assert out.schema.field("n").type == pa.string()
    assert values[0] == values[2] == pseudonym("Grace", KEY) and values[3] is None


@given(st.lists(st.one_of(st.none(), st.text(max_size=8)), min_size=1, max_size=40))
def test_equal_values_share_pseudonyms_and_different_ones_do_not(values: list[str | None]) -> None:
    out = _run(pa.table({"v": pa.array(values, pa.string())}), ["v"]).column("v").to_pylist()
    assert [o is None for o in out] == [v is None for v in values]
    for i, vi in enumerate(values):
        for j, vj in enumerate(values):
            if vi is not None and vj is not None:
                assert (out[i] == out[j]) == (vi == vj)


def test_an_unknown_column_is_named_in_the_error() -> None:
    batches = pa.table({"mrn": [1, 2]}).to_batches()
    with pytest.raises(ValidationFailed, match="'patient_name'") as caught:
        list(pseudonymize_batches(batches, ["mrn", "patient_name"], KEY))
    assert caught.value.extra["columns"] == ["patient_name"]
    assert "mrn" in caught.value.detail  # the columns there are, to help spot a typo


@pytest.mark.parametrize("key", [b"", b"too-short"])
def test_an_empty_or_short_key_is_refused_before_any_data_is_read(key: bytes) -> None:
    def batches() -> Iterator[pa.RecordBatch]:
        raise AssertionError("read the data")
        yield

    with pytest.raises(ValidationFailed, match="key"):
        pseudonymize_batches(batches(), ["mrn"], key)


def test_no_columns_duplicate_names_and_nested_columns_are_refused() -> None:
    table = pa.table({"mrn": [1], "tags": [[1, 2]]})
    with pytest.raises(ValidationFailed, match="at least one column"):
        pseudonymize_batches(table.to_batches(), [], KEY)
    with pytest.raises(ValidationFailed, match="only scalar columns"):
        list(pseudonymize_batches(table.to_batches(), ["tags"], KEY))
    twice = pa.Table.from_arrays([pa.array([1]), pa.array([2])], names=["mrn", "mrn"])
    with pytest.raises(ValidationFailed, match="more than one column"):
        list(pseudonymize_batches(twice.to_batches(), ["mrn"], KEY))


def test_a_single_column_name_given_as_a_string_is_one_column() -> None:
    out = _run(pa.table({"mrn": [1, 2]}), "mrn")  # type: ignore[arg-type]
    assert out.column("mrn").to_pylist() == [pseudonym(1, KEY), pseudonym(2, KEY)]


def test_derive_key_separates_datasets_and_purposes() -> None:
    secret = b"server-secret-000000000000000000"
    key = derive_key(secret, "vitals")
    assert len(key) == 32 and key == derive_key(secret, "vitals")
    assert key != derive_key(secret, "claims")
    assert key != derive_key(secret, "vitals", purpose="tokenize")
    assert key != derive_key(b"another-secret-00000000000000000", "vitals")
    # Length-prefixed inputs: moving a separator between the parts changes the key.
    assert derive_key(secret, "b/c", purpose="a") != derive_key(secret, "c", purpose="a/b")


@pytest.mark.parametrize(("secret", "dataset"), [(b"short", "vitals"), (b"s" * 32, "")])
def test_derive_key_refuses_weak_secrets_and_missing_dataset_names(
    secret: bytes, dataset: str
) -> None:
    with pytest.raises(ValidationFailed):
        derive_key(secret, dataset)
