"""The rollout controller: moves rollouts on when devices report and on a timer.

Device reports advance the rollouts that snapshotted the device, in the report's own
transaction. A timer, held by one replica at a time through a lease row, counts out devices that
reported no progress for their rollout's pending timeout and re-judges every running
rollout. Either
way a rollout is locked while it is judged, so two replicas never advance it at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session

from farpoint.server.context import AppContext
from farpoint.server.rollouts import repository as repo
from farpoint.server.rollouts.rules import (
    Standing,
    Tally,
    classify,
    device_phase,
    next_action,
)
from farpoint.server.rollouts.tables import Rollout, RolloutBatch
from farpoint.wire.devices import DeviceModelStatus

__all__ = ["LEASE", "RolloutController", "advance", "on_report", "start_batch", "stop", "tallies"]

log = logging.getLogger("farpoint.rollouts")
LEASE = "rollout-controller"


def tallies(s: Session, rollout: Rollout) -> tuple[dict[int, Tally], int]:
    """Each batch's devices by class, and the failures over the whole rollout: read from
    the batch rows' counters, a few rows whatever the number of devices."""
    out = {}
    for b in repo.batches(s, rollout.id):
        rest = b.size - b.healthy - b.failed - b.timed_out
        out[b.idx] = Tally(b.healthy, b.failed, b.timed_out, rest)
    return out, sum(t.failed for t in out.values())


def _count(b: RolloutBatch, cls: str, delta: int) -> None:
    if cls == "healthy":
        b.healthy += delta
    elif cls == "failed":
        b.failed += delta
    elif cls == "timed_out":
        b.timed_out += delta


def _finish_batch(s: Session, rollout: Rollout, state: str, now: datetime) -> None:
    if rollout.current_batch < 0:
        return
    b = repo.batch(s, rollout.id, rollout.current_batch)
    if b is not None and b.state == "running":
        b.state = state
        b.finished_at = now


def start_batch(s: Session, rollout: Rollout, now: datetime) -> None:
    """Start the batch after the current one: its devices are assigned the new release."""
    _finish_batch(s, rollout, "succeeded", now)
    idx = rollout.current_batch + 1
    b = repo.batch(s, rollout.id, idx)
    assert b is not None, f"rollout {rollout.id} has no batch {idx}"
    b.state = "running"
    b.started_at = now
    repo.assign_batch(s, rollout.id, idx, rollout.to_release_id, now)
    rollout.current_batch = idx


def stop(s: Session, rollout: Rollout, state: str, reason: str, now: datetime) -> None:
    """End a rollout: the running batch ends `failed` (or `stopped` when aborted)."""
    _finish_batch(s, rollout, "stopped" if state == "aborted" else "failed", now)
    rollout.state = state
    rollout.reason = reason
    rollout.paused_reason = None
    rollout.finished_at = now


def advance(s: Session, rollout: Rollout, now: datetime) -> bool:
    """Apply the next actions of a locked rollout until it has to wait; True when a
    device's desired state may have changed (a batch started, devices were returned, or
    the rollout failed, which changes what devices joining the fleet get)."""
    changed = False
    for _ in range(rollout.batch_count + 2):  # each pass starts a batch or stops
        by_batch, failures = tallies(s, rollout)
        action = next_action(
            Standing(
                state=rollout.state,
                current_batch=rollout.current_batch,
                batch_count=rollout.batch_count,
                tally=by_batch.get(rollout.current_batch, Tally()),
                failures=failures,
                max_failures=rollout.max_failures,
                success_threshold=rollout.success_threshold,
                approve_between_batches=rollout.approve_between_batches,
                rollback_on_failure=rollout.rollback_on_failure,
            )
        )
        if action.kind == "wait":
            break
        if action.kind == "start_next":
            start_batch(s, rollout, now)
            changed = True
            s.flush()
            continue
        if action.kind == "await_approval":
            _finish_batch(s, rollout, "succeeded", now)
            rollout.state = "paused"
            rollout.paused_reason = action.reason
        elif action.kind == "succeed":
            _finish_batch(s, rollout, "succeeded", now)
            rollout.state = "succeeded"
            rollout.paused_reason = None
            rollout.finished_at = now
        elif action.kind == "fail":
            stop(s, rollout, "failed", action.reason, now)
            changed = True
        elif action.kind == "roll_back":
            returned = repo.return_devices(s, rollout.id, now)
            reason = f"{action.reason}; {returned} device(s) returned to their previous release"
            stop(s, rollout, "rolled_back", reason, now)
            changed = True
        break
    s.flush()
    return changed


