"""The server's own retention timer: rows past their expiry are purged without anyone
having to ask (`POST /retention/sweep` does the same on demand)."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from sqlalchemy.orm import Session

from farpoint.server.audit import service as audit
from farpoint.server.context import AppContext
from farpoint.server.datasets import privacy

__all__ = ["RetentionTimer", "sweep", "sweep_once"]

log = logging.getLogger(__name__)
ACTOR = "system:retention"


def sweep(s: Session, ctx: AppContext, actor: str) -> list[str]:
    """Purge every expired version's rows, audited as `actor`, and commit; then delete the
    blobs no version refers to any more. The references of the versions purged."""
    refs, stale = privacy.sweep_retention(s, ctx.now())
    for ref in refs:
        audit.record(s, ctx, actor, "dataset.version.expire", ref)
    s.commit()
    privacy.delete_unreferenced(s, ctx.blobs, stale)
    return refs


def sweep_once(ctx: AppContext) -> list[str]:
    """One pass of the timer, in a session of its own."""
    with ctx.db.session() as s:
        refs = sweep(s, ctx, ACTOR)
    if refs:
        log.info("retention purged the rows of %s", ", ".join(refs))
    return refs


class RetentionTimer:
    def __init__(self, ctx: AppContext, every_s: float) -> None:
        self.ctx = ctx
        self.every_s = every_s
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.every_s)
            try:
                await asyncio.to_thread(sweep_once, self.ctx)
            except Exception:
                log.exception("retention sweep failed; trying again next time")

    def start(self) -> None:
        if self.every_s > 0 and self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
