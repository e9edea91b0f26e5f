"""The server's release-signing key (ECDSA P-256).

On the embedded default it lives under FARPOINT_HOME; the chain-of-trust work replaces this
single key with offline and online TUF roles.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

from farpoint.core import keys

__all__ = ["load_or_create_signing_key", "write_private_once"]

log = logging.getLogger("farpoint.server")


def write_private_once(path: Path, data: bytes) -> bool:
    """Create `path` (mode 0600) holding `data`, unless it exists: another request or
    process may create it at the same moment, and the first one wins. True if this call
    wrote it; either way `path` then holds the one secret to use."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    try:
        os.link(tmp, path)  # fails if another one created it first
    except FileExistsError:
        return False
    finally:
        os.unlink(tmp)
    return True


def load_or_create_signing_key(key_dir: Path) -> keys.PrivateKey:
    path = key_dir / "server-signing.pem"
    if path.exists():
        return keys.load_private_key(path.read_bytes())
    key = keys.generate_private_key()
    if not write_private_once(path, keys.private_key_pem(key)):
        return keys.load_private_key(path.read_bytes())
    log.warning("created a development signing key at %s; production keys belong offline", path)
    return key
