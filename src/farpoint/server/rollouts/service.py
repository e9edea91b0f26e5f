"""Rollouts: create, pause, resume, approve, abort, and how they are shown."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime

from sqlalchemy.orm import Session

from farpoint.core.errors import Conflict, NotFound
from farpoint.server.fleets import repository as fleets_repo
from farpoint.server.fleets.rules import selects
from farpoint.server.fleets.tables import FleetRelease
from farpoint.server.rollouts import controller, desired, rules
from farpoint.server.rollouts import repository as repo
from farpoint.server.rollouts.tables import Rollout, RolloutBatch
from farpoint.wire.rollouts import (
    RolloutBatch as RolloutBatchOut,
)
from farpoint.wire.rollouts import (
    RolloutCreate,
    RolloutDevice,
    RolloutOut,
    RolloutSettings,
    RolloutSummary,
)

__all__ = [
    "abort",
    "approve",
    "create_rollout",
    "get_rollout",
    "list_rollouts",
    "pause",
    "resume",
    "rollout_out",
]


def _split(body: RolloutCreate) -> rules.BatchSplit | None:
    b = body.batches
    return None if b is None else rules.BatchSplit(b.count, b.size, b.percent)


def create_rollout(s: Session, body: RolloutCreate, actor: str, now: datetime) -> RolloutOut:
    """Snapshot the fleet's devices into batches, make `release_id` the fleet's desired
    release of its model, and start the first batch.

    Each device keeps what its desired state named before (its previous release) until
    its batch starts. A running or paused rollout of the same fleet and model is
    superseded (`aborted`).
    """
    fleet = fleets_repo.fleet_by_name(s, body.fleet)
    if fleet is None:
        raise NotFound(f"fleet {body.fleet!r} does not exist; create it with POST /fleets")
    release = fleets_repo.release_by_id(s, body.release_id)
    if release is None:
        raise NotFound(f"release {body.release_id} does not exist")
    fleets_repo.lock_fleet(s, fleet.id)
    model = release.model

    members = [d for d in fleets_repo.device_labels(s) if selects(fleet.selector, d[2])]
    canary_selector = body.canary.selector if body.canary else {}
    order = rules.order_devices(members, canary_selector)
    sizes = rules.plan_batches(
        len(order),
        body.strategy,
        canary_count=body.canary.count if body.canary else None,
        canary_percent=body.canary.percent if body.canary else None,
        split=_split(body),
    )
    labels = {d[0]: d[2] for d in members}
    previous = desired.previous_for(s, ((i, labels[i]) for i in order), model)
    fleet_release = fleets_repo.fleet_release(s, fleet.id, model)
    before = desired.joiner_release(
        s,
        fleet_release.release_id if fleet_release else None,
        fleet_release.rollout_id if fleet_release else None,
    )

    settings = RolloutSettings.model_validate(
        body.model_dump(exclude={"fleet", "release_id", "strategy"})
    )
    rollout = Rollout(
        fleet_id=fleet.id,
        model=model,
        from_release_id=before.release_id,
        from_rollout_id=before.rollout_id,
        to_release_id=release.id,
        strategy=body.strategy,
        state="running",
        settings=settings.model_dump(mode="json"),
        success_threshold=body.success_threshold,
        max_failures=body.max_failures,
        window_s=body.health.window_s,
        approve_between_batches=body.approve_between_batches,
        rollback_on_failure=body.rollback_on_failure,
        pending_timeout_s=body.pending_timeout_s,
        batch_count=len(sizes),
        current_batch=-1,
        created_by=actor,
        created_at=now,
    )
    repo.add(s, rollout)
    s.flush()

    for older in repo.active_rollouts_of(s, fleet.id, model):
        if older.id != rollout.id:
            controller.stop(s, older, "aborted", f"superseded by rollout {rollout.id}", now)

    rows = []
    start = 0
    for idx, size in enumerate(sizes):
        repo.add(
            s,
            RolloutBatch(
                rollout_id=rollout.id,
                idx=idx,
                size=size,
                state="waiting",
                healthy=0,
                failed=0,
                timed_out=0,
            ),
        )
        for device_id in order[start : start + size]:
            prev_release, prev_rollout = previous[device_id]
            rows.append(
                {
                    "rollout_id": rollout.id,
                    "device_id": device_id,
                    "batch_index": idx,
                    "assigned_release_id": None,
                    "previous_release_id": prev_release,
                    "previous_rollout_id": prev_rollout,
                    "phase": "pending",
                    "error": None,
                    "committed": False,
                    "timed_out": False,
                    "updated_at": now,
                }
            )
        start += size
    s.flush()
    repo.insert_devices(s, rows)

    if fleet_release is None:
        fleets_repo.add(
            s,
            FleetRelease(
                fleet_id=fleet.id,
                model=model,
                release_id=release.id,
                set_at=now,
                rollout_id=rollout.id,
            ),
        )
    else:
        fleet_release.release_id = release.id
        fleet_release.set_at = now
        fleet_release.rollout_id = rollout.id
    s.flush()
    controller.advance(s, rollout, now)
    return rollout_out(s, rollout, fleet.name)


def _locked(s: Session, rollout_id: int) -> Rollout:
    rollout = repo.lock_rollout(s, rollout_id)
    if rollout is None:
        raise NotFound(f"rollout {rollout_id} does not exist")
    return rollout


def _awaiting_approval(rollout: Rollout) -> bool:
    return rollout.state == "paused" and (rollout.paused_reason or "").startswith(
        rules.AWAITING_APPROVAL
    )


def _refuse(rollout: Rollout, verb: str) -> Conflict:
    detail = f"rollout {rollout.id} is {rollout.state}"
    if rollout.paused_reason:
        detail += f" ({rollout.paused_reason})"
    return Conflict(f"{detail}; it cannot be {verb}")


def pause(s: Session, rollout_id: int, actor: str, now: datetime) -> RolloutOut:
    """Stop starting batches until resumed; devices go on with what they were assigned."""
    rollout = _locked(s, rollout_id)
    if rollout.state != "running":
        raise _refuse(rollout, "paused")
    rollout.state = "paused"
    rollout.paused_reason = f"paused by {actor}"
    s.flush()
    return rollout_out(s, rollout)


def resume(s: Session, rollout_id: int, now: datetime) -> tuple[RolloutOut, bool]:
    """Go on from where a person paused it; True when a desired state may have changed."""
    rollout = _locked(s, rollout_id)
    if _awaiting_approval(rollout):
        raise Conflict(
            f"rollout {rollout.id} is {rollout.paused_reason}; approve it with "
            f"POST /rollouts/{rollout.id}/approve"
        )
    if rollout.state != "paused":
        raise _refuse(rollout, "resumed")
    rollout.state = "running"
    rollout.paused_reason = None
    s.flush()
    changed = controller.advance(s, rollout, now)
    return rollout_out(s, rollout), changed


def approve(s: Session, rollout_id: int, now: datetime) -> RolloutOut:
    """Start the batch the rollout is waiting for approval of."""
    rollout = _locked(s, rollout_id)
    if not _awaiting_approval(rollout):
        raise _refuse(rollout, "approved (it is not awaiting approval)")
    rollout.state = "running"
    rollout.paused_reason = None
    controller.start_batch(s, rollout, now)
    s.flush()
    controller.advance(s, rollout, now)
    return rollout_out(s, rollout)


def abort(s: Session, rollout_id: int, actor: str, now: datetime) -> RolloutOut:
    """End the rollout where it is: devices keep what they were assigned."""
    rollout = _locked(s, rollout_id)
    if rollout.state not in repo.ACTIVE_STATES:
        raise _refuse(rollout, "aborted")
    controller.stop(s, rollout, "aborted", f"aborted by {actor}", now)
    s.flush()
    return rollout_out(s, rollout)


# -- reading ---------------------------------------------------------------------------


def get_rollout(s: Session, rollout_id: int) -> RolloutOut:
    rollout = repo.rollout_by_id(s, rollout_id)
    if rollout is None:
        raise NotFound(f"rollout {rollout_id} does not exist")
    return rollout_out(s, rollout)


def list_rollouts(
    s: Session,
    after_id: int,
    limit: int,
    fleet: str | None = None,
    states: Collection[str] = (),
) -> tuple[list[RolloutSummary], list[int]]:
    """A page of rollouts without their device rows, and the ids (for the cursor)."""
    fleet_id = None
    if fleet is not None:
        found = fleets_repo.fleet_by_name(s, fleet)
        if found is None:
            raise NotFound(f"fleet {fleet!r} does not exist")
        fleet_id = found.id
    rows = repo.list_rollouts(s, after_id, limit, fleet_id, states)
    names = fleets_repo.fleet_names(s, {r.fleet_id for r in rows})
    return [_summary(s, r, names[r.fleet_id]) for r in rows], [r.id for r in rows]


def _settings(rollout: Rollout) -> RolloutSettings:
    if rollout.settings is None:  # made before rollouts had settings
        return RolloutSettings()
    return RolloutSettings.model_validate(rollout.settings)


def _summary(s: Session, rollout: Rollout, fleet_name: str) -> RolloutSummary:
    by_batch, failures = controller.tallies(s, rollout)
    phases = repo.phase_counts(s, rollout.id)
    batches = []
    for b in repo.batches(s, rollout.id):
        t = by_batch.get(b.idx, rules.Tally())
        batches.append(
            RolloutBatchOut(
                index=b.idx,
                size=b.size,
                state=b.state,
                healthy=t.healthy,
                failed=t.failed,
                in_progress=t.in_progress if b.state != "waiting" else 0,
                timed_out=t.timed_out,
                started_at=b.started_at,
                finished_at=b.finished_at,
            )
        )
    return RolloutSummary(
        id=rollout.id,
        fleet=fleet_name,
        model=rollout.model,
        from_release_id=rollout.from_release_id,
        to_release_id=rollout.to_release_id,
        strategy=rollout.strategy,
        state=rollout.state,
        paused_reason=rollout.paused_reason,
        reason=rollout.reason,
        settings=_settings(rollout),
        current_batch=rollout.current_batch if rollout.current_batch >= 0 else None,
        failures=failures,
        progress={p: phases.get(p, 0) for p in rules.PHASES},
        batches=batches,
        created_by=rollout.created_by,
        created_at=rollout.created_at,
        finished_at=rollout.finished_at,
    )


def rollout_out(s: Session, rollout: Rollout, fleet_name: str | None = None) -> RolloutOut:
    if fleet_name is None:
        fleet = fleets_repo.fleet_by_id(s, rollout.fleet_id)
        assert fleet is not None, "fleets are never deleted"
        fleet_name = fleet.name
    summary = _summary(s, rollout, fleet_name)
    devices: Sequence[RolloutDevice] = [
        RolloutDevice(
            device_id=row.device_id,
            device_name=name,
            batch=row.batch_index,
            phase=row.phase,
            error=row.error,
            committed=row.committed,
            healthy=rules.classify(row.phase, row.committed, row.timed_out, rollout.window_s)
            == "healthy",
            timed_out=row.timed_out,
            assigned_release_id=(
                row.assigned_release_id
                if row.assigned_release_id is not None
                else row.previous_release_id
            ),
            previous_release_id=row.previous_release_id,
            updated_at=row.updated_at,
        )
        for row, name in repo.device_rows(s, rollout.id)
    ]
    return RolloutOut(**dict(summary), devices=list(devices))
