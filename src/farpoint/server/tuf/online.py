"""The server's online TUF keys (snapshot, timestamp, director), made on first use.

They live under `settings.key_dir` as `tuf-<role>.pem`, like the server's signing key; a
replica that finds a file another one wrote uses it instead of making its own.

Rotation without re-enrolling a device: `prepare_rotation` makes `tuf-<role>.next.pem`
beside the current key; the offline root keys then sign a root naming the next key
(`farpoint trust rotate-online`). Which key signs is decided by what the latest root
names (`OnlineKeys.signer`), so the switch happens in the transaction that stores that
root, on every replica at once; `settle` then retires the old key file.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from pathlib import Path

from securesystemslib.signer import CryptoSigner, SSlibKey  # type: ignore[attr-defined]

from farpoint.core import keys
from farpoint.server.signing import write_private_once

__all__ = ["ONLINE_ROLES", "OnlineKeys", "online_keys", "prepare_rotation", "settle"]

log = logging.getLogger("farpoint.server")

ONLINE_ROLES = ("snapshot", "timestamp", "director")
_lock = threading.Lock()
_loaded: dict[Path, tuple[tuple[object, ...], OnlineKeys]] = {}


@dataclass(frozen=True)
class OnlineKeys:
    private: dict[str, keys.PrivateKey]
    signers: dict[str, CryptoSigner]
    next_private: dict[str, keys.PrivateKey]
    next_signers: dict[str, CryptoSigner]
    """Keys made for a rotation: not yet named by root, or named by it and not yet settled."""

    def signer(self, role: str, named: Collection[str] | None = None) -> CryptoSigner:
        """The key that signs for `role`: of the current and the next key, the one the latest
        root names (`named`: its key ids for the role); the current one when root names
        neither or there is no root yet."""
        if named is not None:
            for candidate in self.candidates(role):
                if candidate.public_key.keyid in named:
                    return candidate
        return self.signers[role]

    def candidates(self, role: str) -> list[CryptoSigner]:
        nxt = self.next_signers.get(role)
        return [self.signers[role]] + ([nxt] if nxt is not None else [])

    def public(self, role: str) -> SSlibKey:
        return self.signers[role].public_key

    def keyid(self, role: str) -> str:
        """The TUF key id (securesystemslib's) of an online role's current key."""
        return self.signers[role].public_key.keyid

    def public_pem(self, role: str) -> str:
        return keys.public_key_pem(self.private[role].public_key()).decode()

    def next_public_pems(self) -> dict[str, str]:
        return {
            role: keys.public_key_pem(k.public_key()).decode()
            for role, k in sorted(self.next_private.items())
        }


def _path(key_dir: Path, role: str, nxt: bool = False) -> Path:
    return key_dir / (f"tuf-{role}.next.pem" if nxt else f"tuf-{role}.pem")


def _load_or_create(path: Path) -> keys.PrivateKey:
    if path.exists():
        return keys.load_private_key(path.read_bytes())
    key = keys.generate_private_key()
    if not write_private_once(path, keys.private_key_pem(key)):
        return keys.load_private_key(path.read_bytes())
    log.warning("created the online TUF key %s; keep FARPOINT_HOME/keys private", path)
    return key


def _fingerprint(key_dir: Path) -> tuple[object, ...]:
    out: list[object] = []
    for role in ONLINE_ROLES:
        for nxt in (False, True):
            try:
                st = _path(key_dir, role, nxt).stat()
                out.append((st.st_ino, st.st_mtime_ns, st.st_size))
            except FileNotFoundError:
                out.append(None)
    return tuple(out)


def online_keys(key_dir: Path) -> OnlineKeys:
    """The online keys under `key_dir`, created when missing, reloaded when a file changed
    (another replica rotated or settled them)."""
    key_dir = key_dir.resolve()
    with _lock:
        fingerprint = _fingerprint(key_dir)
        found = _loaded.get(key_dir)
        if found is not None and found[0] == fingerprint:
            return found[1]
        private = {r: _load_or_create(_path(key_dir, r)) for r in ONLINE_ROLES}
        next_private = {
            r: keys.load_private_key(_path(key_dir, r, True).read_bytes())
            for r in ONLINE_ROLES
            if _path(key_dir, r, True).exists()
        }
        loaded = OnlineKeys(
            private,
            {r: CryptoSigner(k) for r, k in private.items()},
            next_private,
            {r: CryptoSigner(k) for r, k in next_private.items()},
        )
        _loaded[key_dir] = (_fingerprint(key_dir), loaded)
        return loaded


def prepare_rotation(key_dir: Path, roles: Iterable[str]) -> OnlineKeys:
    """Make the next key of each role (kept if one is waiting already)."""
    for role in roles:
        if role not in ONLINE_ROLES:
            raise ValueError(f"{role!r} is not an online role ({', '.join(ONLINE_ROLES)})")
        _load_or_create(_path(key_dir.resolve(), role, True))
    return online_keys(key_dir)


def settle(key_dir: Path, named: dict[str, Collection[str]]) -> list[str]:
    """Retire each current key whose next key the latest root names instead of it: the
    next key becomes `tuf-<role>.pem`. Returns the roles settled. `named` maps each
    online role to the key ids the latest root names for it."""
    key_dir = key_dir.resolve()
    current = online_keys(key_dir)
    settled = []
    for role, nxt in current.next_signers.items():
        ids = named.get(role, ())
        if nxt.public_key.keyid in ids and current.keyid(role) not in ids:
            os.replace(_path(key_dir, role, True), _path(key_dir, role))
            settled.append(role)
    if settled:
        fd = os.open(key_dir, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        log.warning("online TUF keys rotated: %s", ", ".join(settled))
    return settled
