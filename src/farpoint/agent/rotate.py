"""Device key rotation without re-enrolling, safe against a cut at any instant.

1. A new key is made and written to `device-key.next.pem` (atomic, fsync) before the
   server hears of it.
2. `POST /devices/self/key`, signed with the current key, carries the new public key and
   the new key's signature over the rotation statement (`farpoint.core.key_rotation`).
3. Only after the server confirmed, `device-key.pem` is replaced by the new key (atomic)
   and the next-key file removed.

Cut off before 3, the device still holds both keys. The next rotation (or `agent run` at
start) finishes the job: it asks again with the old key; if the server refuses the old
key (it applied the rotation and the answer was lost), it asks with the new one, which the
server answers the same. A running agent re-reads `device-key.pem` when it changes.
"""

from __future__ import annotations

import base64
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

from farpoint.core import keys
from farpoint.core.key_rotation import sign_rotation

from .client import DeviceClient, ServerError
from .payloads import KeyRotated, KeyRotation
from .state import KEY_FILE, StateError, atomic_write, fsync_dir, load_identity

__all__ = [
    "NEXT_KEY_FILE",
    "KeyRotator",
    "RotationError",
    "key_age_s",
    "resume_rotation",
    "rotate_key",
]

log = logging.getLogger("farpoint.agent.rotate")
NEXT_KEY_FILE = "device-key.next.pem"


class RotationError(Exception):
    """The server did not take the new key; both keys are kept for the next try."""


def _client(state_dir: Path, clock: Callable[[], float]) -> tuple[DeviceClient, keys.PrivateKey]:
    identity, key = load_identity(state_dir)
    client = DeviceClient(identity.server_url, identity.device_id, key, clock, state_dir=state_dir)
    return client, key


def _load_next(state_dir: Path) -> keys.PrivateKey | None:
    path = state_dir / NEXT_KEY_FILE
    try:
        return keys.load_private_key(path.read_bytes())
    except FileNotFoundError:
        return None
    except (OSError, ValueError, Exception) as exc:
        raise StateError(f"{path} (a key rotation in progress) is unreadable: {exc}") from exc


def _commit(state_dir: Path, new: keys.PrivateKey) -> None:
    atomic_write(state_dir / KEY_FILE, keys.private_key_pem(new), mode=0o600)
    (state_dir / NEXT_KEY_FILE).unlink(missing_ok=True)
    fsync_dir(state_dir)


def _finish(
    state_dir: Path, client: DeviceClient, old: keys.PrivateKey, new: keys.PrivateKey
) -> KeyRotated | None:
    old_id, new_id = keys.key_id(old.public_key()), keys.key_id(new.public_key())
    if old_id == new_id:  # cut after device-key.pem was replaced: only the cleanup was left
        _commit(state_dir, new)
        return None
    body: KeyRotation = {
        "public_key_pem": keys.public_key_pem(new.public_key()).decode(),
        "old_key_id": old_id,
        "proof_b64": base64.b64encode(sign_rotation(new, client.device_id, old_id)).decode(),
    }
    try:
        answer = client.rotate_key(body, signing_key=old)
    except ServerError as exc:
        if exc.status != 401:
            raise RotationError(f"the server refused the new key: {exc.detail}") from exc
        # The old key is refused: the server may already hold the new one (lost answer).
        try:
            answer = client.rotate_key(body, signing_key=new)
        except ServerError as again:
            raise RotationError(
                f"the server accepts neither the current key ({exc.detail}) nor the new "
                f"one ({again.detail}); both are kept in {state_dir}"
            ) from again
    if answer["key_id"] != new_id:
        raise RotationError(f"the server confirmed key {answer['key_id']}, not {new_id}")
    _commit(state_dir, new)
    log.info("device key rotated: %s replaces %s", new_id, old_id)
    return answer


def resume_rotation(state_dir: Path, clock: Callable[[], float] = time.time) -> KeyRotated | None:
    """Finish a rotation a cut interrupted (None when there was none, or only cleanup)."""
    new = _load_next(state_dir)
    if new is None:
        return None
    client, old = _client(state_dir, clock)
    log.info("finishing an interrupted key rotation")
    return _finish(state_dir, client, old, new)


def rotate_key(state_dir: Path, clock: Callable[[], float] = time.time) -> KeyRotated:
    """Rotate the device key now; LinkDown when the server cannot be reached (both keys
    are kept, the next call finishes the same rotation)."""
    client, old = _client(state_dir, clock)
    new = _load_next(state_dir)
    if new is None:
        new = keys.generate_private_key()
        atomic_write(state_dir / NEXT_KEY_FILE, keys.private_key_pem(new), mode=0o600)
    answer = _finish(state_dir, client, old, new)
    if answer is None:  # the interrupted rotation was complete; make the one asked for
        return rotate_key(state_dir, clock)
    return answer


def key_age_s(state_dir: Path, now: float) -> float:
    """Seconds since the current key was written."""
    return now - (state_dir / KEY_FILE).stat().st_mtime


class KeyRotator:
    """Rotates the key once it is older than `max_age_s` (`agent run --key-max-age-days`)."""

    def __init__(
        self,
        state_dir: Path,
        max_age_s: float,
        stop: threading.Event,
        check_every_s: float = 3600.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.state_dir, self.max_age_s, self._stop = state_dir, max_age_s, stop
        self._every, self._clock = check_every_s, clock

    def rotate_if_due(self) -> KeyRotated | None:
        if key_age_s(self.state_dir, self._clock()) < self.max_age_s:
            return None
        log.info("device key is older than %.0f days: rotating it", self.max_age_s / 86400)
        return rotate_key(self.state_dir, self._clock)

    def run(self) -> None:
        while not self._stop.is_set():
            try:
                self.rotate_if_due()
            except Exception as exc:  # retried at the next check; the old key still works
                log.warning("key rotation failed, retrying in %.0f s: %s", self._every, exc)
            self._stop.wait(self._every)

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self.run, name="farpoint-agent-keys", daemon=True)
        thread.start()
        return thread
