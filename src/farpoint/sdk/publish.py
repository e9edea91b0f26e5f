"""Publishing a release (a release manager signs `releases.json` on their machine), and
downloading a release into a bundle that `verify_bundle` checks offline against a root.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from securesystemslib.signer import CryptoSigner  # type: ignore[attr-defined]  # tuf/sslib re-export without __all__
from tuf.api.exceptions import (
    DownloadError,
    DownloadHTTPError,
    LengthOrHashMismatchError,
    RepositoryError,
)
from tuf.api.metadata import Metadata, TargetFile, Targets  # type: ignore[attr-defined]  # tuf/sslib re-export without __all__
from tuf.ngclient import FetcherInterface, Updater  # type: ignore[attr-defined]  # tuf/sslib re-export without __all__

from farpoint.core import keys, oms
from farpoint.core.digest import digest_bytes
from farpoint.core.errors import (
    BadRequest,
    Conflict,
    FarpointError,
    Forbidden,
    NotFound,
    SignatureError,
)
from farpoint.core.trust_policy import (
    PolicyError,
    ReleaseFacts,
    evaluate_policy,
    parse_bindings,
    parse_policy,
)
from farpoint.sdk.client import Client
from farpoint.sdk.offline import RELEASES_ROLE, tuf_key

__all__ = [
    "BundleReport",
    "Check",
    "PublishResult",
    "download_release",
    "publish_release",
    "release_paths",
    "sign_releases",
    "verify_bundle",
]

RELEASES_EXPIRY_DAYS = 90
_BUNDLE_URL = "https://bundle.invalid/"
"""A base URL nothing resolves: the offline fetcher maps it onto the bundle directory."""


def signature_path(release_id: int) -> str:
    """The release manager's OpenSSF Model Signing bundle over the model."""
    return f"releases/{release_id}/{oms.SIGNATURE_FILE}"


def release_paths(release_id: int) -> tuple[str, str]:
    """`(manifest target, model target)` of a release."""
    return f"releases/{release_id}/manifest.json", f"releases/{release_id}/model.onnx"


# -- publishing ---------------------------------------------------------------------------------


@dataclass
class PublishResult:
    release_id: int
    version: int
    targets: dict[str, str]
    """target path -> sha256 hex, as hashed on this machine."""
    signatures: int
    threshold: int


def sign_releases(
    current: Targets | None,
    files: dict[str, bytes],
    signer: CryptoSigner,
    *,
    expires: datetime,
    cosign: Metadata[Targets] | None = None,
) -> Metadata[Targets]:
    """The next `releases.json` with `files` listed (or `cosign` with one more signature)."""
    if cosign is not None:
        for path, data in files.items():
            listed = cosign.signed.targets.get(path)
            if listed is None or listed != TargetFile.from_data(path, data, ["sha256"]):
                raise Conflict(
                    f"the current releases.json does not list {path} with the bytes seen here; "
                    "publish it (without --cosign) instead"
                )
        cosign.sign(signer, append=True)
        return cosign
    if current is None:
        signed = Targets(version=1, expires=expires)
    else:
        signed = Targets.from_dict(current.to_dict())
        signed.version += 1
        signed.expires = expires
    for path, data in files.items():
        signed.targets[path] = TargetFile.from_data(path, data, ["sha256"])
    md = Metadata(signed)
    md.sign(signer)
    return md


def _server_updater(client: Client, workdir: Path, root: bytes | None) -> Updater:
    bootstrap = root or client.tuf_metadata("1.root.json")
    if bootstrap is None:
        raise NotFound("the server has no root of trust yet; an admin runs `farpoint trust init`")
    return Updater(
        str(workdir),
        client.tuf_metadata_url(),
        fetcher=client.tuf_fetcher(),
        bootstrap=bootstrap,
    )


