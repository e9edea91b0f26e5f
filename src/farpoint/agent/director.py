"""The director's per-device targets metadata: which release of each model to run.

python-tuf has no director role, so the checks are made here with its Metadata API:
the signature threshold of the director key(s) the trusted root names in its
`x-farpoint-director` field; expiry by the device clock; a version not lower than the
last accepted (persisted atomically; equal is the same document); `x-farpoint-device`
equal to this device's id. A newer version naming an older release is an operator's
rollback and is applied; an older version is a replay and is refused.
"""

from __future__ import annotations

import datetime
import json
import re
from pathlib import Path
from typing import Any

from securesystemslib.exceptions import UnverifiedSignatureError
from tuf.api.metadata import Metadata, Root, Targets  # type: ignore[attr-defined]
from tuf.api.serialization import DeserializationError
from tuf.api.serialization.json import CanonicalJSONSerializer

from .state import StateError, atomic_write
from .trusted import DirectedRelease, DirectorMetadata

__all__ = [
    "DEVICE_FIELD",
    "DIRECTOR_FIELD",
    "DirectedRelease",
    "DirectorMetadata",
    "DirectorRefused",
    "last_accepted_version",
    "verify_director",
]

DIRECTOR_FIELD = "x-farpoint-director"
DEVICE_FIELD = "x-farpoint-device"
STATE_FILE = "director.json"
_MANIFEST_RE = re.compile(r"^releases/([1-9][0-9]{0,17})/manifest\.json$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


class DirectorRefused(Exception):
    """The director metadata is not acceptable; the message says why."""


def _director_keys(root: Root) -> tuple[list[str], int]:
    spec = root.unrecognized_fields.get(DIRECTOR_FIELD)
    if not isinstance(spec, dict):
        raise DirectorRefused(f"the trusted root names no director key ({DIRECTOR_FIELD})")
    keyids, threshold = spec.get("keyids"), spec.get("threshold")
    if (
        not isinstance(keyids, list)
        or not all(isinstance(k, str) for k in keyids)
        or not isinstance(threshold, int)
        or isinstance(threshold, bool)
        or threshold < 1
    ):
        raise DirectorRefused(f"the trusted root's {DIRECTOR_FIELD} is malformed")
    return keyids, threshold


def _check_signatures(md: Metadata[Any], root: Root) -> None:
    keyids, threshold = _director_keys(root)
    data = CanonicalJSONSerializer().serialize(md.signed)
    good: set[str] = set()
    for keyid in set(keyids):
        key = root.keys.get(keyid)
        sig = md.signatures.get(keyid)
        if key is None or sig is None:
            continue
        try:
            key.verify_signature(sig, data)
        except UnverifiedSignatureError:
            continue
        good.add(keyid)
    if len(good) < threshold:
        raise DirectorRefused(
            f"director metadata signature refused: {len(good)} of the {threshold} "
            "director signature(s) the trusted root requires verify"
        )


def _entry(path: str, target: Any) -> DirectedRelease:
    m = _MANIFEST_RE.match(path)
    if m is None:
        raise DirectorRefused(f"director names {path!r}, not releases/<id>/manifest.json")
    release_id = int(m.group(1))
    custom = target.custom if isinstance(target.custom, dict) else {}
    model, fleet = custom.get("model"), custom.get("fleet", "")
    model_sha256, model_length = custom.get("model_sha256"), custom.get("model_length")
    sha = target.hashes.get("sha256")
    if not isinstance(model, str) or not model or not isinstance(fleet, str):
        raise DirectorRefused(f"director entry {path}: model and fleet must be strings")
    if custom.get("release_id") != release_id:
        raise DirectorRefused(f"director entry {path}: release_id differs from the path")
    if custom.get("model_path") != f"releases/{release_id}/model.onnx":
        raise DirectorRefused(f"director entry {path}: model_path is not its release's model")
    if not isinstance(model_sha256, str) or not _HEX64.match(model_sha256):
        raise DirectorRefused(f"director entry {path}: model_sha256 is not 64 hex digits")
    if not isinstance(model_length, int) or isinstance(model_length, bool) or model_length < 0:
        raise DirectorRefused(f"director entry {path}: model_length is not a length")
    if not isinstance(sha, str) or not _HEX64.match(sha):
        raise DirectorRefused(f"director entry {path}: no sha256 hash")
    return DirectedRelease(
        model=model,
        release_id=release_id,
        fleet=fleet,
        manifest_path=path,
        manifest_length=target.length,
        manifest_sha256=sha,
        model_path=f"releases/{release_id}/model.onnx",
        model_sha256=model_sha256,
        model_length=model_length,
    )


def last_accepted_version(state_dir: Path) -> int:
    path = state_dir / STATE_FILE
    if not path.exists():
        return 0
    try:
        doc = json.loads(path.read_bytes())
        version = doc["version"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise StateError(f"{path} is unreadable: {exc}") from exc
    if not isinstance(version, int) or isinstance(version, bool):
        raise StateError(f"{path}: version is not an integer")
    return version


def _remember(state_dir: Path, version: int, data: bytes) -> None:
    doc = {"version": version, "metadata": json.loads(data)}
    atomic_write(state_dir / STATE_FILE, json.dumps(doc, sort_keys=True).encode())


def verify_director(
    data: bytes, root: Root, device_id: str, now: datetime.datetime, state_dir: Path
) -> DirectorMetadata:
    """Verify `data`; remember its version when accepted. DirectorRefused says why not."""
    try:
        md = Metadata.from_bytes(data)
    except DeserializationError as exc:
        raise DirectorRefused(f"director metadata is not TUF metadata: {exc}") from exc
    if not isinstance(md.signed, Targets):
        raise DirectorRefused(f"director metadata is {md.signed.type}, not targets")
    _check_signatures(md, root)
    signed: Targets = md.signed
    if signed.is_expired(now):
        raise DirectorRefused(
            f"director metadata expired at {signed.expires.isoformat()} "
            f"(device clock {now.replace(microsecond=0).isoformat()})"
        )
    last = last_accepted_version(state_dir)
    # Whose metadata it is comes first: another device's versions say nothing about ours.
    device = signed.unrecognized_fields.get(DEVICE_FIELD)
    if device != device_id:
        raise DirectorRefused(f"director metadata is for device {device!r}, not {device_id!r}")
    if signed.version < last:
        raise DirectorRefused(
            f"director metadata version {signed.version} is older than the accepted "
            f"{last}: a replay"
        )
    releases = tuple(_entry(path, t) for path, t in sorted(signed.targets.items()))
    models = [r.model for r in releases]
    if len(set(models)) != len(models):
        raise DirectorRefused("director metadata names two releases of one model")
    if signed.version > last:
        _remember(state_dir, signed.version, data)
    return DirectorMetadata(signed.version, signed.expires, releases)
