"""The device writer: units of work group-committed by one thread (server/group_commit.py)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from farpoint.server.db import Database
from farpoint.server.group_commit import GroupCommit


@pytest.fixture
def db(tmp_path: Path) -> Database:
    database = Database(f"sqlite:///{tmp_path / 'g.db'}")
    with database.engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT NOT NULL)"))
    return database


def _insert(k: int, v: str | None = "x"):  # type: ignore[no-untyped-def]
    def work(s: Session) -> int:
        s.execute(text("INSERT INTO t (k, v) VALUES (:k, :v)"), {"k": k, "v": v})
        return k

    return work


def _hold(writer: GroupCommit) -> threading.Event:
    """Occupy the writer with a unit that waits for the returned event; returns once the
    writer is inside it (so what is submitted next queues behind it)."""
    inside, gate = threading.Event(), threading.Event()

    def work(s: Session) -> bool:
        inside.set()
        return gate.wait(10)

    writer.submit(work)
    assert inside.wait(10)
    return gate


def _count(db: Database) -> int:
    with db.engine.connect() as conn:
        return int(conn.execute(text("SELECT count(*) FROM t")).scalar_one())


def test_waiting_units_share_a_transaction_and_each_is_answered_after_its_commit(
    db: Database,
) -> None:
    writer = GroupCommit(db)
    gate = _hold(writer)  # until 99 more wait behind it
    futures = [writer.submit(_insert(k)) for k in range(99)]
    gate.set()
    seen_at_answer = []
    for f in futures:
        f.result(10)
        seen_at_answer.append(_count(db))
    assert [f.result() for f in futures] == list(range(99))
    assert min(seen_at_answer) == 99, "a caller was answered before its unit was committed"
    assert writer.batches == 2, "the 99 waiting units were not written in one transaction"
    writer.close()


def test_a_unit_that_fails_fails_alone(db: Database) -> None:
    writer = GroupCommit(db)
    gate = _hold(writer)
    good = [writer.submit(_insert(k)) for k in (1, 2)]
    bad = writer.submit(_insert(3, None))  # NOT NULL violated
    more = writer.submit(_insert(4))
    gate.set()
    assert [f.result(10) for f in good] == [1, 2]
    assert more.result(10) == 4
    with pytest.raises(Exception, match="NOT NULL"):
        bad.result(10)
    assert _count(db) == 3
    writer.close()


def test_many_threads_submitting_at_once_all_land(db: Database) -> None:
    writer = GroupCommit(db)
    with ThreadPoolExecutor(max_workers=16) as pool:
        results = list(pool.map(lambda k: writer.submit(_insert(k)).result(30), range(400)))
    assert sorted(results) == list(range(400))
    assert _count(db) == 400
    assert writer.batches < 400, "no unit of work shared a transaction with another"
    writer.close()


def test_close_drains_the_queue_and_a_later_submit_starts_again(db: Database) -> None:
    writer = GroupCommit(db)
    gate = _hold(writer)
    queued = [writer.submit(_insert(k)) for k in range(5)]
    threading.Timer(0.2, gate.set).start()
    writer.close()
    assert all(f.done() for f in queued)
    assert _count(db) == 5
    assert writer.submit(_insert(5)).result(10) == 5
    writer.close()
