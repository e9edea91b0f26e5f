"""The audit chain rules, without a server: encoding, hashing, and what `verify` catches."""

from __future__ import annotations

import dataclasses
import hashlib
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from farpoint.core import audit_chain, dsse, keys
from farpoint.core.audit_chain import Checkpoint, Entry, Remembered, verify

KEY = keys.generate_private_key()
T0 = datetime(2025, 3, 1, 14, 5, 9, 123456, tzinfo=UTC)

texts = st.text(min_size=0, max_size=12)
digests = st.dictionaries(
    st.text(min_size=1, max_size=8),
    st.binary(min_size=1, max_size=8).map(lambda b: "sha256:" + hashlib.sha256(b).hexdigest()),
    max_size=3,
)
contents = st.lists(st.tuples(texts, texts, texts, digests), min_size=1, max_size=12)


def chain(items, start=T0):
    entries, prev = [], audit_chain.GENESIS
    for i, (actor, action, subject, ds) in enumerate(items, start=1):
        at = start + timedelta(seconds=i)
        h = audit_chain.entry_hash(
            seq=i, at=at, actor=actor, action=action, subject=subject, digests=ds, prev=prev
        )
        entries.append(Entry(i, at, actor, action, subject, ds, prev, h))
        prev = h
    return entries


def checkpoint(cp_id, entry, key=KEY):
    payload = audit_chain.checkpoint_payload(entry.seq, entry.hash, entry.at)
    return Checkpoint(cp_id, dsse.sign_envelope(payload, audit_chain.CHECKPOINT_TYPE, key))


def renumber(entries):
    """Entries keep their content but take positions 1..n (what a reorder looks like)."""
    return [dataclasses.replace(e, seq=i) for i, e in enumerate(entries, start=1)]


def test_canonical_encoding_is_the_documented_one():
    data = audit_chain.canonical_entry(
        seq=1, at=T0, actor="ana", action="team.create", subject="team/icü",
        digests={"b": "sha256:" + "b" * 64, "a": "sha256:" + "a" * 64}, prev=audit_chain.GENESIS,
    )  # fmt: skip
    expected = (
        '{"action":"team.create","actor":"ana","at":"2025-03-01T14:05:09.123456Z",'
        '"digests":{"a":"sha256:' + "a" * 64 + '","b":"sha256:' + "b" * 64 + '"},'
        '"prev":"sha256:' + "0" * 64 + '","seq":1,"subject":"team/ic\\u00fc"}'
    )
    assert data == expected.encode()


def test_times_are_utc_with_six_fraction_digits_and_never_naive():
    plus_two = datetime(2025, 3, 1, 18, 5, 9, tzinfo=timezone(timedelta(hours=2)))
    assert audit_chain.format_time(plus_two) == "2025-03-01T16:05:09.000000Z"
    with pytest.raises(ValueError):
        audit_chain.format_time(datetime(2025, 3, 1))


@settings(max_examples=60, deadline=None)
@given(contents)
def test_an_untouched_chain_verifies(items):
    entries = chain(items)
    result = verify(entries, [checkpoint(1, entries[-1])], KEY.public_key())
    assert result.ok, result.problem
    assert (result.entries, result.head_hash, result.checkpoints) == (
        len(entries), entries[-1].hash, 1,
    )  # fmt: skip
    assert result.latest is not None and result.latest.seq == len(entries)


@settings(max_examples=60, deadline=None)
@given(contents, st.data())
def test_any_edit_names_the_edited_entry(items, data):
    entries = chain(items)
    k = data.draw(st.integers(0, len(entries) - 1))
    field = data.draw(st.sampled_from(["actor", "action", "subject", "at", "digests"]))
    old = getattr(entries[k], field)
    if field == "at":
        new = old + timedelta(microseconds=1)
    elif field == "digests":
        new = {} if "x" in old else {**old, "x": "sha256:" + "1" * 64}
    else:
        new = old + "!"
    entries[k] = dataclasses.replace(entries[k], **{field: new})
    result = verify(entries, [], KEY.public_key())
    assert result.problem == f"entry {k + 1}: hash does not match its content (edited?)"


@settings(max_examples=60, deadline=None)
@given(contents.filter(lambda c: len(c) >= 3), st.data())
def test_a_deleted_entry_is_named(items, data):
    entries = chain(items)
    k = data.draw(st.integers(0, len(entries) - 2))  # not the last: that is truncation
    del entries[k]
    before = "the start" if k == 0 else str(k)
    assert verify(entries, [], KEY.public_key()).problem == (
        f"entry {k + 1} missing: seq jumps from {before} to {k + 2} (deleted?)"
    )


