"""All SQL for rollouts, their batches, per-device rows and the controller's lease."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    CursorResult,
    and_,
    bindparam,
    false,
    func,
    insert,
    not_,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from farpoint.server.devices.tables import Device
from farpoint.server.fleets.rules import FleetTarget
from farpoint.server.fleets.tables import Fleet, FleetRelease
from farpoint.server.releases.tables import Release
from farpoint.server.rollouts.rules import FAILED_PHASES
from farpoint.server.rollouts.tables import ControllerLease, Rollout, RolloutBatch, RolloutDevice

ACTIVE_STATES = ("running", "paused")


def add(s: Session, row: Rollout | RolloutBatch) -> None:
    s.add(row)


def insert_devices(s: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Many RolloutDevice rows at once (a fleet may hold thousands)."""
    if rows:
        s.execute(insert(RolloutDevice), list(rows))


def rollout_by_id(s: Session, rollout_id: int) -> Rollout | None:
    return s.get(Rollout, rollout_id)


def rollouts_by_ids(s: Session, ids: Collection[int]) -> list[Rollout]:
    if not ids:
        return []
    return list(s.scalars(select(Rollout).where(Rollout.id.in_(ids))).all())


def list_rollouts(
    s: Session,
    after_id: int,
    limit: int,
    fleet_id: int | None = None,
    states: Collection[str] = (),
) -> Sequence[Rollout]:
    q = select(Rollout).where(Rollout.id > after_id)
    if fleet_id is not None:
        q = q.where(Rollout.fleet_id == fleet_id)
    if states:
        q = q.where(Rollout.state.in_(states))
    return s.scalars(q.order_by(Rollout.id).limit(limit)).all()


def lock_rollout(s: Session, rollout_id: int) -> Rollout | None:
    """The rollout, locked until the transaction ends: a no-op UPDATE first takes the row
    lock (PostgreSQL) or the write lock (SQLite), then the row is read fresh."""
    s.execute(
        update(Rollout)
        .where(Rollout.id == rollout_id)
        .values(state=Rollout.state)
        .execution_options(synchronize_session=False)
    )
    return s.get(Rollout, rollout_id, populate_existing=True)


def active_rollouts_of(s: Session, fleet_id: int, model: str) -> Sequence[Rollout]:
    """Running or paused rollouts of one fleet and model, locked in id order."""
    q = (
        select(Rollout)
        .where(
            Rollout.fleet_id == fleet_id,
            Rollout.model == model,
            Rollout.state.in_(ACTIVE_STATES),
        )
        .order_by(Rollout.id)
        .with_for_update()
    )
    return s.scalars(q).all()


def active_rollout_ids(s: Session) -> list[int]:
    q = select(Rollout.id).where(Rollout.state.in_(ACTIVE_STATES)).order_by(Rollout.id)
    return list(s.scalars(q).all())


_UNSETTLED = or_(
    RolloutDevice.timed_out.is_(True),
    RolloutDevice.phase.not_in(("active", *FAILED_PHASES)),
    and_(
        RolloutDevice.phase == "active",
        RolloutDevice.committed.is_(False),
        Rollout.window_s > 0,
    ),
)
_ACTIVE_ROWS = (
    select(Rollout, RolloutDevice)
    .join(RolloutDevice, RolloutDevice.rollout_id == Rollout.id)
    .where(
        RolloutDevice.device_id == bindparam("device_id"),
        or_(
            Rollout.state.in_(ACTIVE_STATES),
            and_(RolloutDevice.assigned_release_id == Rollout.to_release_id, _UNSETTLED),
        ),
    )
    .order_by(Rollout.id)
    .with_for_update(of=Rollout)
)
"""Built once: every status report runs it (`active_rows_for_device`)."""


