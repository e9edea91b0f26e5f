"""All SQL for enrollment tokens, devices, their reported model states and diagnostics."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import CursorResult, bindparam, select, update
from sqlalchemy.orm import Session

from farpoint.server.devices.tables import (
    Device,
    DeviceDiagnostics,
    DeviceModelState,
    EnrollmentToken,
)

ACTIVE = "active"


def add_token(s: Session, row: EnrollmentToken) -> None:
    s.add(row)


def token_by_hash(s: Session, secret_hash: str) -> EnrollmentToken | None:
    return s.scalars(
        select(EnrollmentToken).where(EnrollmentToken.secret_hash == secret_hash)
    ).one_or_none()


def claim_token(s: Session, token_id: int, device_id: str, now: datetime) -> bool:
    """Mark the token used unless someone already did; True when this call claimed it."""
    result = s.execute(
        update(EnrollmentToken)
        .where(EnrollmentToken.id == token_id, EnrollmentToken.used_at.is_(None))
        .values(used_at=now, device_id=device_id)
        .execution_options(synchronize_session=False)
    )
    assert isinstance(result, CursorResult)
    return result.rowcount == 1


def add_device(s: Session, device: Device) -> None:
    s.add(device)


def device_by_id(s: Session, device_id: str) -> Device | None:
    return s.scalars(select(Device).where(Device.id == device_id)).one_or_none()


def device_by_name(s: Session, name: str) -> Device | None:
    return s.scalars(select(Device).where(Device.name == name)).one_or_none()


def list_devices(
    s: Session, after_seq: int, limit: int, state: str | None = None
) -> Sequence[Device]:
    q = select(Device).where(Device.seq > after_seq)
    if state is not None:
        q = q.where(Device.state == state)
    return s.scalars(q.order_by(Device.seq).limit(limit)).all()


def devices_by_ids(s: Session, ids: Sequence[str]) -> Sequence[Device]:
    if not ids:
        return []
    return s.scalars(select(Device).where(Device.id.in_(ids))).all()


def all_device_labels(s: Session) -> list[tuple[str, dict[str, Any]]]:
    """(id, labels) of every active device, in enrollment order; selectors match in Python.

    Fleets and rollouts target only these: a device waiting for approval, rejected or
    decommissioned is nobody's target (its record stays for history).
    """
    q = select(Device.id, Device.labels).where(Device.state == ACTIVE).order_by(Device.seq)
    return [(r[0], r[1]) for r in s.execute(q).all()]


# The statements devices make on every request are built once: building one is most of
# the cost of a small query in SQLAlchemy.
_AUTH_VIEW = select(Device.name, Device.public_key_pem, Device.last_seen_at, Device.state).where(
    Device.id == bindparam("device_id")
)
_LABELS = select(Device.labels).where(Device.id == bindparam("device_id"))
_PENDING_DIAGNOSTICS = (
    select(DeviceDiagnostics)
    .where(
        DeviceDiagnostics.device_id == bindparam("device_id"),
        DeviceDiagnostics.uploaded_at.is_(None),
    )
    .order_by(DeviceDiagnostics.id)
    .limit(1)
)


def auth_view(s: Session, device_id: str) -> tuple[str, str, datetime | None, str] | None:
    """(name, public key PEM, last seen, state) of a device: what request authentication
    needs."""
    row = s.execute(_AUTH_VIEW, {"device_id": device_id}).one_or_none()
    return None if row is None else (row[0], row[1], row[2], row[3])


def device_labels(s: Session, device_id: str) -> dict[str, str] | None:
    """The labels of a device (None: no such device)."""
    row = s.execute(_LABELS, {"device_id": device_id}).one_or_none()
    return None if row is None else dict(row[0])


_HEARTBEAT = (
    update(Device)
    .where(Device.id == bindparam("device_id"))
    .values(
        last_seen_at=bindparam("now", type_=Device.__table__.c.last_seen_at.type),
        heartbeat=bindparam("heartbeat", type_=Device.__table__.c.heartbeat.type),
    )
    .execution_options(synchronize_session=False)
)


def record_heartbeat(s: Session, device_id: str, heartbeat: dict[str, Any], now: datetime) -> bool:
    """Store a device's heartbeat and when it was seen; False when there is no such device."""
    result = s.execute(_HEARTBEAT, {"device_id": device_id, "now": now, "heartbeat": heartbeat})
    assert isinstance(result, CursorResult)
    return result.rowcount == 1


def touch(s: Session, device_id: str, now: datetime) -> None:
    s.execute(
        update(Device)
        .where(Device.id == device_id)
        .values(last_seen_at=now)
        .execution_options(synchronize_session=False)
    )


def model_states(s: Session, device_ids: Sequence[str]) -> Sequence[DeviceModelState]:
    if not device_ids:
        return []
    q = (
        select(DeviceModelState)
        .where(DeviceModelState.device_id.in_(device_ids))
        .order_by(DeviceModelState.device_id, DeviceModelState.model)
    )
    return s.scalars(q).all()


def model_state(s: Session, device_id: str, model: str) -> DeviceModelState | None:
    return s.get(DeviceModelState, (device_id, model))


def add_model_state(s: Session, row: DeviceModelState) -> None:
    s.add(row)


def add_diagnostics(s: Session, row: DeviceDiagnostics) -> None:
    s.add(row)


def diagnostics_by_id(s: Session, diagnostics_id: int) -> DeviceDiagnostics | None:
    return s.get(DeviceDiagnostics, diagnostics_id)


def pending_diagnostics(s: Session, device_id: str) -> DeviceDiagnostics | None:
    """The oldest request of this device that it has not answered yet."""
    return s.scalars(_PENDING_DIAGNOSTICS, {"device_id": device_id}).first()


def list_diagnostics(s: Session, device_id: str, limit: int) -> Sequence[DeviceDiagnostics]:
    """The device's requests, newest first."""
    q = (
        select(DeviceDiagnostics)
        .where(DeviceDiagnostics.device_id == device_id)
        .order_by(DeviceDiagnostics.id.desc())
        .limit(limit)
    )
    return s.scalars(q).all()
