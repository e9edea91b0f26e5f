"""Trusted delivery on the device: director + image repository + trust policy.

A release is activated only when the director (verified in director.py) names it, the
image repository (python-tuf, refreshed this sync) holds `releases/<id>/manifest.json`
with the same length and sha256 and `releases/<id>/model.onnx` with the director's
`model_sha256`, the manifest agrees with both, the trust policy signed offline holds, and
the model bytes, read and hashed once, have that digest. The server's own signature counts
for nothing here: a release the server alone signed never activates.

Imported lazily by the loop when it syncs (python-tuf's memory stays out of an agent
that has not synced yet).
"""

from __future__ import annotations

import datetime
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from farpoint.core import oms, trust_policy
from farpoint.core.errors import SignatureError

from .client import DeviceClient, ServerError
from .director import DirectorRefused, verify_director
from .slots import (
    ReleaseRejected,
    parse_release,
)
from .trusted import (
    DirectedRelease,
    DirectorMetadata,
    ModelFetch,
    SyncRefused,
    TrustedRelease,
)
from .tuf_client import ImageRepository, RepositoryRefused

if TYPE_CHECKING:
    from tuf.api.metadata import TargetFile  # type: ignore[attr-defined]

__all__ = ["Delivery", "SyncRefused", "TrustedRelease"]

BINDINGS_PATH = "trust/bindings.json"
_SMALL_CACHE_ENTRIES = 64
POLICY_PATH = "trust/policy.json"
_FLEET_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")


