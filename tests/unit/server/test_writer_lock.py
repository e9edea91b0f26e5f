"""SQLite writers queue on the writer lock (`db.WriterLock`) instead of SQLite's sleeping
busy handler; reads take nothing."""

from __future__ import annotations

import fcntl
import multiprocessing as mp
import os
from pathlib import Path

import pytest
from sqlalchemy import text

from farpoint.server.db import Database


def _locked(path: Path) -> bool:
    fd = os.open(path, os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing drops a lock taken here
    return False


@pytest.mark.parametrize("end", ["commit", "rollback"])
def test_a_write_transaction_holds_the_writer_lock_until_it_ends(tmp_path: Path, end: str) -> None:
    db = Database(f"sqlite:///{tmp_path / 'x.db'}")
    lock = tmp_path / "x.db.writer-lock"
    with db.engine.begin() as c:
        c.execute(text("CREATE TABLE t (a INTEGER)"))
    s = db.sessions()
    try:
        s.execute(text("SELECT count(*) FROM t")).scalar()
        assert not _locked(lock)  # reading takes nothing
        s.execute(text("INSERT INTO t VALUES (1)"))
        assert _locked(lock)
        s.execute(text("SELECT count(*) FROM t")).scalar()
        assert _locked(lock)
        getattr(s, end)()
        assert not _locked(lock)
    finally:
        s.close()
    db.dispose()


def test_writers_in_two_processes_all_commit(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    db = Database(url)
    with db.engine.begin() as c:
        c.execute(text("CREATE TABLE t (a INTEGER)"))

    def write(tag: int) -> None:
        mine = Database(url)
        for i in range(200):
            with mine.session() as s:
                s.execute(text("INSERT INTO t VALUES (:a)"), {"a": tag * 1000 + i})
        mine.dispose()
        os._exit(0)

    ctx = mp.get_context("fork")
    procs = [ctx.Process(target=write, args=(k,)) for k in range(2)]
    for p in procs:
        p.start()
    write_here = Database(url)
    with write_here.session() as s:
        s.execute(text("INSERT INTO t VALUES (-1)"))
    for p in procs:
        p.join(30)
        assert p.exitcode == 0
    with db.session() as s:
        assert s.execute(text("SELECT count(*) FROM t")).scalar() == 401
    db.dispose()
    write_here.dispose()


def test_short_reads_run_on_the_event_loop_for_sqlite_and_in_a_thread_behind_a_network(
    tmp_path: Path,
) -> None:
    import asyncio
    import threading

    async def where(db: Database) -> bool:
        loop_thread = threading.get_ident()
        return await db.read(lambda: threading.get_ident() == loop_thread)

    local = Database(f"sqlite:///{tmp_path / 'x.db'}")
    remote = Database("postgresql+psycopg://nobody@127.0.0.1:1/none")  # never connected
    assert asyncio.run(where(local)) is True
    assert asyncio.run(where(remote)) is False
    local.dispose()
