"""The server's online TUF keys (snapshot, timestamp, director), made on first use.

They live under `settings.key_dir` as `tuf-<role>.pem`, like the server's signing key; a
replica that finds a file another one wrote uses it instead of making its own.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path

from securesystemslib.signer import CryptoSigner, SSlibKey  # type: ignore[attr-defined]

from farpoint.core import keys

__all__ = ["ONLINE_ROLES", "OnlineKeys", "online_keys"]

log = logging.getLogger("farpoint.server")

ONLINE_ROLES = ("snapshot", "timestamp", "director")
_lock = threading.Lock()
_loaded: dict[Path, OnlineKeys] = {}


@dataclass(frozen=True)
class OnlineKeys:
    private: dict[str, keys.PrivateKey]
    signers: dict[str, CryptoSigner]

    def signer(self, role: str) -> CryptoSigner:
        return self.signers[role]

    def public(self, role: str) -> SSlibKey:
        return self.signers[role].public_key

    def keyid(self, role: str) -> str:
        """The TUF key id (securesystemslib's) of an online role's key."""
        return self.signers[role].public_key.keyid

    def public_pem(self, role: str) -> str:
        return keys.public_key_pem(self.private[role].public_key()).decode()


def _load_or_create(path: Path) -> keys.PrivateKey:
    if path.exists():
        return keys.load_private_key(path.read_bytes())
    path.parent.mkdir(parents=True, exist_ok=True)
    key = keys.generate_private_key()
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(keys.private_key_pem(key))
        f.flush()
        os.fsync(f.fileno())
    try:
        os.link(tmp, path)  # fails if another process created it first
    except FileExistsError:
        return keys.load_private_key(path.read_bytes())
    finally:
        os.unlink(tmp)
    log.warning("created the online TUF key %s; keep FARPOINT_HOME/keys private", path)
    return key


def online_keys(key_dir: Path) -> OnlineKeys:
    """The online keys under `key_dir`, created when missing, loaded once per process."""
    key_dir = key_dir.resolve()
    with _lock:
        found = _loaded.get(key_dir)
        if found is None:
            private = {r: _load_or_create(key_dir / f"tuf-{r}.pem") for r in ONLINE_ROLES}
            signers = {r: CryptoSigner(k) for r, k in private.items()}
            found = _loaded[key_dir] = OnlineKeys(private, signers)
        return found
