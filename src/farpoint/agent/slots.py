"""Download a verified release's model once, and install it into the inactive of two slots.

Nothing is parsed before it is verified: the manifest bytes only after the image
repository (python-tuf) and the director named the same length and sha256 for them; the
model file only after its one digest, computed while it is downloaded, equals the image
repository's target hash, the director's `model_sha256` and the manifest's
`model_digest`. Downloads resume with HTTP Range and stop at the declared length.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import threading
from collections.abc import Callable
from pathlib import Path

from farpoint.core import digest

from .bandwidth import TokenBucket, read_size
from .client import DeviceClient, LinkDown, _check
from .http import HttpError
from .payloads import Manifest, PayloadError, parse_manifest
from .state import CurrentRelease, atomic_write, fsync_dir

__all__ = [
    "SLOTS",
    "CacheCheck",
    "ReleaseRejected",
    "VerifiedRelease",
    "blob_path",
    "check_free_disk",
    "discard_slot",
    "fetch_model",
    "free_bytes",
    "inactive_slot",
    "install",
    "parse_release",
    "verify_installed",
]

SLOTS = ("slot-a", "slot-b")
MODEL_FILE = "model.onnx"
MANIFEST_FILE = "manifest.json"
_HASH_BUFFER = 1 << 20
DISK_MARGIN_MIN_BYTES = 16 << 20
DISK_MARGIN_FRACTION = 0.1
"""What must stay free besides the download: 10 % of its size, and at least 16 MiB
(the slot's manifest, the journal, TUF metadata, logs, and the filesystem's own needs)."""


class ReleaseRejected(Exception):
    """A release failed verification, installation or its self-test; the reason says why."""


class VerifiedRelease:
    """A manifest whose bytes the image repository and the director both vouched for."""

    def __init__(self, manifest: Manifest, payload: bytes) -> None:
        self.manifest = manifest
        self.payload = payload
        self.manifest_digest = digest.digest_bytes(payload)


def parse_release(payload: bytes) -> VerifiedRelease:
    """Parse manifest bytes whose length and hash were verified already."""
    try:
        manifest = parse_manifest(json.loads(payload))
    except (PayloadError, ValueError) as exc:
        raise ReleaseRejected(f"manifest refused: {exc}") from exc
    return VerifiedRelease(manifest, payload)


def blob_path(state_dir: Path, model_digest: str) -> Path:
    return state_dir / "blobs" / digest.hex_of(model_digest)


def _hash_file(path: Path, h: hashlib._Hash) -> int:
    # One reusable buffer, filled in place: hashing a cached model runs near sha256's speed.
    size = 0
    buffer = bytearray(_HASH_BUFFER)
    view = memoryview(buffer)
    with open(path, "rb", buffering=0) as f:
        while n := f.readinto(buffer):
            h.update(view[:n])
            size += n
    return size


class CacheCheck:
    """Hash a blob already in the cache in a thread, while the rest of its release (image
    targets, manifest, policy, signatures) is verified: on two cores the model's bytes are
    read and hashed once, in the time the metadata checks take anyway.

    Nothing is trusted here: `fetch_model` uses the result only when it is for the same
    file (inode) it finds at the blob's path, and compares the digest as it always does.
    """

    def __init__(self, path: Path) -> None:
        self._path = path
        self._result: tuple[int, int, str] | None = None
        self._thread = threading.Thread(target=self._run, name="farpoint-cache-check", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            inode = self._path.stat().st_ino
            h = hashlib.sha256()
            size = _hash_file(self._path, h)
            if self._path.stat().st_ino == inode:
                self._result = (inode, size, "sha256:" + h.hexdigest())
        except OSError:
            self._result = None

    def result_for(self, path: Path) -> tuple[int, str] | None:
        """(size, digest) of `path` as it is now, or None when it must be hashed anew."""
        self._thread.join()
        if self._result is None or path != self._path:
            return None
        try:
            inode = path.stat().st_ino
        except OSError:
            return None
        found_inode, size, got = self._result
        return (size, got) if inode == found_inode else None


def _mismatch(want: str, got: str) -> ReleaseRejected:
    return ReleaseRejected(
        f"model sha256 differs from the director's: the bytes hash to {got}, while the "
        f"director, the image repository and the manifest say {want}"
    )


def _content_range_start(value: str | None) -> int | None:
    # "bytes 100-199/200"
    if not value or not value.startswith("bytes "):
        return None
    try:
        return int(value[6:].split("-", 1)[0])
    except ValueError:
        return None


def free_bytes(path: Path) -> int:
    return shutil.disk_usage(path).free


def check_free_disk(folder: Path, remaining: int, free: Callable[[Path], int] = free_bytes) -> None:
    """ReleaseRejected, with the numbers, unless `remaining` bytes plus the margin fit."""
    margin = max(DISK_MARGIN_MIN_BYTES, int(remaining * DISK_MARGIN_FRACTION))
    available = free(folder)
    if remaining + margin > available:
        raise ReleaseRejected(
            f"not enough free disk to download the model: it needs {remaining} B plus a "
            f"margin of {margin} B, and the state directory's filesystem has {available} B free"
        )


def fetch_model(
    client: DeviceClient,
    api_path: str,
    state_dir: Path,
    want: str,
    length: int,
    on_downloaded: Callable[[], None] = lambda: None,
    cache_check: CacheCheck | None = None,
    *,
    max_bytes_per_s: float | None = None,
    free: Callable[[Path], int] = free_bytes,
) -> Path:
    """The model in the content-addressed cache, each byte read and hashed once.

    A cached blob is hashed (or its `cache_check` taken), not fetched again. A download
    first checks the free disk (`check_free_disk`), goes to `.<hex>.partial`, resumes
    with `Range: bytes=N-`, is paced by `max_bytes_per_s` when given, is cut off at
    `length` (endless data), and enters the cache only when its one digest equals `want`.
    LinkDown (and a full disk) keeps the partial file for the next attempt; a refusal
    of the bytes deletes it.
    """
    try:
        path = blob_path(state_dir, want)
    except ValueError as exc:
        raise ReleaseRejected(f"model digest is malformed: {want!r}") from exc
    h = hashlib.sha256()
    if path.exists():
        found = cache_check.result_for(path) if cache_check is not None else None
        if found is None:
            found = (_hash_file(path, h), "sha256:" + h.hexdigest())
            h = hashlib.sha256()
        on_downloaded()
        if found == (length, want):
            return path
        path.unlink()  # a damaged cache entry: fetch it again
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    offset = partial.stat().st_size if partial.exists() else 0
    if offset > length:
        partial.unlink()
        offset = 0
    if offset < length:
        check_free_disk(path.parent, length - offset, free)
    if offset:
        _hash_file(partial, h)
    try:
        if offset < length:
            hs = [h]
            bucket = TokenBucket(max_bytes_per_s) if max_bytes_per_s else None
            offset = _download(client, api_path, partial, hs, offset, length, bucket)
            h = hs[0]
        on_downloaded()
        if offset < length:
            raise LinkDown(f"download of {api_path} ended at {offset} of {length} B")
        got = "sha256:" + h.hexdigest()
        if got != want:
            partial.unlink(missing_ok=True)
            raise _mismatch(want, got)
        with open(partial, "rb") as f:
            os.fsync(f.fileno())
        os.replace(partial, path)
        fsync_dir(path.parent)
    except ReleaseRejected:
        partial.unlink(missing_ok=True)
        raise
    return path


def _download(
    client: DeviceClient,
    api_path: str,
    partial: Path,
    hs: list[hashlib._Hash],
    offset: int,
    length: int,
    bucket: TokenBucket | None = None,
) -> int:
    """Append the rest of the model to `partial`, hashing it into `hs[0]`; return the size.

    With a `bucket`, each chunk is paid for before it is read further."""
    h = hs[0]
    headers = {"Range": f"bytes={offset}-", "Accept": "*/*"} if offset else {"Accept": "*/*"}
    resp = client.get(api_path, headers=headers, stream=True)
    try:
        if (
            resp.status == 206
            and offset
            and _content_range_start(resp.headers.get("Content-Range")) == offset
        ):
            mode = "ab"
        elif resp.status == 200:
            mode, offset = "wb", 0  # the server ignored the range: start over
            hs[0] = h = hashlib.sha256()
        elif resp.status == 416:
            resp.read()
            partial.unlink(missing_ok=True)
            raise LinkDown(f"{api_path}: the server refused to resume; starting over")
        else:
            resp.read()
            _check(resp, 200)
            raise LinkDown(f"{api_path}: unexpected answer {resp.status}")
        declared = resp.headers.get("Content-Length")
        if declared is not None and declared.isdigit() and offset + int(declared) > length:
            raise ReleaseRejected(
                f"model target is larger than its declared {length} B (endless data): the "
                f"server announced {offset + int(declared)} B"
            )
        with open(partial, mode) as f:
            try:
                for chunk in resp.stream(read_size(bucket.rate if bucket else None)):
                    room = length - offset
                    if len(chunk) > room:
                        raise ReleaseRejected(
                            f"model target is larger than its declared {length} B (endless data)"
                        )
                    h.update(chunk)
                    f.write(chunk)
                    offset += len(chunk)
                    f.flush()  # what arrived survives the agent being killed: resume from it
                    if bucket is not None:
                        bucket.take(len(chunk))
            except HttpError as exc:
                f.flush()
                raise LinkDown(f"download of {api_path} broke off at {offset} B: {exc}") from exc
            f.flush()
    finally:
        resp.release_conn()
    return offset


def inactive_slot(current: CurrentRelease | None) -> str:
    """The slot not serving now; with nothing served (or a broken one) either will do."""
    if current is None or current.slot == SLOTS[1]:
        return SLOTS[0]
    return SLOTS[1]


def _place(blob: Path, target: Path) -> None:
    """Hard-link the verified blob into the slot (no copy, no second read of its bytes).

    Neither file is ever modified in place (both are replaced by rename), so sharing the
    inode is safe. Where links are impossible, copy durably.
    """
    try:
        os.link(blob, target)
        return
    except OSError:
        pass
    partial = target.with_name(f".{target.name}.partial")
    with open(blob, "rb") as src, open(partial, "wb") as dst:
        shutil.copyfileobj(src, dst, 1 << 20)
        dst.flush()
        os.fsync(dst.fileno())
    os.replace(partial, target)


def discard_slot(model_dir: Path, slot: str) -> None:
    """Remove a slot that must never be served (a release refused after it was placed)."""
    slot_dir = model_dir / slot
    if slot_dir.exists():
        shutil.rmtree(slot_dir)
        fsync_dir(model_dir)


def install(model_dir: Path, slot: str, blob: Path, release: VerifiedRelease) -> Path:
    """Place the verified blob and its manifest bytes into `slot`; return the model path."""
    slot_dir = model_dir / slot
    if slot_dir.exists():
        shutil.rmtree(slot_dir)
    slot_dir.mkdir(parents=True)
    target = slot_dir / MODEL_FILE
    _place(blob, target)
    atomic_write(slot_dir / MANIFEST_FILE, release.payload)
    fsync_dir(slot_dir)
    fsync_dir(model_dir)
    return target


def verify_installed(model_dir: Path, current: CurrentRelease) -> tuple[Path, Manifest]:
    """Re-check an installed slot at start: the manifest's and the model's digests."""
    slot_dir = model_dir / current.slot
    try:
        payload = (slot_dir / MANIFEST_FILE).read_bytes()
    except OSError as exc:
        raise ReleaseRejected(f"{current.slot}: manifest unreadable: {exc}") from exc
    release = parse_release(payload)
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