def _verified_releases(updater: Updater, workdir: Path, probe: str) -> Metadata[Targets] | None:
    """The current releases.json, verified through root, timestamp, snapshot and targets."""
    updater.refresh()
    snapshot = json.loads((workdir / "snapshot.json").read_bytes())
    if f"{RELEASES_ROLE}.json" not in snapshot["signed"]["meta"]:
        return None
    updater.get_targetinfo(probe)  # walks the delegation: loads and verifies releases.json
    return Metadata[Targets].from_bytes((workdir / f"{RELEASES_ROLE}.json").read_bytes())


def publish_release(
    client: Client,
    release_id: int,
    key: keys.PrivateKey,
    *,
    expires_days: int = RELEASES_EXPIRY_DAYS,
    cosign: bool = False,
    root: bytes | None = None,
    now: datetime | None = None,
) -> PublishResult:
    """Sign, here, `releases.json` listing the release's manifest and model as seen here.

    The image repository is read through python-tuf from `root` (default: the server's
    first root), so the signature goes only on metadata the chain vouches for.
    """
    signer = CryptoSigner(key, tuf_key(key.public_key()))
    manifest_path, model_path = release_paths(release_id)
    with tempfile.TemporaryDirectory(prefix="farpoint-tuf-") as tmp:
        workdir = Path(tmp)
        updater = _server_updater(client, workdir, root)
        try:
            current = _verified_releases(updater, workdir, manifest_path)
        except RepositoryError as exc:
            raise FarpointError(f"the image repository does not verify: {exc}") from exc
        targets = Metadata[Targets].from_bytes((workdir / "targets.json").read_bytes()).signed
    delegation = targets.delegations.roles[RELEASES_ROLE]  # type: ignore[union-attr,index]
    if signer.public_key.keyid not in delegation.keyids:
        raise Forbidden(
            f"key {keys.key_id(key.public_key())} is not a release-manager key in targets.json; "
            "an admin binds it offline with `farpoint trust bind-key KEY_ID --role mlops-engineer`"
        )
    manifest = client.tuf_target(manifest_path)
    model = client.tuf_target(model_path)
    _check_release(release_id, manifest, model)
    files = {manifest_path: manifest, model_path: model}
    if not cosign:
        # The OpenSSF Model Signing bundle over the bytes hashed here, by the same key.
        doc = json.loads(manifest)
        bundle = oms.sign_bundle(key, str(doc["model_ref"]), hashlib.sha256(model).hexdigest())
        signature = json.dumps(bundle, sort_keys=True).encode()
        client.put_model_signature(release_id, signature)
        files[signature_path(release_id)] = signature
    if cosign and current is None:
        raise NotFound("there is no releases.json to add a signature to; publish first")
    expires = (now or datetime.now(UTC)).replace(microsecond=0) + timedelta(days=expires_days)
    md = sign_releases(
        None if current is None else current.signed,
        files,
        signer,
        expires=expires,
        cosign=current if cosign else None,
    )
    client.put_tuf_releases(md.to_bytes())
    return PublishResult(
        release_id,
        md.signed.version,
        {path: hashlib.sha256(data).hexdigest() for path, data in files.items()},
        len(md.signatures),
        delegation.threshold,
    )


def _check_release(release_id: int, manifest: bytes, model: bytes) -> None:
    try:
        doc = json.loads(manifest)
    except ValueError as exc:
        raise BadRequest(f"release {release_id}'s manifest.json is not JSON: {exc}") from exc
    if not isinstance(doc, dict) or doc.get("release_id") != release_id:
        raise Conflict(f"the manifest served for release {release_id} names another release")
    if doc.get("model_digest") != digest_bytes(model):
        raise Conflict(
            f"release {release_id}: the manifest's model_digest {doc.get('model_digest')} is not "
            f"the sha256 of the model bytes served ({digest_bytes(model)}); not signing"
        )


# -- bundles ------------------------------------------------------------------------------------


