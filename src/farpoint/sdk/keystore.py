"""Signing keys on this machine: `$FARPOINT_KEYS_DIR/NAME.pem` (encrypted) and `NAME.pub`."""

from __future__ import annotations

import os
import re
from pathlib import Path

from farpoint.core import keys
from farpoint.core.errors import BadRequest, Conflict, NotFound
from farpoint.wire.common import NAME_PATTERN

__all__ = ["create_key", "keys_dir", "load_key", "public_key_pem"]

_NAME = re.compile(NAME_PATTERN)


def keys_dir(directory: str | Path | None = None) -> Path:
    """`directory`, else `$FARPOINT_KEYS_DIR`, else `~/.config/farpoint/keys`."""
    if directory is not None:
        return Path(directory)
    env = os.environ.get("FARPOINT_KEYS_DIR")
    return Path(env) if env else Path.home() / ".config" / "farpoint" / "keys"


def _paths(name: str, directory: str | Path | None) -> tuple[Path, Path]:
    if not _NAME.match(name):  # a key name must not walk out of the key directory
        raise BadRequest(f"key name {name!r} must match {NAME_PATTERN}")
    root = keys_dir(directory)
    return root / f"{name}.pem", root / f"{name}.pub"


def _bytes(passphrase: str | bytes) -> bytes:
    data = passphrase.encode() if isinstance(passphrase, str) else passphrase
    if not data:
        raise BadRequest("a key's passphrase must not be empty")
    return data


def create_key(
    name: str, passphrase: str | bytes, directory: str | Path | None = None
) -> keys.PrivateKey:
    """Make an ECDSA P-256 key; the private half is written encrypted, readable by you alone."""
    private_path, public_path = _paths(name, directory)
    secret = _bytes(passphrase)
    private_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = keys.generate_private_key()
    pem = keys.private_key_pem(key, secret)
    try:
        # O_EXCL: never overwrite a key; 0600 from the first byte, not chmod afterwards.
        fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError as exc:
        raise Conflict(f"key {name!r} already exists at {private_path}; pick another name") from exc
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    public_path.write_bytes(keys.public_key_pem(key.public_key()))
    return key


def load_key(
    name: str, passphrase: str | bytes, directory: str | Path | None = None
) -> keys.PrivateKey:
    """The private key `name`, decrypted; BadRequest when the passphrase is wrong."""
    private_path, _ = _paths(name, directory)
    if not private_path.exists():
        raise NotFound(
            f"no key {name!r} in {private_path.parent}; make it with `farpoint keys create`"
        )
    try:
        return keys.load_private_key(private_path.read_bytes(), _bytes(passphrase))
    except (ValueError, TypeError) as exc:
        raise BadRequest(f"cannot decrypt key {name!r}: wrong passphrase?") from exc


def public_key_pem(name: str, directory: str | Path | None = None) -> str:
    _, public_path = _paths(name, directory)
    if not public_path.exists():
        raise NotFound(f"no public key {name!r} in {public_path.parent}")
    return public_path.read_text()
