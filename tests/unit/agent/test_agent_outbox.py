"""The bounded on-disk telemetry queue: order, acknowledgement, bounds, restarts, torn writes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from farpoint.agent.outbox import Outbox


def _record(i: int, pad: int = 0) -> dict[str, object]:
    return {"start": f"t{i}", "end": f"t{i + 1}", "models": {}, "resources": {"pad": "x" * pad}}


def _starts(records: list[dict[str, object]]) -> list[object]:
    return [r["start"] for r in records]


def test_records_go_oldest_first_and_only_acknowledged_ones_are_deleted(tmp_path: Path) -> None:
    box = Outbox(tmp_path)
    seqs = [box.append(_record(i)) for i in range(5)]
    assert seqs == [0, 1, 2, 3, 4]
    batch = box.batch(10_000)
    assert [r["seq"] for r in batch] == seqs and _starts(batch) == ["t0", "t1", "t2", "t3", "t4"]
    # nothing is deleted by reading; a restart (or a lost answer) sends them again
    again = Outbox(tmp_path)
    assert [r["seq"] for r in again.batch(10_000)] == seqs
    again.ack(2)
    assert [r["seq"] for r in again.batch(10_000)] == [3, 4]
    assert [r["seq"] for r in Outbox(tmp_path).batch(10_000)] == [3, 4]


def test_a_batch_fits_the_bytes_it_is_given(tmp_path: Path) -> None:
    box = Outbox(tmp_path)
    for i in range(10):
        box.append(_record(i, pad=900))
    batch = box.batch(5000)
    assert 1 <= len(batch) < 10
    assert len(json.dumps(batch, separators=(",", ":"))) <= 5000
    assert [r["seq"] for r in batch] == list(range(len(batch)))
    assert box.batch(100) == []  # the oldest does not fit: nothing, rather than a gap


def test_sequence_numbers_only_grow_across_restarts(tmp_path: Path) -> None:
    box = Outbox(tmp_path)
    for i in range(3):
        box.append(_record(i))
    box.ack(2)
    assert box.pending == 0 and list(tmp_path.glob("seg-*")) == []
    assert Outbox(tmp_path).append(_record(9)) == 3


def test_past_its_bounds_the_queue_drops_the_oldest_and_counts_them(tmp_path: Path) -> None:
    box = Outbox(tmp_path, max_records=4)
    for i in range(7):
        box.append(_record(i))
    assert box.pending == 4 and box.dropped == 3
    assert _starts(box.batch(10_000)) == ["t3", "t4", "t5", "t6"]
    reopened = Outbox(tmp_path, max_records=4)
    assert reopened.dropped == 3 and reopened.pending == 4
    reopened.ack(4, dropped_reported=3)
    assert reopened.dropped == 0 and Outbox(tmp_path).dropped == 0

    by_bytes = Outbox(tmp_path / "b", max_bytes=3000)
    for i in range(10):
        by_bytes.append(_record(i, pad=900))
    assert by_bytes.queued_bytes <= 3000 and by_bytes.pending == 3
    assert by_bytes.dropped == 7 and _starts(by_bytes.batch(10_000)) == ["t7", "t8", "t9"]


def test_a_record_too_big_to_send_is_dropped_and_counted(tmp_path: Path) -> None:
    box = Outbox(tmp_path, max_record_bytes=1000)
    assert box.append(_record(0, pad=2000)) is None
    assert box.pending == 0 and box.dropped == 1
    assert box.append(_record(1)) == 0


def test_a_torn_last_record_is_skipped_and_cut_off(tmp_path: Path) -> None:
    box = Outbox(tmp_path)
    for i in range(3):
        box.append(_record(i))
    [segment] = tmp_path.glob("seg-*.log")
    whole = segment.read_bytes()
    segment.write_bytes(whole + b'3 0badc0de {"start":"t3","en')  # the power went here
    reopened = Outbox(tmp_path)
    assert _starts(reopened.batch(10_000)) == ["t0", "t1", "t2"]
    assert reopened.skipped == 1 and reopened.dropped == 1
    assert segment.read_bytes() == whole
    assert reopened.append(_record(4)) == 3
    assert _starts(Outbox(tmp_path).batch(10_000)) == ["t0", "t1", "t2", "t4"]


def test_a_corrupt_record_anywhere_is_skipped_not_fatal(tmp_path: Path) -> None:
    box = Outbox(tmp_path)
    for i in range(3):
        box.append(_record(i))
    [segment] = tmp_path.glob("seg-*.log")
    data = bytearray(segment.read_bytes())
    data[data.index(b'"start":"t1"') + 9] ^= 0x20  # a flipped bit in the middle record
    segment.write_bytes(bytes(data))
    reopened = Outbox(tmp_path)
    assert _starts(reopened.batch(10_000)) == ["t0", "t2"]
    assert reopened.skipped == 1 and reopened.dropped == 1
    # and a record rotting after it was queued is dropped when read, not sent
    data = bytearray(segment.read_bytes())
    data[data.index(b'"start":"t2"') + 9] ^= 0x20
    segment.write_bytes(bytes(data))
    assert _starts(reopened.batch(10_000)) == ["t0"] and reopened.dropped == 2


def test_an_unreadable_cursor_means_resending_not_losing(tmp_path: Path) -> None:
    box = Outbox(tmp_path)
    for i in range(3):
        box.append(_record(i))
    box.ack(0)
    (tmp_path / "cursor.json").write_text("{garbage")
    assert _starts(Outbox(tmp_path).batch(10_000)) == ["t0", "t1", "t2"]


def test_segments_rotate_and_go_once_every_record_in_them_is_accepted(tmp_path: Path) -> None:
    box = Outbox(tmp_path, segment_bytes=2000)
    for i in range(12):
        box.append(_record(i, pad=400))
    assert len(list(tmp_path.glob("seg-*.log"))) >= 3
    box.ack(5)
    kept = Outbox(tmp_path, segment_bytes=2000)
    assert [r["seq"] for r in kept.batch(100_000)] == list(range(6, 12))
    kept.ack(11)
    assert list(tmp_path.glob("seg-*.log")) == []


def test_drop_oldest_gives_up_on_one_record(tmp_path: Path) -> None:
    box = Outbox(tmp_path)
    box.append(_record(0))
    box.append(_record(1))
    assert box.drop_oldest() == 0
    assert _starts(box.batch(10_000)) == ["t1"] and box.dropped == 1
    assert Outbox(tmp_path).dropped == 1


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(count=st.integers(1, 6), cut=st.floats(0.0, 1.0))
def test_a_power_cut_at_any_byte_leaves_every_whole_record_and_nothing_else(
    tmp_path_factory: pytest.TempPathFactory, count: int, cut: float
) -> None:
    home = tmp_path_factory.mktemp("box")
    box = Outbox(home)
    for i in range(count):
        box.append(_record(i))
    [segment] = home.glob("seg-*.log")
    data = segment.read_bytes()
    at = int(len(data) * cut)
    segment.write_bytes(data[:at])
    whole = data[:at].count(b"\n")
    reopened = Outbox(home)
    assert _starts(reopened.batch(100_000)) == [f"t{i}" for i in range(whole)]
    assert reopened.skipped == (0 if at == 0 or data[at - 1 : at] == b"\n" else 1)
    assert reopened.append(_record(99)) == whole
    assert _starts(Outbox(home).batch(100_000))[-1] == "t99"
