"""The statement a device signs with its new key when it rotates its key.

The rotation request itself is signed with the current key (an ordinary signed device
request); the statement, signed with the new key, proves the device holds the new private
key and binds it to this device and to the key it replaces, so a captured statement
cannot move another key onto another device.
"""

from __future__ import annotations

from farpoint.core import keys

__all__ = ["CONTEXT", "rotation_statement", "sign_rotation", "verify_rotation"]

CONTEXT = "farpoint-device-key-rotation-v1"


def rotation_statement(device_id: str, old_key_id: str, new_key_id: str) -> bytes:
    """The exact bytes the new key signs."""
    return "\n".join([CONTEXT, device_id, old_key_id, new_key_id]).encode()


def sign_rotation(new_key: keys.PrivateKey, device_id: str, old_key_id: str) -> bytes:
    new_key_id = keys.key_id(new_key.public_key())
    return keys.sign(new_key, rotation_statement(device_id, old_key_id, new_key_id))


def verify_rotation(
    new_key: keys.PublicKey, device_id: str, old_key_id: str, signature: bytes
) -> bool:
    statement = rotation_statement(device_id, old_key_id, keys.key_id(new_key))
    return keys.verify(new_key, statement, signature)
