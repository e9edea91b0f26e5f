"""Content addresses: `sha256:<hex>`."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import BinaryIO

__all__ = ["DIGEST_RE", "digest_bytes", "digest_file", "digest_stream", "hex_of", "is_digest"]

DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")
_CHUNK = 1 << 20


def digest_bytes(data: bytes) -> str:
    """The content address of `data`."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def digest_stream(stream: BinaryIO) -> str:
    """The content address of everything left in `stream`."""
    h = hashlib.sha256()
    while chunk := stream.read(_CHUNK):
        h.update(chunk)
    return "sha256:" + h.hexdigest()


def digest_file(path: str | Path) -> str:
    """The content address of the file at `path`, read in chunks."""
    with open(path, "rb") as f:
        return digest_stream(f)


def is_digest(value: str) -> bool:
    return bool(DIGEST_RE.match(value))


def hex_of(digest: str) -> str:
    """The hex part of a `sha256:<hex>` address; ValueError if it is not one."""
    if not is_digest(digest):
        raise ValueError(f"not a sha256 content address: {digest!r}")
    return digest.split(":", 1)[1]
