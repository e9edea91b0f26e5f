"""All SQL for fleets, their desired releases, and serving intervals (history)."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from farpoint.server.devices.tables import Device
from farpoint.server.fleets.tables import Fleet, FleetRelease, ServingInterval
from farpoint.server.releases.tables import Release


def fleet_by_name(s: Session, name: str) -> Fleet | None:
    return s.scalars(select(Fleet).where(Fleet.name == name)).one_or_none()


def fleet_by_id(s: Session, fleet_id: int) -> Fleet | None:
    return s.get(Fleet, fleet_id)


def fleet_names(s: Session, ids: Collection[int]) -> dict[int, str]:
    if not ids:
        return {}
    rows = s.execute(select(Fleet.id, Fleet.name).where(Fleet.id.in_(ids))).all()
    return {r[0]: r[1] for r in rows}


def list_fleets(s: Session) -> Sequence[Fleet]:
    return s.scalars(select(Fleet).order_by(Fleet.name)).all()


def lock_fleet(s: Session, fleet_id: int) -> None:
    """Serialize changes of one fleet's desired releases: a no-op UPDATE takes the row lock
    on PostgreSQL and the write lock on SQLite, before anything is read."""
    s.execute(
        update(Fleet)
        .where(Fleet.id == fleet_id)
        .values(name=Fleet.name)
        .execution_options(synchronize_session=False)
    )


def add(s: Session, row: Fleet | FleetRelease | ServingInterval) -> None:
    s.add(row)


def release_by_id(s: Session, release_id: int) -> Release | None:
    return s.get(Release, release_id)


def release_digests(s: Session, ids: Collection[int]) -> dict[int, tuple[str, str]]:
    """(manifest digest, model digest) of each release in `ids` that exists."""
    if not ids:
        return {}
    q = select(Release.id, Release.manifest_digest, Release.model_digest).where(Release.id.in_(ids))
    return {r[0]: (r[1], r[2]) for r in s.execute(q).all()}


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


def device_labels(s: Session) -> list[tuple[str, str, dict[str, Any]]]:
    """(id, name, labels) of every active device (not pending, rejected or decommissioned);
    selectors match in Python. For fleet-wide views and rollout creation, never for a
    single device's poll."""
    q = select(Device.id, Device.name, Device.labels).where(Device.state == "active")
    rows = s.execute(q.order_by(Device.seq)).all()
    return [(r[0], r[1], r[2]) for r in rows]


# -- serving history --------------------------------------------------------------------


def open_intervals(s: Session, device_id: str) -> dict[str, ServingInterval]:
    """The device's current (open) interval per model."""
    q = select(ServingInterval).where(
        ServingInterval.device_id == device_id, ServingInterval.ended_at.is_(None)
    )
    return {row.model: row for row in s.scalars(q).all()}


def intervals_at(
    s: Session, device_ids: Collection[str], at: datetime
) -> list[tuple[str, str, int]]:
    """(device id, model, release id) of every interval covering instant `at`."""
    if not device_ids:
        return []
    q = select(ServingInterval.device_id, ServingInterval.model, ServingInterval.release_id).where(
        ServingInterval.device_id.in_(device_ids),
        ServingInterval.started_at <= at,
        or_(ServingInterval.ended_at.is_(None), ServingInterval.ended_at > at),
    )
    return [(r[0], r[1], r[2]) for r in s.execute(q).all()]
