"""Wakes long-polling devices when desired state may have changed."""

from __future__ import annotations

import asyncio

__all__ = ["Notifier"]


class Notifier:
    """A generation counter with waiters; each replica also re-checks on a timer."""

    def __init__(self) -> None:
        self._generation = 0
        self._waiters: set[asyncio.Future[None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def changed(self) -> None:
        """Call from any thread after a commit that may change some device's desired state."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        loop.call_soon_threadsafe(self._wake)

    def _wake(self) -> None:
        self._generation += 1
        for fut in self._waiters:
            if not fut.done():
                fut.set_result(None)
        self._waiters.clear()

    async def wait(self, timeout: float) -> None:
        """Return when something changed or after `timeout` seconds."""
        self._loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = self._loop.create_future()
        self._waiters.add(fut)
        try:
            await asyncio.wait_for(asyncio.shield(fut), timeout)
        except TimeoutError:
            pass
        finally:
            self._waiters.discard(fut)
