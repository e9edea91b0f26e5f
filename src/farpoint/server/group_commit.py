"""Group commit: many small units of work written by one thread, one transaction per batch.

Devices report often and each report is a handful of small writes. Written from many
request threads, they fight over SQLite's single write lock (whose busy handler sleeps up
to 100 ms between tries) and pay one commit each. Queued here instead, they are applied
in arrival order by one writer thread, as many as are waiting in one transaction, and
each caller is answered only after the commit that holds its work: what a device is told
was stored, is stored. A unit of work that raises makes its batch roll back; the batch is
then written again one unit per transaction, so only that unit fails.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

from sqlalchemy.orm import Session

from farpoint.server.db import Database

__all__ = ["GroupCommit"]

T = TypeVar("T")


class GroupCommit:
    """One writer thread over one database, started on first use."""

    MAX_BATCH = 200
    """Units per transaction at most: a long batch delays its first caller's answer."""

    def __init__(self, db: Database, name: str = "farpoint-group-commit") -> None:
        self._db = db
        self._name = name
        self._queue: deque[tuple[Callable[[Session], Any], Future[Any]]] = deque()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closed = False
        self.batches = 0
        """Transactions committed (for tests and metrics)."""

    def submit(self, work: Callable[[Session], T]) -> Future[T]:
        """Queue `work(session)`; the future holds its result once its batch committed,
        or the exception it (or the commit) raised."""
        fut: Future[T] = Future()
        with self._cond:
            self._queue.append((work, fut))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()
            self._cond.notify()
        return fut

    def close(self, timeout_s: float = 5.0) -> None:
        """Write what is queued, then stop the thread (a later `submit` starts another:
        an app can be started again after it stopped)."""
        with self._cond:
            self._closed = True
            self._cond.notify()
            thread = self._thread
        if thread is not None:
            thread.join(timeout_s)
        with self._cond:
            self._closed = False

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: bool(self._queue) or self._closed)
                if not self._queue:  # closed and drained
                    self._thread = None
                    return
                batch = [
                    self._queue.popleft() for _ in range(min(len(self._queue), self.MAX_BATCH))
                ]
            self._write(batch)

    def _write(self, batch: list[tuple[Callable[[Session], Any], Future[Any]]]) -> None:
        try:
            with self._db.session() as s:
                results = [work(s) for work, _ in batch]
        except BaseException as exc:
            if len(batch) == 1:
                batch[0][1].set_exception(exc)
                return
            for item in batch:  # alone, so only the unit that raised fails
                self._write([item])
            return
        self.batches += 1
        for (_, fut), result in zip(batch, results, strict=True):
            fut.set_result(result)
