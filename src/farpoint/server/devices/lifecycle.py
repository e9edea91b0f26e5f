"""A device's life after enrollment: approval, rejection, decommissioning, key rotation.

States (`Device.state`): `pending` → `active` (approved) or `rejected`; any state but
`decommissioned` → `decommissioned`. A decommissioned or rejected device's requests are
refused for good; its record, reports and audit trail stay for history.
"""

from __future__ import annotations

import base64
import binascii
from datetime import datetime

from sqlalchemy.orm import Session

from farpoint.core import keys
from farpoint.core.errors import BadRequest, Conflict, NotFound, SignatureError, ValidationFailed
from farpoint.core.key_rotation import verify_rotation
from farpoint.server.devices import repository as repo
from farpoint.server.devices.tables import Device
from farpoint.wire.device_ops import KeyRotated, KeyRotation

__all__ = ["approve", "decommission", "reject", "rotate_key"]


def _device(s: Session, device_id: str) -> Device:
    device = repo.device_by_id(s, device_id)
    if device is None:
        raise NotFound(f"device {device_id} does not exist")
    return device


def _set_state(device: Device, state: str, actor: str, now: datetime) -> None:
    device.state = state
    device.state_changed_at = now
    device.state_changed_by = actor


def approve(s: Session, device_id: str, actor: str, now: datetime) -> Device:
    """Let a device that enrolled with an approval-requiring token in."""
    device = _device(s, device_id)
    if device.state != "pending":
        raise Conflict(
            f"device {device.name!r} is {device.state}, not pending: only a device waiting "
            "for approval can be approved"
        )
    _set_state(device, "active", actor, now)
    s.flush()
    return device


def reject(s: Session, device_id: str, actor: str, now: datetime) -> Device:
    """Refuse a pending enrollment for good (the device must enroll again with a new token)."""
    device = _device(s, device_id)
    if device.state != "pending":
        raise Conflict(
            f"device {device.name!r} is {device.state}, not pending: decommission an "
            "enrolled device instead of rejecting it"
        )
    _set_state(device, "rejected", actor, now)
    s.flush()
    return device


def decommission(s: Session, device_id: str, actor: str, now: datetime) -> Device:
    """Refuse every request of the device from now on; it leaves every fleet and rollout."""
    device = _device(s, device_id)
    if device.state == "decommissioned":
        raise Conflict(f"device {device.name!r} is already decommissioned")
    _set_state(device, "decommissioned", actor, now)
    s.flush()
    return device


def rotate_key(
    s: Session, device_id: str, body: KeyRotation, now: datetime
) -> tuple[KeyRotated, bool]:
    """Replace the device's key with the one in `body` (the request was signed by the key it
    names as old, which must be the current key); True when this call rotated it.

    Retrying a rotation the server already applied, signed with the new key, answers the
    same with False: the first answer may have been lost on the way to the device.
    """
    device = _device(s, device_id)
    try:
        new_key = keys.load_public_key(body.public_key_pem)
    except BadRequest as exc:
        raise ValidationFailed(f"public_key_pem: {exc.detail}") from exc
    new_key_id = keys.key_id(new_key)
    try:
        proof = base64.b64decode(body.proof_b64, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValidationFailed("proof_b64 is not base64") from exc
    if not verify_rotation(new_key, device_id, body.old_key_id, proof):
        raise SignatureError(
            "the new key's proof does not verify: sign the rotation statement for this "
            "device and the old key id with the new key"
        )
    if device.key_id == new_key_id and device.previous_key_id == body.old_key_id:
        return _rotated(device), False  # a retry of the rotation that made this key current
    if body.old_key_id != device.key_id:
        raise Conflict(
            f"old_key_id {body.old_key_id} is not the device's current key {device.key_id}"
        )
    if new_key_id == device.key_id:
        raise Conflict("the new key is the current key; make a new key to rotate to")
    device.previous_key_id = device.key_id
    device.public_key_pem = body.public_key_pem
    device.key_id = new_key_id
    device.key_rotated_at = now
    s.flush()
    return _rotated(device), True


def _rotated(device: Device) -> KeyRotated:
    return KeyRotated(
        device_id=device.id,
        key_id=device.key_id,
        previous_key_id=device.previous_key_id,
        rotated_at=device.key_rotated_at,
    )