def on_report(
    s: Session, device_id: str, models: Sequence[DeviceModelStatus], now: datetime
) -> bool:
    """Fold one device's status report into the running rollouts that snapshotted it,
    and into ended ones it is still catching up with (their rows and counters follow it;
    nothing is judged again); True when some device's desired state may have changed."""
    by_model = {m.model: m for m in models}
    changed = False
    for rollout, row in repo.active_rows_for_device(s, device_id):
        m = by_model.get(rollout.model)
        if m is None or row.assigned_release_id is None:
            continue  # nothing about the model, or the device's batch has not started
        if rollout.state not in repo.ACTIVE_STATES and m.release_id != rollout.to_release_id:
            continue  # an ended rollout's record only moves forward with its own release
        phase, committed = device_phase(
            rollout.id, rollout.to_release_id, m.release_id, m.phase, m.committed, m.rollout_id
        )
        error = m.error if phase != "pending" else None
        if (row.phase, row.committed, row.error) == (phase, committed, error):
            continue  # no progress: a timed-out device stays counted out
        was = classify(row.phase, row.committed, row.timed_out, rollout.window_s)
        now_is = classify(phase, committed, False, rollout.window_s)
        row.phase, row.committed, row.error, row.timed_out = phase, committed, error, False
        row.updated_at = now
        if now_is != was:
            # Only a device turning healthy, failed, silent or back can move the rollout:
            # downloading → verifying → installing is progress, not a verdict.
            b = repo.batch(s, rollout.id, row.batch_index)
            assert b is not None, f"rollout {rollout.id} has no batch {row.batch_index}"
            _count(b, was, -1)
            _count(b, now_is, +1)
            s.flush()
            changed |= advance(s, rollout, now)
        else:
            s.flush()
    return changed


def _time_out_stalled(s: Session, rollout: Rollout, now: datetime) -> None:
    """Count out the current batch's devices that reported no progress on the release for
    `pending_timeout_s` since it started: offline ones, and ones another fleet decides for."""
    if rollout.current_batch < 0:
        return
    b = repo.batch(s, rollout.id, rollout.current_batch)
    if b is None or b.started_at is None:
        return
    since = now - timedelta(seconds=rollout.pending_timeout_s)
    if b.started_at <= since:
        b.timed_out += repo.mark_stalled(
            s, rollout.id, rollout.current_batch, since, rollout.window_s
        )


class RolloutController:
    """The timed half of the controller, one per server process."""

    def __init__(self, ctx: AppContext, every_s: float) -> None:
        self.ctx = ctx
        self.every_s = every_s
        self.holder = f"{socket.gethostname()[:30]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._task: asyncio.Task[None] | None = None

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self.ctx.clock(), UTC)

    def tick(self) -> bool:
        """One pass, if this replica holds the lease: time out stalled devices and re-judge
        every running or paused rollout, each in its own transaction. True when a device's
        desired state may have changed (the caller wakes long-polls)."""
        now = self._now()
        lease_s = max(3 * self.every_s, 10.0)
        with self.ctx.db.session() as s:
            if not repo.claim_lease(s, LEASE, self.holder, now, now + timedelta(seconds=lease_s)):
                return False
        with self.ctx.db.session() as s:
            ids = repo.active_rollout_ids(s)
        changed = False
        for rollout_id in ids:
            with self.ctx.db.session() as s:
                rollout = repo.lock_rollout(s, rollout_id)
                if rollout is None or rollout.state not in repo.ACTIVE_STATES:
                    continue
                _time_out_stalled(s, rollout, now)
                changed |= advance(s, rollout, now)
        return changed

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.every_s)
            try:
                changed = await asyncio.to_thread(self.tick)
            except Exception:
                log.exception("rollout controller pass failed; trying again next time")
                continue
            if changed:
                self.ctx.notifier.changed()

    def start(self) -> None:
        """Run `tick` every `every_s` seconds on the running event loop (0: never)."""
        if self.every_s > 0 and self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        try:
            await asyncio.to_thread(self._release)
        except Exception:  # the database may already be gone at shutdown
            log.warning("could not release the rollout controller lease", exc_info=True)

    def _release(self) -> None:
        with self.ctx.db.session() as s:
            repo.release_lease(s, LEASE, self.holder)
