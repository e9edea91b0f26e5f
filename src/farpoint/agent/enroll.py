"""Enrollment: make a key on the device, present the token, pin the server's key."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from farpoint.core import keys
from farpoint.core.errors import BadRequest

from .client import enroll_request
from .state import DEVICE_FILE, DeviceIdentity, hardware_profile, save_identity

__all__ = ["EnrollError", "EnrollmentToken", "enroll", "parse_token"]

NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")
_HEX_RE = re.compile(r"^[0-9a-f]{64}$")
TOKEN_PREFIX = "fpe1"


class EnrollError(Exception):
    """Enrollment was refused, on this side or the server's."""


@dataclass(frozen=True)
class EnrollmentToken:
    raw: str
    secret: str
    server_key_id: str


def parse_token(token: str) -> EnrollmentToken:
    """`fpe1.<secret>.<hex of the server key id>`; EnrollError naming what is wrong."""
    token = token.strip()
    prefix, _, rest = token.partition(".")
    if prefix != TOKEN_PREFIX or not rest:
        raise EnrollError(
            f"malformed enrollment token: it must look like {TOKEN_PREFIX}.<secret>.<hex>"
        )
    secret, _, hex_part = rest.rpartition(".")
    if not secret:
        raise EnrollError("malformed enrollment token: the secret part is missing")
    if not _HEX_RE.match(hex_part):
        raise EnrollError(
            "malformed enrollment token: its last part must be the 64 lowercase hex "
            "digits of the server key id"
        )
    return EnrollmentToken(raw=token, secret=secret, server_key_id="sha256:" + hex_part)


def parse_labels(items: list[str]) -> dict[str, str]:
    labels: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise EnrollError(f"label {item!r} is not key=value")
        labels[key] = value
    return labels


def enroll(
    server_url: str, token_text: str, state_dir: Path, name: str, labels: dict[str, str]
) -> DeviceIdentity:
    """Enroll this device and store its identity in `state_dir`."""
    token = parse_token(token_text)
    if not NAME_RE.match(name):
        raise EnrollError(
            f"device name {name!r} must be lowercase letters, digits, '.', '_' or '-', "
            "starting with a letter or digit, at most 63 characters"
        )
    if (state_dir / DEVICE_FILE).exists():
        raise EnrollError(f"{state_dir} already holds an enrolled device; use another --state-dir")
    key = keys.generate_private_key()
    answer = enroll_request(
        server_url,
        {
            "token": token.raw,
            "name": name,
            "public_key_pem": keys.public_key_pem(key.public_key()).decode(),
            "labels": labels,
            "hardware": hardware_profile(),
        },
    )
    # The token names the key to trust; a key that merely arrives is not trusted.
    if answer["server_key_id"] != token.server_key_id:
        raise EnrollError(
            f"server key id {answer['server_key_id']} is not the one the token names "
            f"({token.server_key_id}); refusing to trust this server"
        )
    try:
        server_key = keys.load_public_key(answer["server_public_key_pem"])
    except BadRequest as exc:
        raise EnrollError(f"the server's public key is unusable: {exc.detail}") from exc
    actual = keys.key_id(server_key)
    if actual != token.server_key_id:
        raise EnrollError(
            f"the server's public key hashes to {actual}, not to {token.server_key_id} "
            "named by the token; refusing to trust this server"
        )
    identity = DeviceIdentity(
        device_id=answer["device_id"],
        server_url=server_url.rstrip("/"),
        server_public_key_pem=answer["server_public_key_pem"],
        server_key_id=actual,
        name=name,
        labels=answer["labels"] or labels,
    )
    save_identity(state_dir, identity, key)
    return identity
