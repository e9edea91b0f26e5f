"""The server's release-signing key (ECDSA P-256).

On the embedded default it lives under FARPOINT_HOME; the chain-of-trust work replaces this
single key with offline and online TUF roles.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from farpoint.core import keys

__all__ = ["load_or_create_signing_key"]

log = logging.getLogger("farpoint.server")


def load_or_create_signing_key(key_dir: Path) -> keys.PrivateKey:
    path = key_dir / "server-signing.pem"
    if path.exists():
        return keys.load_private_key(path.read_bytes())
    key_dir.mkdir(parents=True, exist_ok=True)
    key = keys.generate_private_key()
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(keys.private_key_pem(key))
        f.flush()
        os.fsync(f.fileno())
    try:
        os.link(tmp, path)  # fails if another process created it first
    except FileExistsError:
        os.unlink(tmp)
        return keys.load_private_key(path.read_bytes())
    os.unlink(tmp)
    log.warning("created a development signing key at %s; production keys belong offline", path)
    return key