@settings(max_examples=60, deadline=None)
@given(contents.filter(lambda c: len(c) >= 2), st.data())
def test_swapped_content_is_named_as_a_reorder(items, data):
    entries = chain(items)
    k = data.draw(st.integers(0, len(entries) - 2))
    entries[k], entries[k + 1] = entries[k + 1], entries[k]
    assert verify(renumber(entries), [], KEY.public_key()).problem == (
        f"entry {k + 1}: holds the content of entry {k + 2} (reordered?)"
    )


def test_a_rewritten_entry_with_its_own_hash_fixed_breaks_the_next_link():
    entries = chain([("a", "x", "s1", {}), ("b", "x", "s2", {}), ("c", "x", "s3", {})])
    forged = chain([("a", "x", "s1", {}), ("mallory", "x", "s2", {})])[1]
    entries[1] = forged
    assert verify(entries, [], KEY.public_key()).problem == (
        "entry 3: prev_hash does not link to entry 2 (reordered, or entry 2 rewritten?)"
    )


def test_a_chain_rebuilt_from_scratch_is_caught_by_its_checkpoint():
    honest = chain([("a", "x", "s", {})] * 4)
    rebuilt = chain([("a", "x", "s", {})] * 2 + [("mallory", "x", "s", {})] * 2)
    result = verify(rebuilt, [checkpoint(1, honest[0]), checkpoint(2, honest[3])], KEY.public_key())
    assert result.problem == (
        "entry 4: hash differs from the one checkpoint 2 signed (entries up to 4 rewritten?)"
    )


@settings(max_examples=40, deadline=None)
@given(contents.filter(lambda c: len(c) >= 2), st.data())
def test_truncation_below_a_checkpoint_is_named(items, data):
    entries = chain(items)
    keep = data.draw(st.integers(0, len(entries) - 1))
    result = verify(entries[:keep], [checkpoint(7, entries[-1])], KEY.public_key())
    assert (
        result.problem == f"chain ends at {keep} but checkpoint 7 covers {len(entries)} (truncated)"
    )


def test_a_checkpoint_signed_by_another_key_is_refused():
    entries = chain([("a", "x", "s", {})])
    forged = checkpoint(3, entries[0], key=keys.generate_private_key())
    problem = verify(entries, [forged], KEY.public_key()).problem
    assert problem is not None and problem.startswith("checkpoint 3: no signature")


def test_a_checkpoint_of_another_payload_type_is_refused():
    entries = chain([("a", "x", "s", {})])
    payload = audit_chain.checkpoint_payload(1, entries[0].hash, T0)
    other = Checkpoint(1, dsse.sign_envelope(payload, dsse.MANIFEST_TYPE, KEY))
    problem = verify(entries, [other], KEY.public_key()).problem
    assert problem is not None and "payload type" in problem


def test_an_unexpected_key_is_refused_before_anything_else():
    entries = chain([("a", "x", "s", {})])
    result = verify(entries, [], KEY.public_key(), expected_key_id="sha256:" + "f" * 64)
    assert result.problem is not None and "not the expected sha256:fff" in result.problem


def _remembered(entry, key_id=None):
    return Remembered(key_id or keys.key_id(KEY.public_key()), entry.seq, entry.hash, "x", "then")


def test_a_remembered_checkpoint_must_still_be_in_the_chain():
    entries = chain([("a", "x", "s", {})] * 6)
    seen = _remembered(entries[5])
    cut = verify(entries[:4], [checkpoint(1, entries[0])], KEY.public_key(), seen)
    assert cut.problem == (
        "chain ends at 4 but a checkpoint verified on then covered 6 "
        "(truncated, and its checkpoints removed)"
    )
    rebuilt = chain([("a", "x", "s", {})] * 5 + [("b", "x", "s", {})])
    assert verify(rebuilt, [], KEY.public_key(), seen).problem == (
        "entry 6: hash differs from the checkpoint verified on then (rewritten?)"
    )
    grown = chain([("a", "x", "s", {})] * 8)
    ok = verify(grown, [checkpoint(1, grown[7])], KEY.public_key(), seen)
    assert ok.ok and ok.latest is not None and ok.latest.seq == 8


def test_a_remembered_checkpoint_pins_the_key():
    entries = chain([("a", "x", "s", {})])
    seen = _remembered(entries[0], key_id="sha256:" + "e" * 64)
    result = verify(entries, [], KEY.public_key(), seen, expected_key_id=seen.key_id)
    assert result.problem is not None and "not the expected sha256:eee" in result.problem


def test_an_empty_chain_verifies_and_reports_nothing_to_remember():
    result = verify([], [], KEY.public_key())
    assert result.ok and result.entries == 0 and result.latest is None