def active_rows_for_device(s: Session, device_id: str) -> list[tuple[Rollout, RolloutDevice]]:
    """The device's rows that its reports still move, with their rollouts: every row of a
    running or paused rollout, and the unsettled rows of an ended rollout that still
    assigns the device its release (a device that was counted out, or was still on its
    way, when the rollout ended: it catches up later). The rollouts are locked
    (PostgreSQL) in id order.

    The lock serializes devices of one rollout reporting at once, so the last of them sees
    every other's progress. SQLite serializes writers anyway (the caller wrote first).
    """
    return [(r[0], r[1]) for r in s.execute(_ACTIVE_ROWS, {"device_id": device_id}).all()]


_TARGETS_WITH_ROLLOUTS = (
    select(
        Fleet.name,
        Fleet.selector,
        FleetRelease.model,
        FleetRelease.release_id,
        Release.manifest_digest,
        Release.model_digest,
        FleetRelease.set_at,
        FleetRelease.rollout_id,
        Rollout,
    )
    .join(FleetRelease, FleetRelease.fleet_id == Fleet.id)
    .join(Release, Release.id == FleetRelease.release_id)
    .outerjoin(Rollout, Rollout.id == FleetRelease.rollout_id)
)
"""Built once: every desired-state poll runs it."""


def targets_with_rollouts(
    s: Session, model: str | None = None
) -> list[tuple[FleetTarget, Rollout | None]]:
    """Every fleet's desired release of every model (or of `model`) with its digests, and
    the rollout that set it, in one query: one row per fleet and model, not per device."""
    q = _TARGETS_WITH_ROLLOUTS
    if model is not None:
        q = q.where(FleetRelease.model == model)
    return [
        (
            FleetTarget(
                fleet=r[0],
                selector=r[1],
                model=r[2],
                release_id=r[3],
                manifest_digest=r[4],
                model_digest=r[5],
                set_at=r[6],
                rollout_id=r[7],
            ),
            r[8],
        )
        for r in s.execute(q).all()
    ]


def batches(s: Session, rollout_id: int) -> list[RolloutBatch]:
    q = select(RolloutBatch).where(RolloutBatch.rollout_id == rollout_id).order_by(RolloutBatch.idx)
    return list(s.scalars(q).all())


def batch(s: Session, rollout_id: int, idx: int) -> RolloutBatch | None:
    return s.get(RolloutBatch, (rollout_id, idx))


def phase_counts(s: Session, rollout_id: int) -> dict[str, int]:
    """Devices per phase (for display; verdicts read the batch counters)."""
    q = (
        select(RolloutDevice.phase, func.count())
        .where(RolloutDevice.rollout_id == rollout_id)
        .group_by(RolloutDevice.phase)
    )
    return {r[0]: r[1] for r in s.execute(q).all()}


def recount(s: Session, rollout_id: int) -> list[tuple[int, str, bool, bool, int]]:
    """(batch, phase, committed, timed_out, devices) counted from the rows: what the batch
    counters must agree with (tests check they do)."""
    q = (
        select(
            RolloutDevice.batch_index,
            RolloutDevice.phase,
            RolloutDevice.committed,
            RolloutDevice.timed_out,
            func.count(),
        )
        .where(RolloutDevice.rollout_id == rollout_id)
        .group_by(
            RolloutDevice.batch_index,
            RolloutDevice.phase,
            RolloutDevice.committed,
            RolloutDevice.timed_out,
        )
    )
    return [(r[0], r[1], r[2], r[3], r[4]) for r in s.execute(q).all()]


def assign_batch(s: Session, rollout_id: int, idx: int, release_id: int, now: datetime) -> None:
    """Give every device of batch `idx` the rollout's release."""
    s.execute(
        update(RolloutDevice)
        .where(RolloutDevice.rollout_id == rollout_id, RolloutDevice.batch_index == idx)
        .values(assigned_release_id=release_id, updated_at=now)
        .execution_options(synchronize_session=False)
    )


