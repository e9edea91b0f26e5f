"""Verify a release and install it into the inactive of two slots.

Nothing is parsed before it is verified: the manifest only after its DSSE signature
checks against the server key pinned at enrollment, the model file only after its size
and SHA-256 equal what that signed manifest declares.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from farpoint.core import digest, dsse, keys
from farpoint.core.errors import SignatureError

from .client import DeviceClient
from .payloads import DesiredModel, Manifest, PayloadError, parse_manifest
from .state import CurrentRelease, atomic_write, fsync_dir

__all__ = [
    "SLOTS",
    "ReleaseRejected",
    "VerifiedRelease",
    "blob_path",
    "fetch_blob",
    "inactive_slot",
    "install",
    "verify_installed",
    "verify_manifest",
]

SLOTS = ("slot-a", "slot-b")
MODEL_FILE = "model.onnx"
MANIFEST_FILE = "manifest.json"
ENVELOPE_FILE = "envelope.json"


class ReleaseRejected(Exception):
    """A release failed verification, installation or its self-test; the reason says why."""


class VerifiedRelease:
    """A manifest whose signature and digests checked, with the bytes that were signed."""

    def __init__(self, manifest: Manifest, payload: bytes, envelope: dict[str, Any]) -> None:
        self.manifest = manifest
        self.payload = payload
        self.envelope = envelope
        self.manifest_digest = digest.digest_bytes(payload)


def verify_manifest(
    envelope: dict[str, Any], server_key_id: str, server_key: keys.PublicKey
) -> VerifiedRelease:
    """Check the envelope's signature and the manifest's shape."""
    try:
        dsse.verify_envelope(envelope, {server_key_id: server_key}, dsse.MANIFEST_TYPE)
        payload = base64.b64decode(envelope["payload"], validate=True)
        manifest = parse_manifest(json.loads(payload))
    except SignatureError as exc:
        raise ReleaseRejected(f"manifest signature refused: {exc.detail}") from exc
    except (PayloadError, ValueError, KeyError) as exc:
        raise ReleaseRejected(f"manifest refused: {exc}") from exc
    return VerifiedRelease(manifest, payload, envelope)


def check_desired(release: VerifiedRelease, desired: DesiredModel) -> None:
    """The signed manifest must be the one the desired state names, byte for byte."""
    m = release.manifest
    if m["release_id"] != desired["release_id"]:
        raise ReleaseRejected(
            f"manifest names release {m['release_id']}, desired is {desired['release_id']}"
        )
    if m["model"] != desired["model"]:
        raise ReleaseRejected(f"manifest is for model {m['model']!r}, not {desired['model']!r}")
    if m["model_digest"] != desired["model_digest"]:
        raise ReleaseRejected(
            f"manifest model digest {m['model_digest']} differs from the desired "
            f"{desired['model_digest']}"
        )
    if release.manifest_digest != desired["manifest_digest"]:
        raise ReleaseRejected(
            f"manifest digest mismatch: expected {desired['manifest_digest']}, "
            f"got {release.manifest_digest}"
        )


def blob_path(state_dir: Path, model_digest: str) -> Path:
    return state_dir / "blobs" / digest.hex_of(model_digest)


def fetch_blob(
    client: DeviceClient,
    state_dir: Path,
    manifest: Manifest,
    on_downloaded: Callable[[], None] = lambda: None,
) -> Path:
    """The verified model file in the content-addressed cache, downloading it if needed.

    A cached blob is re-hashed, not fetched again. A download is checked for size and
    SHA-256 before it enters the cache, so nothing unverified is ever parsed.
    """
    want, size = manifest["model_digest"], manifest["model_size"]
    try:
        path = blob_path(state_dir, want)
    except ValueError as exc:
        raise ReleaseRejected(f"manifest model digest is malformed: {want!r}") from exc
    if path.exists():
        on_downloaded()
        if path.stat().st_size == size and digest.digest_file(path) == want:
            return path
        path.unlink()  # a damaged cache entry: fetch it again
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    try:
        got_size, got = client.download_blob(want, partial, max_bytes=size)
        on_downloaded()
        if got_size != size:
            raise ReleaseRejected(
                f"model size mismatch: expected {size} B, got "
                f"{'more' if got_size > size else got_size} B"
            )
        if got != want:
            raise ReleaseRejected(f"model digest mismatch: expected {want}, got {got}")
        with open(partial, "rb") as f:
            os.fsync(f.fileno())
        os.replace(partial, path)
        fsync_dir(path.parent)
    finally:
        partial.unlink(missing_ok=True)
    return path


def inactive_slot(current: CurrentRelease | None) -> str:
    """The slot not serving now; with nothing served (or a broken one) either will do."""
    if current is None or current.slot == SLOTS[1]:
        return SLOTS[0]
    return SLOTS[1]


def _copy_durably(source: Path, target: Path) -> None:
    """Copy in chunks (models can be large), fsync, then rename into place."""
    partial = target.with_name(f".{target.name}.partial")
    with open(source, "rb") as src, open(partial, "wb") as dst:
        shutil.copyfileobj(src, dst, 1 << 20)
        dst.flush()
        os.fsync(dst.fileno())
    os.replace(partial, target)


def install(model_dir: Path, slot: str, blob: Path, release: VerifiedRelease) -> Path:
    """Copy the verified blob and its signed manifest into `slot`; return the model path."""
    slot_dir = model_dir / slot
    if slot_dir.exists():
        shutil.rmtree(slot_dir)
    slot_dir.mkdir(parents=True)
    target = slot_dir / MODEL_FILE
    _copy_durably(blob, target)
    if digest.digest_file(target) != release.manifest["model_digest"]:
        raise ReleaseRejected(f"the copy of the model in {slot} does not match its digest")
    atomic_write(slot_dir / MANIFEST_FILE, release.payload)
    atomic_write(slot_dir / ENVELOPE_FILE, json.dumps(release.envelope).encode())
    fsync_dir(model_dir)
    return target


def verify_installed(
    model_dir: Path, current: CurrentRelease, server_key_id: str, server_key: keys.PublicKey
) -> tuple[Path, Manifest]:
    """Re-check an installed slot at start: signature, manifest digest, model digest."""
    slot_dir = model_dir / current.slot
    try:
        envelope = json.loads((slot_dir / ENVELOPE_FILE).read_bytes())
    except (OSError, ValueError) as exc:
        raise ReleaseRejected(f"{current.slot}: envelope unreadable: {exc}") from exc
    if not isinstance(envelope, dict):
        raise ReleaseRejected(f"{current.slot}: envelope is not a JSON object")
    release = verify_manifest(envelope, server_key_id, server_key)
    if release.manifest_digest != current.manifest_digest:
        raise ReleaseRejected(
            f"{current.slot}: manifest digest mismatch: expected {current.manifest_digest}, "
            f"got {release.manifest_digest}"
        )
    model = slot_dir / MODEL_FILE
    try:
        got = digest.digest_file(model)
    except OSError as exc:
        raise ReleaseRejected(f"{current.slot}: model file unreadable: {exc}") from exc
    if got != current.model_digest or got != release.manifest["model_digest"]:
        raise ReleaseRejected(
            f"{current.slot}: model digest mismatch: expected {current.model_digest}, got {got}"
        )
    return model, release.manifest
