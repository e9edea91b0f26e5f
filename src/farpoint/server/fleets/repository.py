"""All SQL for fleets, their desired releases and rollouts."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from farpoint.server.devices.tables import Device
from farpoint.server.fleets.rules import FleetTarget
from farpoint.server.fleets.tables import Fleet, FleetRelease, Rollout, RolloutDevice
from farpoint.server.releases.tables import Release


def fleet_by_name(s: Session, name: str) -> Fleet | None:
    return s.scalars(select(Fleet).where(Fleet.name == name)).one_or_none()


def fleet_by_id(s: Session, fleet_id: int) -> Fleet | None:
    return s.get(Fleet, fleet_id)


def list_fleets(s: Session) -> Sequence[Fleet]:
    return s.scalars(select(Fleet).order_by(Fleet.name)).all()


def add(s: Session, row: Fleet | FleetRelease | Rollout | RolloutDevice) -> None:
    s.add(row)


def release_by_id(s: Session, release_id: int) -> Release | None:
    return s.get(Release, release_id)


def fleet_release(s: Session, fleet_id: int, model: str) -> FleetRelease | None:
    return s.get(FleetRelease, (fleet_id, model))


def latest_desired_release(s: Session, fleet_id: int) -> int | None:
    """The release most recently set as desired in the fleet, whatever its model."""
    q = (
        select(FleetRelease.release_id)
        .where(FleetRelease.fleet_id == fleet_id)
        .order_by(FleetRelease.set_at.desc(), FleetRelease.release_id.desc())
        .limit(1)
    )
    return s.scalars(q).first()


def fleet_targets(s: Session) -> list[FleetTarget]:
    """Every fleet's desired release of every model, with the digests a device needs."""
    q = (
        select(
            Fleet.name,
            Fleet.selector,
            FleetRelease.model,
            FleetRelease.release_id,
            Release.manifest_digest,
            Release.model_digest,
            FleetRelease.set_at,
        )
        .join(FleetRelease, FleetRelease.fleet_id == Fleet.id)
        .join(Release, Release.id == FleetRelease.release_id)
    )
    return [
        FleetTarget(
            fleet=r[0],
            selector=r[1],
            model=r[2],
            release_id=r[3],
            manifest_digest=r[4],
            model_digest=r[5],
            set_at=r[6],
        )
        for r in s.execute(q).all()
    ]


def rollout_by_id(s: Session, rollout_id: int) -> Rollout | None:
    return s.get(Rollout, rollout_id)


def list_rollouts(s: Session, after_id: int, limit: int) -> Sequence[Rollout]:
    q = select(Rollout).where(Rollout.id > after_id).order_by(Rollout.id).limit(limit)
    return s.scalars(q).all()


def running_rollouts_of(s: Session, fleet_id: int, model: str) -> Sequence[Rollout]:
    q = (
        select(Rollout)
        .where(Rollout.fleet_id == fleet_id, Rollout.model == model, Rollout.state == "running")
        .order_by(Rollout.id)
        .with_for_update()
    )
    return s.scalars(q).all()


def running_rollouts_for_device(s: Session, device_id: str) -> Sequence[Rollout]:
    """Running rollouts that target the device, locked (PostgreSQL) in id order.

    The lock serializes devices of one rollout reporting at once, so the last of them sees
    every other's progress and the rollout cannot stay `running` with all devices done.
    SQLite serializes writers anyway.
    """
    q = (
        select(Rollout)
        .join(RolloutDevice, RolloutDevice.rollout_id == Rollout.id)
        .where(RolloutDevice.device_id == device_id, Rollout.state == "running")
        .order_by(Rollout.id)
        .with_for_update(of=Rollout)
    )
    return s.scalars(q).all()


def rollout_device(s: Session, rollout_id: int, device_id: str) -> RolloutDevice | None:
    return s.get(RolloutDevice, (rollout_id, device_id))


def rollout_devices(s: Session, rollout_id: int) -> list[tuple[RolloutDevice, str]]:
    """The rollout's devices with their names, in name order."""
    q = (
        select(RolloutDevice, Device.name)
        .join(Device, Device.id == RolloutDevice.device_id)
        .where(RolloutDevice.rollout_id == rollout_id)
        .order_by(Device.name)
    )
    return [(r[0], r[1]) for r in s.execute(q).all()]


def rollout_phases(s: Session, rollout_id: int) -> list[str]:
    q = select(RolloutDevice.phase).where(RolloutDevice.rollout_id == rollout_id)
    return list(s.scalars(q).all())
