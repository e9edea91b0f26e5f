"""All SQL for enrollment tokens, devices and their reported model states."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import CursorResult, select, update
from sqlalchemy.orm import Session

from farpoint.server.devices.tables import Device, DeviceModelState, EnrollmentToken


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


def list_devices(s: Session, after_seq: int, limit: int) -> Sequence[Device]:
    q = select(Device).where(Device.seq > after_seq).order_by(Device.seq).limit(limit)
    return s.scalars(q).all()


def devices_by_ids(s: Session, ids: Sequence[str]) -> Sequence[Device]:
    if not ids:
        return []
    return s.scalars(select(Device).where(Device.id.in_(ids))).all()


def all_device_labels(s: Session) -> list[tuple[str, dict[str, Any]]]:
    """(id, labels) of every device, in enrollment order; selectors match in Python."""
    rows = s.execute(select(Device.id, Device.labels).order_by(Device.seq)).all()
    return [(r[0], r[1]) for r in rows]


def auth_view(s: Session, device_id: str) -> tuple[str, str, datetime | None] | None:
    """(name, public key PEM, last seen) of a device: what request authentication needs."""
    row = s.execute(
        select(Device.name, Device.public_key_pem, Device.last_seen_at).where(
            Device.id == device_id
        )
    ).one_or_none()
    return None if row is None else (row[0], row[1], row[2])


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