def download_release(client: Client, release_id: int, directory: Path) -> Path:
    """Write a bundle: image-repository metadata, the release's targets, trust files and
    attestations, for `verify_bundle` on a machine with no access to the server."""
    if directory.exists() and any(directory.iterdir()):
        raise Conflict(f"{directory} is not empty; download into a new directory")
    meta = directory / "metadata"
    meta.mkdir(parents=True, exist_ok=True)
    chain = client.tuf_root_chain()
    if not chain:
        raise NotFound("the server has no root of trust yet; an admin runs `farpoint trust init`")
    for version, data in enumerate(chain, start=1):
        (meta / f"{version}.root.json").write_bytes(data)
    for role in ("timestamp", "snapshot", "targets", RELEASES_ROLE):
        found = client.tuf_metadata(f"{role}.json")
        if found is None:
            raise NotFound(f"the server has no {role}.json; is release {release_id} published?")
        (meta / f"{role}.json").write_bytes(found)
    top = Metadata[Targets].from_bytes((meta / "targets.json").read_bytes()).signed
    trust_files = sorted(p for p in top.targets if p.startswith("trust/"))
    wanted = [*release_paths(release_id), signature_path(release_id), *trust_files]
    contents = {}
    for path in wanted:
        contents[path] = client.tuf_target(path)
        out = directory / "targets" / path
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(contents[path])
    manifest_path, model_path = release_paths(release_id)
    envelopes: list[dict[str, Any]] = []
    seen: set[int] = set()
    for subject in (digest_bytes(contents[manifest_path]), digest_bytes(contents[model_path])):
        for attestation in client.list_attestations(subject=subject):
            if attestation.id not in seen:
                seen.add(attestation.id)
                envelopes.append(attestation.envelope.model_dump())
    (directory / "attestations.json").write_text(json.dumps({"attestations": envelopes}, indent=1))
    (directory / "bundle.json").write_text(
        json.dumps({"release_id": release_id, "server": client.base_url}, indent=1)
    )
    return directory


class _BundleFetcher(FetcherInterface):
    """Serves `tuf.ngclient` from a bundle's `metadata/` directory; anything else is a 404."""

    def __init__(self, directory: Path) -> None:
        self._dir = directory

    def _fetch(self, url: str) -> Iterator[bytes]:
        name = url.removeprefix(_BUNDLE_URL + "metadata/")
        path = self._dir / name
        if name == url or "/" in name or name.startswith(".") or not path.is_file():
            raise DownloadHTTPError(f"{name} is not in the bundle", 404)
        return iter([path.read_bytes()])


@dataclass
class Check:
    name: str
    ok: bool
    detail: str


@dataclass
class BundleReport:
    release_id: int | None
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(c.ok for c in self.checks)

    @property
    def first_failure(self) -> Check | None:
        return next((c for c in self.checks if not c.ok), None)

    def as_dict(self) -> dict[str, Any]:
        return {
            "release_id": self.release_id,
            "verified": self.ok,
            "checks": [{"name": c.name, "ok": c.ok, "detail": c.detail} for c in self.checks],
        }


class _Failed(Exception):
    pass


def verify_bundle(
    directory: Path, root: bytes | None = None, *, fleet: str | None = None
) -> BundleReport:
    """Verify a downloaded release offline; checks stop at the first that fails.

    The chain root → timestamp → snapshot → targets → releases with python-tuf, then the
    manifest and model hashes, the manifest's model digest, and the trust policy with the
    bindings (both signed offline, by hash in targets.json) over the bundle's attestations.
    """
    report = BundleReport(None)

    def check(name: str, ok: bool, detail: str) -> None:
        report.checks.append(Check(name, ok, detail))
        if not ok:
            raise _Failed

    with contextlib.suppress(_Failed):
        _verify(directory, root, fleet, report, check)
    return report