def return_devices(s: Session, rollout_id: int, now: datetime) -> int:
    """Send every device the rollout assigned back to its previous release; how many."""
    result = s.execute(
        update(RolloutDevice)
        .where(
            RolloutDevice.rollout_id == rollout_id,
            RolloutDevice.assigned_release_id.is_not(None),
        )
        .values(assigned_release_id=None, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    assert isinstance(result, CursorResult)
    return result.rowcount


def mark_stalled(s: Session, rollout_id: int, idx: int, since: datetime, window_s: int) -> int:
    """Flag as timed out the batch's unsettled devices whose row has not moved since
    `since` (a device inside its health window gets `window_s` more); how many."""
    healthy = and_(
        RolloutDevice.phase == "active",
        or_(RolloutDevice.committed.is_(True), true() if window_s == 0 else false()),
    )
    in_window = since - timedelta(seconds=window_s)
    stalled = or_(
        and_(RolloutDevice.phase != "active", RolloutDevice.updated_at < since),
        and_(RolloutDevice.phase == "active", RolloutDevice.updated_at < in_window),
    )
    result = s.execute(
        update(RolloutDevice)
        .where(
            RolloutDevice.rollout_id == rollout_id,
            RolloutDevice.batch_index == idx,
            RolloutDevice.timed_out.is_(False),
            RolloutDevice.phase.not_in(FAILED_PHASES),
            not_(healthy),
            stalled,
        )
        .values(timed_out=True)
        .execution_options(synchronize_session=False)
    )
    assert isinstance(result, CursorResult)
    return result.rowcount


def device_rows(s: Session, rollout_id: int) -> list[tuple[RolloutDevice, str]]:
    """The rollout's devices with their names, in batch then name order."""
    q = (
        select(RolloutDevice, Device.name)
        .join(Device, Device.id == RolloutDevice.device_id)
        .where(RolloutDevice.rollout_id == rollout_id)
        .order_by(RolloutDevice.batch_index, Device.name)
    )
    return [(r[0], r[1]) for r in s.execute(q).all()]


def assignments_for_device(
    s: Session, device_id: str, rollout_ids: Collection[int]
) -> list[RolloutDevice]:
    if not rollout_ids:
        return []
    params = {"device_id": device_id, "rollout_ids": list(rollout_ids)}
    return list(s.scalars(_ASSIGNMENTS_FOR_DEVICE, params).all())


_ASSIGNMENTS_FOR_DEVICE = select(RolloutDevice).where(
    RolloutDevice.device_id == bindparam("device_id"),
    RolloutDevice.rollout_id.in_(bindparam("rollout_ids", expanding=True)),
)


def assignments_of(s: Session, rollout_ids: Collection[int]) -> list[RolloutDevice]:
    """Every device row of the given rollouts (rollout creation reads the previous ones)."""
    if not rollout_ids:
        return []
    q = select(RolloutDevice).where(RolloutDevice.rollout_id.in_(rollout_ids))
    return list(s.scalars(q).all())


def claim_lease(s: Session, name: str, holder: str, now: datetime, until: datetime) -> bool:
    """Take or renew the lease `name` for `holder` until `until`, unless another holder's
    lease is still valid; True when `holder` has it. Call in its own short transaction."""
    result = s.execute(
        update(ControllerLease)
        .where(
            ControllerLease.name == name,
            or_(ControllerLease.holder == holder, ControllerLease.expires_at <= now),
        )
        .values(holder=holder, expires_at=until)
        .execution_options(synchronize_session=False)
    )
    assert isinstance(result, CursorResult)
    if result.rowcount == 1:
        return True
    if s.get(ControllerLease, name) is not None:
        return False
    try:
        with s.begin_nested():
            s.add(ControllerLease(name=name, holder=holder, expires_at=until))
    except IntegrityError:  # another replica created it first
        return False
    return True


def release_lease(s: Session, name: str, holder: str) -> None:
    s.execute(
        update(ControllerLease)
        .where(ControllerLease.name == name, ControllerLease.holder == holder)
        .values(expires_at=datetime(1970, 1, 1, tzinfo=UTC))
        .execution_options(synchronize_session=False)
    )
