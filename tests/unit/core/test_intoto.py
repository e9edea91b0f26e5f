"""in-toto Statement v1: what the parser accepts, and everything it refuses."""

from __future__ import annotations

import contextlib
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from farpoint.core import intoto
from farpoint.core.errors import ValidationFailed
from farpoint.core.intoto import Statement, Subject, parse_statement, statement_bytes

HEX = "ab" * 32
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)
subjects = st.builds(
    Subject,
    name=st.text(max_size=40),
    digest=st.text("0123456789abcdef", min_size=64, max_size=64).map(lambda h: "sha256:" + h),
)


@given(
    st.lists(subjects, min_size=1, max_size=5),
    st.text(min_size=1, max_size=60),
    st.dictionaries(st.text(max_size=10), json_values, max_size=5),
)
def test_round_trip(subs, predicate_type, predicate):
    statement = Statement(tuple(subs), predicate_type, predicate)
    parsed = parse_statement(statement_bytes(statement))
    assert parsed == statement
    assert statement_bytes(parsed) == statement_bytes(statement)


@given(st.binary(max_size=300))
def test_arbitrary_bytes_parse_or_refuse_cleanly(data):
    with contextlib.suppress(ValidationFailed):  # any other exception fails the test
        parse_statement(data)


@given(json_values)
def test_arbitrary_json_parses_or_refuses_cleanly(value):
    try:
        statement = parse_statement(json.dumps(value))
    except ValidationFailed:
        return
    assert statement.subjects  # anything accepted names at least one subject


def _raw(**over):
    raw = {
        "_type": intoto.STATEMENT_TYPE,
        "subject": [{"name": "vitals@1", "digest": {"sha256": HEX}}],
        "predicateType": intoto.DATASET_V1,
        "predicate": {"a": 1},
    }
    raw.update(over)
    return raw


def test_accepts_a_statement_and_ignores_unknown_fields():
    parsed = parse_statement(json.dumps(_raw(extra="ignored")))
    assert parsed.digests == ["sha256:" + HEX]
    assert parsed.predicate_type == intoto.DATASET_V1


@pytest.mark.parametrize(
    "raw",
    [
        _raw(_type="https://in-toto.io/Statement/v0.1"),
        _raw(subject=[]),
        _raw(subject="vitals"),
        _raw(subject=[{"name": "x", "digest": {"sha512": HEX}}]),
        _raw(subject=[{"name": "x", "digest": {"sha256": HEX.upper()}}]),
        _raw(subject=[{"name": "x", "digest": {"sha256": HEX[:-2]}}]),
        _raw(subject=[{"name": 3, "digest": {"sha256": HEX}}]),
        _raw(subject=[{"name": "x", "digest": {"sha256": HEX}}] * (intoto.MAX_SUBJECTS + 1)),
        _raw(predicateType=""),
        _raw(predicate=[1, 2]),
    ],
)
def test_refuses_malformed_statements(raw):
    with pytest.raises(ValidationFailed):
        parse_statement(json.dumps(raw))


def test_refuses_duplicate_keys_and_non_json_numbers():
    text = json.dumps(_raw())
    doubled = text.replace('"predicate":', '"predicate": {"a": 2}, "predicate":', 1)
    with pytest.raises(ValidationFailed, match="repeats"):
        parse_statement(doubled)
    with pytest.raises(ValidationFailed):
        parse_statement(text.replace('{"a": 1}', '{"a": NaN}'))
    with pytest.raises(ValidationFailed):
        parse_statement(b"\xff\xfe")