def _verify(
    directory: Path, root: bytes | None, fleet: str | None, report: BundleReport, check: Any
) -> None:
    meta = directory / "metadata"
    try:
        info = json.loads((directory / "bundle.json").read_bytes())
        release_id = int(info["release_id"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        check("bundle", False, f"{directory} is not a release bundle (bundle.json: {exc})")
        return
    report.release_id = release_id
    if root is None:
        first = meta / "1.root.json"
        root = first.read_bytes() if first.is_file() else b""
        origin = "the bundle's own 1.root.json (pass --root for a root you hold)"
    else:
        origin = "the root given"
    check("trusted root", bool(root), f"trusting {origin}")
    manifest_path, model_path = release_paths(release_id)
    with tempfile.TemporaryDirectory(prefix="farpoint-verify-") as tmp:
        try:
            updater = Updater(
                tmp, _BUNDLE_URL + "metadata/", fetcher=_BundleFetcher(meta), bootstrap=root
            )
            updater.refresh()
        except (RepositoryError, DownloadError, ValueError) as exc:
            check("tuf chain", False, f"root → timestamp → snapshot → targets: {exc}")
            return
        check("tuf chain", True, "root → timestamp → snapshot → targets verify")
        listed: dict[str, TargetFile] = {}
        sig_path = signature_path(release_id)
        for path in (manifest_path, model_path, sig_path):
            try:
                found = updater.get_targetinfo(path)
            except (RepositoryError, DownloadError) as exc:
                check("releases.json", False, f"{type(exc).__name__}: {exc}")
                return
            if found is None:
                check("releases.json", False, f"{path} is not listed by a release manager")
                return
            listed[path] = found
        check("releases.json", True, "signed by a threshold of release-manager keys")
        policy_path = _policy_path(fleet)
        if fleet and _top_level(updater, policy_path) is None:
            policy_path = _policy_path(None)  # no policy of its own: the default applies
        contents = {}
        for path in (manifest_path, model_path, sig_path, "trust/bindings.json", policy_path):
            target = listed.get(path) or _top_level(updater, path)
            local = directory / "targets" / path
            if target is None:
                check(path, False, f"{path} is not listed in the signed metadata")
                return
            if not local.is_file():
                check(path, False, f"{local} is missing from the bundle")
                return
            data = local.read_bytes()
            try:
                target.verify_length_and_hashes(data)
            except LengthOrHashMismatchError as exc:
                check(path, False, str(exc))
                return
            contents[path] = data
            check(path, True, f"sha256 {target.hashes['sha256']}, {target.length} bytes")
    manifest, model = contents[manifest_path], contents[model_path]
    try:
        facts = ReleaseFacts.from_manifest_bytes(manifest)
    except PolicyError as exc:
        check("manifest", False, str(exc))
        return
    check(
        "manifest model_digest",
        facts.model_digest == digest_bytes(model),
        f"the manifest names {facts.model_digest}; the model hashes to {digest_bytes(model)}",
    )
    try:
        bindings = parse_bindings(contents["trust/bindings.json"])
        policy = parse_policy(contents[policy_path])
        envelopes = json.loads((directory / "attestations.json").read_bytes())["attestations"]
    except (PolicyError, OSError, ValueError, KeyError) as exc:
        check("trust policy", False, f"cannot read the policy, bindings or attestations: {exc}")
        return
    managers = {
        oms.key_hint(b.public_key): b.public_key
        for b in bindings.keys.values()
        if "mlops-engineer" in b.roles
    }
    try:
        bundle = json.loads(contents[sig_path])
        oms.verify_bundle(bundle, managers, hashlib.sha256(model).hexdigest())
        check("model signature (OMS)", True, "signed by a release manager bound offline")
    except (ValueError, SignatureError) as exc:
        check("model signature (OMS)", False, getattr(exc, "detail", str(exc)))
        return
    verdict = evaluate_policy(policy, bindings, facts, envelopes)
    approvers = ", ".join(verdict.approvers) or "nobody"
    check(
        "trust policy",
        verdict.ok,
        f"met: approved by {approvers}" if verdict.ok else verdict.summary(),
    )


def _policy_path(fleet: str | None) -> str:
    return f"trust/policies/{fleet}.json" if fleet else "trust/policy.json"


def _top_level(updater: Updater, path: str) -> TargetFile | None:
    # Trust files are listed by the top-level targets, not by the delegation.
    try:
        found = updater.get_targetinfo(path)
    except (RepositoryError, DownloadError):
        return None
    return found
