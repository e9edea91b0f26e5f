"""What trusted delivery hands to the rest of the agent, in light types of its own.

The verification itself (python-tuf, the director, the trust policy, OMS) lives in
`delivery.py` and runs in the trust worker process (`trust_worker.py`); the serving
agent sees only these plain values, so it never imports python-tuf and securesystemslib.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

from .client import DeviceClient
from .payloads import PayloadError
from .slots import CacheCheck, VerifiedRelease, blob_path, fetch_model, free_bytes

__all__ = [
    "IMAGE_TARGETS",
    "DirectedRelease",
    "DirectorMetadata",
    "ModelFetch",
    "SyncRefused",
    "TrustedDelivery",
    "TrustedRelease",
]

IMAGE_TARGETS = "/tuf/image/targets/"
"""Where the image repository's target files are, under the API (a ranged download)."""


class SyncRefused(Exception):
    """The director metadata or the image repository was refused as a whole."""


@dataclass(frozen=True)
class DirectedRelease:
    """One model's release as the director names it."""

    model: str
    release_id: int
    fleet: str
    manifest_path: str
    manifest_length: int
    manifest_sha256: str
    model_path: str
    model_sha256: str
    model_length: int

    @property
    def manifest_digest(self) -> str:
        return "sha256:" + self.manifest_sha256

    @property
    def model_digest(self) -> str:
        return "sha256:" + self.model_sha256

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, doc: Any) -> DirectedRelease:
        """From `to_json`'s shape; PayloadError naming what is wrong."""
        if not isinstance(doc, dict):
            raise PayloadError("directed release: expected an object")
        try:
            return cls(
                model=_typed(doc, "model", str),
                release_id=_typed(doc, "release_id", int),
                fleet=_typed(doc, "fleet", str),
                manifest_path=_typed(doc, "manifest_path", str),
                manifest_length=_typed(doc, "manifest_length", int),
                manifest_sha256=_typed(doc, "manifest_sha256", str),
                model_path=_typed(doc, "model_path", str),
                model_sha256=_typed(doc, "model_sha256", str),
                model_length=_typed(doc, "model_length", int),
            )
        except KeyError as exc:
            raise PayloadError(f"directed release: missing field {exc}") from exc


def _typed(doc: dict[str, Any], key: str, kind: type) -> Any:
    value = doc[key]
    if not isinstance(value, kind) or isinstance(value, bool):
        raise PayloadError(f"directed release: field {key!r} has the wrong type")
    return value


@dataclass(frozen=True)
class DirectorMetadata:
    version: int
    expires: datetime.datetime
    releases: tuple[DirectedRelease, ...]


@dataclass(frozen=True)
class TrustedRelease:
    """A release every check but the model's bytes passed: its verified manifest and who
    approved it. The bytes are hashed once while downloaded (or read from the cache)."""

    directed: DirectedRelease
    release: VerifiedRelease
    approvers: tuple[str, ...]


class TrustedDelivery(Protocol):
    """What activation needs from delivery: in process (`delivery.Delivery`) or through
    the trust worker (`trust.WorkerDelivery`)."""

    def sync(self) -> DirectorMetadata: ...

    def verify_release(self, d: DirectedRelease) -> TrustedRelease: ...

    def check_cache(self, d: DirectedRelease) -> CacheCheck | None: ...

    def fetch_model(
        self,
        d: DirectedRelease,
        on_downloaded: Callable[[], None],
        cache_check: CacheCheck | None = None,
        *,
        max_bytes_per_s: float | None = None,
        free: Callable[[Path], int] = free_bytes,
    ) -> Path: ...


class ModelFetch:
    """The model's bytes for a verified release: from the cache or downloaded, hashed once.
    Needs no python-tuf: the digest and length were verified already (`verify_release`)."""

    _client: DeviceClient
    _state_dir: Path

    def check_cache(self, d: DirectedRelease) -> CacheCheck | None:
        """Start hashing the model's blob if the cache holds one (see CacheCheck)."""
        try:
            path = blob_path(self._state_dir, d.model_digest)
        except ValueError:
            return None
        return CacheCheck(path) if path.exists() else None

    def fetch_model(
        self,
        d: DirectedRelease,
        on_downloaded: Callable[[], None],
        cache_check: CacheCheck | None = None,
        *,
        max_bytes_per_s: float | None = None,
        free: Callable[[Path], int] = free_bytes,
    ) -> Path:
        """The model bytes, downloaded (or read from the cache) and hashed once.

        The one digest is compared with `d.model_digest`, which verify_release proved
        equal to the image repository's target hash and the manifest's model_digest.
        A download needs the free disk `check_free_disk` asks for and is paced by
        `max_bytes_per_s`.
        """
        return fetch_model(
            self._client,
            IMAGE_TARGETS + d.model_path,
            self._state_dir,
            d.model_digest,
            d.model_length,
            on_downloaded,
            cache_check,
            max_bytes_per_s=max_bytes_per_s,
            free=free,
        )