class Delivery(ModelFetch):
    def __init__(
        self,
        client: DeviceClient,
        state_dir: Path,
        server_url: str,
        device_id: str,
        clock: Callable[[], float],
    ) -> None:
        self._client = client
        self._state_dir = state_dir
        self._server_url = server_url
        self._device_id = device_id
        self._clock = clock
        self._repo: ImageRepository | None = None
        self._small: dict[tuple[str, str], bytes] = {}

    def _now(self) -> datetime.datetime:
        return datetime.datetime.fromtimestamp(self._clock(), datetime.UTC)

    @property
    def synced(self) -> bool:
        """Whether `sync` refreshed the image repository in this process yet."""
        return self._repo is not None

    @property
    def repo(self) -> ImageRepository:
        if self._repo is None:
            raise RuntimeError("sync() first")
        return self._repo

    def sync(self) -> DirectorMetadata:
        """Refresh the image repository, then fetch and verify the director metadata.

        SyncRefused says why either was refused; LinkDown propagates.
        """
        try:
            repo = self._refreshed()
        except RepositoryRefused as exc:
            raise SyncRefused(str(exc)) from exc
        try:
            data = self._client.director_metadata()
        except ServerError as exc:
            raise SyncRefused(f"director metadata unavailable: {exc}") from exc
        try:
            director = verify_director(
                data, repo.root(), self._device_id, self._now(), self._state_dir
            )
        except DirectorRefused as exc:
            raise SyncRefused(str(exc)) from exc
        self._repo = repo
        return director

    def _refreshed(self) -> ImageRepository:
        """A freshly refreshed image repository; a refusal is tried once more.

        A release published while python-tuf reads the chain (between the snapshot and a
        delegated role) looks like a mix-and-match of versions for a moment; a second
        refresh reads a consistent chain. An attack is refused the second time too.
        """
        try:
            repo = ImageRepository(self._client, self._state_dir, self._server_url, self._clock)
            repo.refresh()
            return repo
        except RepositoryRefused:
            repo = ImageRepository(self._client, self._state_dir, self._server_url, self._clock)
            repo.refresh()
            return repo

    def _targets(self, d: DirectedRelease) -> tuple[TargetFile, TargetFile]:
        try:
            return self.repo.require(d.manifest_path), self.repo.require(d.model_path)
        except RepositoryRefused:
            # the repository may have moved on since this sync's refresh: refresh, look again
            self._repo = self._refreshed()
            return self.repo.require(d.manifest_path), self.repo.require(d.model_path)

    def verify_release(self, d: DirectedRelease) -> TrustedRelease:
        """Everything but the model bytes: image targets, manifest, trust policy."""
        try:
            manifest_info, model_info = self._targets(d)
            if (
                manifest_info.length != d.manifest_length
                or manifest_info.hashes.get("sha256") != d.manifest_sha256
            ):
                raise ReleaseRejected(
                    f"the image repository's {d.manifest_path} differs from the director's "
                    f"(length {manifest_info.length} vs {d.manifest_length}, sha256 "
                    f"{manifest_info.hashes.get('sha256')} vs {d.manifest_sha256})"
                )
            if model_info.hashes.get("sha256") != d.model_sha256:
                raise ReleaseRejected(
                    f"model sha256 in the image repository ({model_info.hashes.get('sha256')}) "
                    f"differs from the director's ({d.model_sha256})"
                )
            if model_info.length != d.model_length:
                raise ReleaseRejected(
                    f"model length in the image repository ({model_info.length} B) differs "
                    f"from the director's ({d.model_length} B)"
                )
            payload = self.repo.download_small(manifest_info)
        except RepositoryRefused as exc:
            raise ReleaseRejected(str(exc)) from exc
        release = parse_release(payload)
        m = release.manifest
        if m["release_id"] != d.release_id or m["model"] != d.model:
            raise ReleaseRejected(
                f"manifest names {m['model']} release {m['release_id']}, the director "
                f"{d.model} release {d.release_id}"
            )
        if m["model_digest"] != d.model_digest or m["model_size"] != d.model_length:
            raise ReleaseRejected(
                f"manifest model {m['model_digest']} ({m['model_size']} B) differs from the "
                f"director's {d.model_digest} ({d.model_length} B)"
            )
        verdict = self.check_policy(d, payload)
        self.check_model_signature(d)
        return TrustedRelease(d, release, tuple(verdict.approvers))

    def check_model_signature(self, d: DirectedRelease) -> None:
        """The release manager's OpenSSF Model Signing bundle must cover these model bytes.

        Checked against the director's `model_sha256`, the same digest the downloaded bytes
        must then have (hashed once), with the keys bound offline as mlops-engineer.
        """
        path = f"releases/{d.release_id}/{oms.SIGNATURE_FILE}"
        try:
            bundle_bytes = self._trust_file(path, required=True)
            bindings_bytes = self._trust_file(BINDINGS_PATH, required=True)
        except RepositoryRefused as exc:
            raise ReleaseRejected(str(exc)) from exc
        assert bundle_bytes is not None and bindings_bytes is not None
        try:
            bindings = trust_policy.parse_bindings(bindings_bytes)
            bundle = json.loads(bundle_bytes)
        except (trust_policy.PolicyError, ValueError) as exc:
            raise ReleaseRejected(f"model signature (OMS) unusable: {exc}") from exc
        managers = {
            oms.key_hint(b.public_key): b.public_key
            for b in bindings.keys.values()
            if "mlops-engineer" in b.roles
        }
        try:
            oms.verify_bundle(bundle, managers, d.model_sha256)
        except SignatureError as exc:
            raise ReleaseRejected(f"model signature (OMS) refused: {exc.detail}") from exc

    def _trust_file(self, path: str, required: bool) -> bytes | None:
        info = self.repo.target(path)
        if info is None:
            if required:
                raise ReleaseRejected(f"image repository has no target {path}")
            return None
        # Small targets are kept by their verified sha256: the bindings and the policy are
        # read by several checks and change rarely; a changed target has a new hash.
        key = (path, info.hashes.get("sha256", ""))
        data = self._small.get(key)
        if data is None:
            data = self.repo.download_small(info)
            if len(self._small) > _SMALL_CACHE_ENTRIES:
                self._small.clear()
            self._small[key] = data
        return data

    def check_policy(self, d: DirectedRelease, manifest: bytes) -> trust_policy.PolicyVerdict:
        try:
            bindings_bytes = self._trust_file(BINDINGS_PATH, required=True)
            policy_bytes = None
            if d.fleet:
                if not _FLEET_RE.match(d.fleet):
                    raise ReleaseRejected(f"fleet name {d.fleet!r} is not usable in a path")
                policy_bytes = self._trust_file(f"trust/policies/{d.fleet}.json", required=False)
            if policy_bytes is None:
                policy_bytes = self._trust_file(POLICY_PATH, required=True)
        except RepositoryRefused as exc:
            raise ReleaseRejected(str(exc)) from exc
        assert bindings_bytes is not None and policy_bytes is not None
        try:
            bindings = trust_policy.parse_bindings(bindings_bytes)
            policy = trust_policy.parse_policy(policy_bytes)
            facts = trust_policy.ReleaseFacts.from_manifest_bytes(manifest)
        except trust_policy.PolicyError as exc:
            raise ReleaseRejected(f"trust policy unusable: {exc}") from exc
        envelopes = self._client.attestations(d.release_id)
        verdict = trust_policy.evaluate_policy(policy, bindings, facts, envelopes)
        if not verdict.ok:
            raise ReleaseRejected(f"trust policy not met: {verdict.summary()}")
        return verdict
