"""Database engine, ORM base and the per-request session."""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from sqlalchemy import JSON, DateTime, Engine, MetaData, create_engine, event
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator
from starlette.concurrency import run_in_threadpool

__all__ = ["Base", "Database", "UTCDateTime", "WriterLock", "utcnow"]

P = ParamSpec("P")
T = TypeVar("T")

_NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every database (SQLite hands back naive ones)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=_NAMING)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON, list[Any]: JSON}


def _json_dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


class Database:
    """One engine and its session factory."""

    def __init__(self, url: str) -> None:
        self.url = url
        kwargs: dict[str, Any] = {"json_serializer": _json_dumps}
        if url.startswith("sqlite"):
            path = url.split("///", 1)[-1]
            if path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
            # more than the threads that query (request threads, the device writer, the
            # rollout controller): a returned connection is kept, not closed and reopened
            kwargs.update(pool_size=16, max_overflow=32)
        else:
            kwargs.update(pool_size=10, max_overflow=10, pool_pre_ping=True)
        self.engine: Engine = create_engine(url, **kwargs)
        if url.startswith("sqlite"):
            event.listen(self.engine, "connect", _sqlite_pragmas)
            if path and path != ":memory:" and not path.startswith("file:"):
                WriterLock(Path(path + ".writer-lock")).install(self.engine)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        self.reads_inline = url.startswith("sqlite")
        """Short reads run on the event loop itself (see `read`)."""

    async def read(self, work: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run a short read-only unit of work for an async route.

        On SQLite it runs right here, on the event loop: a WAL reader never waits for a
        lock and an indexed lookup takes tens of microseconds, less than handing it to a
        request thread and back, where each of its queries also waits for the GIL when it
        returns from SQLite (up to the switch interval). Behind a network (PostgreSQL) it
        runs in a request thread, so the loop never waits on a round trip."""
        if self.reads_inline:
            return work(*args, **kwargs)
        return await run_in_threadpool(work, *args, **kwargs)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A unit of work: commits on success, rolls back on any error."""
        s = self.sessions()
        try:
            yield s
            s.commit()
        except BaseException:
            s.rollback()
            raise
        finally:
            s.close()

    def dispose(self) -> None:
        self.engine.dispose()


class WriterLock:
    """One writer at a time on a SQLite file, across threads and processes, queued on a
    kernel lock instead of SQLite's busy handler.

    SQLite lets one connection write at a time; a connection that finds the write lock
    taken retries on a timer that sleeps 1 ms, then 2, 5, 10... up to 100 ms between
    tries, so under steady writes (the device writer, request threads, the rollout
    controller, another process on the same file) a commit can wait 100 ms after the lock
    was free. Here a transaction takes an exclusive `flock` on a file beside the database
    before its first write (INSERT, UPDATE, DELETE, REPLACE) and drops it when it commits
    or rolls back: waiters sleep in the kernel and the next one runs as soon as the lock is
    released.
    Reads take nothing (WAL readers never wait). SQLite's own locking still guards the
    file; a writer this lock does not see (schema migrations, the `sqlite3` shell) is
    waited for by the busy handler as before. Each pooled connection has its own open file
    description, so the lock also orders threads of one process.
    """

    _WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE")

    def __init__(self, path: Path) -> None:
        self.path = path

    def install(self, engine: Engine) -> None:
        event.listen(engine, "before_cursor_execute", self._before_execute)
        # Released after the transaction ended, not in the engine's commit event (which
        # fires before the commit): the dialect's own commit and rollback are wrapped.
        dialect = engine.dialect
        for name in ("do_commit", "do_rollback"):
            setattr(dialect, name, self._releasing(getattr(dialect, name)))
        event.listen(engine.pool, "close", self._forget)

    def _before_execute(self, conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        info = conn.connection.info  # the pooled DBAPI connection's own dict
        if "writer_lock_held" in info or not statement.lstrip()[:7].upper().startswith(
            self._WRITES
        ):
            return
        fd = info.get("writer_lock_fd")
        if fd is None:
            fd = info["writer_lock_fd"] = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)  # releases the GIL while it waits
        info["writer_lock_held"] = True

    @staticmethod
    def _release(info: Any) -> None:
        if info.pop("writer_lock_held", False):
            fcntl.flock(info["writer_lock_fd"], fcntl.LOCK_UN)

    def _releasing(self, end: Callable[[Any], None]) -> Callable[[Any], None]:
        def ended(pooled: Any) -> None:
            try:
                end(pooled)
            finally:
                try:
                    info = pooled.info
                except NotImplementedError:  # the engine's first connect: an info-less adapter
                    return
                self._release(info)

        return ended

    def _forget(self, _dbapi_conn: Any, record: Any) -> None:
        self._release(record.info)
        fd = record.info.pop("writer_lock_fd", None)
        if fd is not None:
            os.close(fd)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()
