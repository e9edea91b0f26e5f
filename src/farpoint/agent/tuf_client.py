"""The image repository through python-tuf's ngclient, over the device's signed requests.

Imported only when the agent syncs (tuf.ngclient costs memory an idle agent need not pay).
One `Updater` per sync: ngclient refreshes only once per instance. Its metadata cache lives
in `<state>/tuf/metadata/`, where enrollment stored the root the token named; it is the
bootstrap of every Updater, and ngclient rotates it forward as newer roots verify.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Iterator
from pathlib import Path

from tuf.api import exceptions as tuf_exceptions
from tuf.api.metadata import Metadata, Root, TargetFile  # type: ignore[attr-defined]
from tuf.ngclient.config import UpdaterConfig
from tuf.ngclient.fetcher import FetcherInterface
from tuf.ngclient.updater import Updater

from .client import API, DeviceClient, LinkDown
from .http import Response
from .state import TUF_METADATA_DIR

__all__ = [
    "IMAGE_PREFIX",
    "ImageRepository",
    "RepositoryRefused",
    "SignedFetcher",
]

IMAGE_PREFIX = "/tuf/image"
_CHUNK = 1 << 16


class RepositoryRefused(Exception):
    """The image repository's metadata did not verify, or a target is not what it says."""


class SignedFetcher(FetcherInterface):
    """ngclient's transport: every request signed with the device key."""

    def __init__(self, client: DeviceClient) -> None:
        self._client = client

    def _fetch(self, url: str) -> Iterator[bytes]:
        resp = self._client.get(self._client.api_path(url), stream=True)
        if resp.status != 200:
            resp.read()
            resp.release_conn()
            raise tuf_exceptions.DownloadHTTPError(f"GET {url}: {resp.status}", resp.status)
        return self._chunks(resp)

    @staticmethod
    def _chunks(resp: Response) -> Iterator[bytes]:
        try:
            yield from resp.stream(_CHUNK)
        finally:
            resp.release_conn()


def _reason(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    cause = exc.__cause__
    if isinstance(exc, tuf_exceptions.DownloadError) and cause is not None and str(cause):
        text = f"{text}: {cause}"
    return text


class ImageRepository:
    """A refreshed, verified view of the image repository for one sync."""

    def __init__(
        self,
        client: DeviceClient,
        state_dir: Path,
        server_url: str,
        clock: Callable[[], float],
    ) -> None:
        self._client = client
        self._dir = state_dir / TUF_METADATA_DIR
        base = server_url.rstrip("/") + API + IMAGE_PREFIX
        self.metadata_url = base + "/metadata/"
        self.targets_url = base + "/targets/"
        self._fetcher = SignedFetcher(client)
        self._clock = clock
        self._updater: Updater | None = None

    def refresh(self) -> None:
        """Fetch and verify root (rotations), timestamp, snapshot and targets.

        RepositoryRefused when anything does not verify, LinkDown when the server cannot
        be reached.
        """
        try:
            bootstrap = (self._dir / "root.json").read_bytes()
        except OSError as exc:
            raise RepositoryRefused(f"the trusted root is unreadable: {exc}") from exc
        try:
            updater = Updater(
                str(self._dir),
                self.metadata_url,
                None,
                self.targets_url,
                fetcher=self._fetcher,
                config=UpdaterConfig(prefix_targets_with_hash=False),
                bootstrap=bootstrap,
            )
            # expiry by the device's clock (injectable), as for the director metadata
            now = datetime.datetime.fromtimestamp(self._clock(), datetime.UTC)
            updater._trusted_set.reference_time = now
            updater.refresh()
        except tuf_exceptions.DownloadLengthMismatchError as exc:
            # More bytes than the signed metadata allows: an attack, not a dropped link.
            raise RepositoryRefused(f"image repository refused: {_reason(exc)}") from exc
        except tuf_exceptions.DownloadError as exc:
            if isinstance(exc, tuf_exceptions.DownloadHTTPError) and exc.status_code < 500:
                raise RepositoryRefused(f"image repository: {_reason(exc)}") from exc
            raise LinkDown(f"image repository: {_reason(exc)}") from exc
        except tuf_exceptions.RepositoryError as exc:
            raise RepositoryRefused(f"image repository refused: {_reason(exc)}") from exc
        self._updater = updater

    @property
    def updater(self) -> Updater:
        if self._updater is None:
            raise RuntimeError("refresh() first")
        return self._updater

    def root(self) -> Root:
        """The current trusted root (after any rotation this refresh verified)."""
        root: Metadata[Root] = Metadata.from_bytes((self._dir / "root.json").read_bytes())
        return root.signed

    def target(self, path: str) -> TargetFile | None:
        """The target as the delegations allow it, or None when no role lists it."""
        try:
            return self.updater.get_targetinfo(path)
        except tuf_exceptions.DownloadLengthMismatchError as exc:
            raise RepositoryRefused(f"image repository refused: {_reason(exc)}") from exc
        except tuf_exceptions.DownloadError as exc:
            raise LinkDown(f"image repository: {_reason(exc)}") from exc
        except tuf_exceptions.RepositoryError as exc:
            raise RepositoryRefused(f"image repository refused: {_reason(exc)}") from exc

    def require(self, path: str) -> TargetFile:
        info = self.target(path)
        if info is None:
            raise RepositoryRefused(f"image repository has no target {path}")
        return info

    def download_small(self, info: TargetFile) -> bytes:
        """A small target (manifest, trust files) in memory, checked against `info`."""
        try:
            data = self._fetcher.download_bytes(self.targets_url + info.path, info.length)
        except tuf_exceptions.DownloadLengthMismatchError as exc:
            raise RepositoryRefused(f"{info.path} is larger than its {info.length} B") from exc
        except tuf_exceptions.DownloadError as exc:
            raise LinkDown(f"download of {info.path}: {_reason(exc)}") from exc
        try:
            info.verify_length_and_hashes(data)
        except tuf_exceptions.LengthOrHashMismatchError as exc:
            raise RepositoryRefused(f"{info.path} does not match its target: {exc}") from exc
        return data

    def target_api_path(self, path: str) -> str:
        """The signed-request path of a target file (for ranged downloads)."""
        return self._client.api_path(self.targets_url + path)
