"""What the agent keeps on disk, written so that a power cut leaves either the old or
the new file, never half of one.

Layout under the state directory:

    device.json              identity: device id, server URL, sha256 of the enrollment root
    device-key.pem           the device's private key (0600)
    tuf/metadata/            the image repository's trusted metadata (python-tuf's cache;
                             root.json is the root received at enrollment, then rotated)
    director.json            the last director metadata accepted (its version: no replays)
    blobs/<hex>              content-addressed cache of verified model files
    blobs/.<hex>.partial     a download in progress (resumed with HTTP Range)
    models/<model>/slot-a/   model.onnx, manifest.json (the image repository's bytes)
    models/<model>/slot-b/
    models/<model>/current.json   which slot is active, its release and digests: the one
                                  record of what is served
    models/<model>/journal.json   the update in flight and its health window (journal.py)
"""

from __future__ import annotations

import json
import os
import platform
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from farpoint.core import keys, light_key

__all__ = [
    "CurrentRelease",
    "DeviceIdentity",
    "StateError",
    "atomic_write",
    "dump_json",
    "fsync_dir",
    "hardware_profile",
    "hardware_profile_key",
    "load_current",
    "load_identity",
    "read_json",
    "remove_current",
    "save_current",
    "save_identity",
]

TUF_METADATA_DIR = "tuf/metadata"

DEVICE_FILE = "device.json"
KEY_FILE = "device-key.pem"


class StateError(Exception):
    """The state directory is missing something or holds something unreadable."""


def fsync_dir(path: Path) -> None:
    """Make a rename inside `path` durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Write `data` to `path` through a temporary file, fsync, rename, fsync the folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def dump_json(doc: Any) -> bytes:
    return (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode()


def read_json(path: Path) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_bytes())
    except FileNotFoundError as exc:
        raise StateError(f"{path} does not exist") from exc
    except (OSError, ValueError) as exc:
        raise StateError(f"{path} is unreadable: {exc}") from exc
    if not isinstance(doc, dict):
        raise StateError(f"{path} does not hold a JSON object")
    return doc


@dataclass(frozen=True)
class DeviceIdentity:
    device_id: str
    server_url: str
    root_sha256: str
    """The hex the enrollment token named: the digest of the first trusted root."""
    name: str
    labels: dict[str, str] = field(default_factory=dict)


def save_identity(
    state_dir: Path, identity: DeviceIdentity, key: keys.PrivateKey, root: bytes
) -> None:
    """Store the key and the trusted root first, then device.json: present means enrolled."""
    state_dir.mkdir(parents=True, exist_ok=True)
    atomic_write(state_dir / KEY_FILE, keys.private_key_pem(key), mode=0o600)
    atomic_write(state_dir / TUF_METADATA_DIR / "root.json", root)
    doc = {
        "device_id": identity.device_id,
        "server_url": identity.server_url,
        "root_sha256": identity.root_sha256,
        "name": identity.name,
        "labels": identity.labels,
    }
    atomic_write(state_dir / DEVICE_FILE, dump_json(doc))


def load_identity(state_dir: Path) -> tuple[DeviceIdentity, keys.PrivateKey]:
    """The identity and its key as a `cryptography` key (enrollment, rotation, tests)."""
    identity = read_identity(state_dir)
    try:
        key = keys.load_private_key((state_dir / KEY_FILE).read_bytes())
    except (OSError, ValueError, Exception) as exc:
        raise StateError(f"{state_dir / KEY_FILE} is unreadable: {exc}") from exc
    return identity, key


def load_signing_identity(state_dir: Path) -> tuple[DeviceIdentity, light_key.SigningKey]:
    """The identity and a key that only signs requests: what the serving agent needs,
    without loading the `cryptography` extension (`core/light_key.py`)."""
    identity = read_identity(state_dir)
    try:
        key = light_key.load_signing_key((state_dir / KEY_FILE).read_bytes())
    except (OSError, ValueError) as exc:
        raise StateError(f"{state_dir / KEY_FILE} is unreadable: {exc}") from exc
    return identity, key


def read_identity(state_dir: Path) -> DeviceIdentity:
    """The enrolled identity in `state_dir`, its trusted root checked present."""
    doc = read_json(state_dir / DEVICE_FILE)
    try:
        identity = DeviceIdentity(
            device_id=str(doc["device_id"]),
            server_url=str(doc["server_url"]),
            root_sha256=str(doc["root_sha256"]),
            name=str(doc["name"]),
            labels={str(k): str(v) for k, v in dict(doc.get("labels", {})).items()},
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise StateError(f"{state_dir / DEVICE_FILE} is incomplete: {exc}") from exc
    if not (state_dir / TUF_METADATA_DIR / "root.json").exists():
        raise StateError(
            f"{state_dir / TUF_METADATA_DIR / 'root.json'} (the trusted root) is missing"
        )
    return identity


@dataclass(frozen=True)
class CurrentRelease:
    """The content of models/<model>/current.json."""

    model: str
    slot: str
    release_id: int
    manifest_digest: str
    model_digest: str
    model_ref: str

    def to_json(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "slot": self.slot,
            "release_id": self.release_id,
            "manifest_digest": self.manifest_digest,
            "model_digest": self.model_digest,
            "model_ref": self.model_ref,
        }

    @classmethod
    def from_json(cls, doc: Any) -> CurrentRelease:
        """ValueError (or KeyError, TypeError) naming what is missing or wrong."""
        slot = str(doc["slot"])
        if slot not in ("slot-a", "slot-b"):
            raise ValueError(f"unknown slot {slot!r}")
        return cls(
            model=str(doc["model"]),
            slot=slot,
            release_id=int(doc["release_id"]),
            manifest_digest=str(doc["manifest_digest"]),
            model_digest=str(doc["model_digest"]),
            model_ref=str(doc.get("model_ref", "")),
        )


CURRENT_FILE = "current.json"


def save_current(model_dir: Path, current: CurrentRelease) -> None:
    atomic_write(model_dir / CURRENT_FILE, dump_json(current.to_json()))


def remove_current(model_dir: Path) -> None:
    """Serve nothing of this model from now on, durably (the slots stay on disk)."""
    path = model_dir / CURRENT_FILE
    if path.exists():
        path.unlink()
        fsync_dir(model_dir)


def load_current(model_dir: Path) -> CurrentRelease | None:
    path = model_dir / CURRENT_FILE
    if not path.exists():
        return None
    doc = read_json(path)
    try:
        return CurrentRelease.from_json(doc)
    except (KeyError, TypeError, ValueError) as exc:
        raise StateError(f"{path} is incomplete: {exc}") from exc


def _memory_bytes() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def hardware_profile() -> dict[str, Any]:
    """What the device is, without importing onnxruntime (that costs ~45 MB)."""
    from importlib import metadata

    try:
        ort_version: str | None = metadata.version("onnxruntime")
    except metadata.PackageNotFoundError:
        ort_version = None
    return {
        "architecture": platform.machine(),
        "cpu_count": os.cpu_count(),
        "memory_bytes": _memory_bytes(),
        "os": f"{platform.system()} {platform.release()}",
        "python": sys.version.split()[0],
        "onnxruntime": ort_version,
    }


HARDWARE_PROFILE_LABEL = "hardware-profile"


def hardware_profile_key(labels: dict[str, str]) -> str:
    """Which latency budget applies here: the `hardware-profile` label, else the architecture."""
    return labels.get(HARDWARE_PROFILE_LABEL) or platform.machine()
