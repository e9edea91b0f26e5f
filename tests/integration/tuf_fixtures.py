"""Initialize the image repository the way an admin would, for tests.

Offline keys (root 2-of-3, top-level targets) are generated here; metadata is built with
python-tuf's Metadata API and uploaded through the PUT endpoints. `init_trust(api,
admin_token, tmp_path)` returns a `TrustFixture` that can bind people's keys, publish
releases signed by release managers, rotate root, and build a `tuf.ngclient.Updater`
that talks to the app in process (signing device requests when given a device).

This is a test stand-in for `farpoint trust init`, not that tool.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from fastapi import FastAPI
from fastapi.testclient import TestClient
from securesystemslib.signer import CryptoSigner, SSlibKey
from tuf.api.exceptions import DownloadHTTPError
from tuf.api.metadata import (
    DelegatedRole,
    Delegations,
    Metadata,
    Role,
    Root,
    TargetFile,
    Targets,
)
from tuf.ngclient import FetcherInterface, Updater

from farpoint.core import keys

__all__ = [
    "DIRECTOR_FIELD",
    "TUF",
    "AppFetcher",
    "TrustFixture",
    "build_root",
    "ensure_trust",
    "init_trust",
    "signer_of",
    "tuf_key",
]

TUF = "/api/v1/tuf"
DIRECTOR_FIELD = "x-farpoint-director"
Signer = keys.PrivateKey | CryptoSigner


def signer_of(key: Signer) -> CryptoSigner:
    return key if isinstance(key, CryptoSigner) else CryptoSigner(key)


def tuf_key(pem: str | bytes) -> SSlibKey:
    """The TUF key (securesystemslib key id) of a PEM public key."""
    return SSlibKey.from_crypto(keys.load_public_key(pem))


def _now(app: FastAPI) -> datetime:
    return datetime.fromtimestamp(app.state.ctx.clock(), UTC).replace(microsecond=0)


def _online_from_app(app: FastAPI) -> dict[str, SSlibKey]:
    from farpoint.server.tuf.online import online_keys

    found = online_keys(app.state.ctx.settings.key_dir)
    return {role: found.public(role) for role in ("snapshot", "timestamp", "director")}


def build_root(
    version: int,
    root_keys: Sequence[SSlibKey],
    threshold: int,
    targets_key: SSlibKey,
    online: dict[str, SSlibKey],
    expires: datetime,
) -> Metadata[Root]:
    """A root naming the offline root and targets keys and the server's online keys."""
    root = Root(version=version, expires=expires, consistent_snapshot=False)
    for key in (*root_keys, targets_key, *online.values()):
        root.keys[key.keyid] = key
    root.roles["root"] = Role([k.keyid for k in root_keys], threshold)
    root.roles["targets"] = Role([targets_key.keyid], 1)
    root.roles["snapshot"] = Role([online["snapshot"].keyid], 1)
    root.roles["timestamp"] = Role([online["timestamp"].keyid], 1)
    root.unrecognized_fields[DIRECTOR_FIELD] = {
        "keyids": [online["director"].keyid],
        "threshold": 1,
    }
    return Metadata(root)


def ensure_trust(app: FastAPI) -> None:
    """A root v1 through the service (no HTTP, no admin token), when none exists yet: for
    tests that only need trust initialized, such as enrollment."""
    from farpoint.server.tuf import service

    ctx = app.state.ctx
    with ctx.db.session() as s:
        if service.current_root(s) is not None:
            return
    signers = [CryptoSigner(keys.generate_private_key()) for _ in range(3)]
    md = build_root(
        1,
        [sg.public_key for sg in signers],
        2,
        CryptoSigner(keys.generate_private_key()).public_key,
        _online_from_app(app),
        _now(app) + timedelta(days=365),
    )
    for sg in signers[:2]:
        md.sign(sg, append=True)
    with ctx.db.session() as s:
        service.upload_root(s, ctx, md.to_bytes(), "test")


class AppFetcher(FetcherInterface):
    """python-tuf's transport over the in-process app: a bearer token, or a device's
    signature on every request."""

    def __init__(self, api: TestClient, token: str | None = None, device: Any = None) -> None:
        self.api, self.token, self.device = api, token, device
        self.requests: list[str] = []

    def _fetch(self, url: str) -> Iterator[bytes]:
        parts = urlsplit(url)
        path = parts.path + ("?" + parts.query if parts.query else "")
        self.requests.append(path)
        if self.device is not None:
            headers = self.device.headers("GET", path)
        else:
            headers = {"Authorization": f"Bearer {self.token}"}
        r = self.api.get(path, headers=headers)
        if r.status_code != 200:
            raise DownloadHTTPError(f"GET {path}: {r.status_code} {r.text[:200]}", r.status_code)
        return iter([r.content])


@dataclass
class TrustFixture:
    """An initialized image repository and the offline keys that made it."""

    api: TestClient
    admin_token: str
    tmp_path: Path
    root_signers: list[CryptoSigner]
    root_threshold: int
    targets_signer: CryptoSigner
    root: Metadata[Root]
    targets: Metadata[Targets]
    online: dict[str, SSlibKey]
    bindings: dict[str, Any] = field(
        default_factory=lambda: {"schema": "farpoint.bindings/v1", "keys": {}}
    )
    trust_files: dict[str, bytes] = field(default_factory=dict)
    targets_uploaded: bool = False

    @property
    def app(self) -> FastAPI:
        app: FastAPI = self.api.app  # type: ignore[assignment]
        return app

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.admin_token}"}

    def now(self) -> datetime:
        return _now(self.app)

    def root_bytes(self, version: int | None = None) -> bytes:
        v = version or self.root.signed.version
        r = self.api.get(f"{TUF}/image/metadata/{v}.root.json", headers=self.headers)
        assert r.status_code == 200, r.text
        return r.content

    def root_digest(self) -> str:
        return "sha256:" + hashlib.sha256(self.root_bytes()).hexdigest()

    def put(self, what: str, data: bytes, token: str | None = None) -> Any:
        h = {"Authorization": f"Bearer {token or self.admin_token}"}
        return self.api.put(f"{TUF}/image/{what}", content=data, headers=h)

    # --- offline targets: bindings and policies -------------------------------------

    def _sign_targets(self) -> None:
        if self.targets_uploaded:
            self.targets.signed.version += 1
        self.targets_uploaded = True
        self.targets.signed.expires = self.now() + timedelta(days=365)
        self.targets.signatures.clear()
        self.targets.sign(self.targets_signer)
        r = self.put("targets", self.targets.to_bytes())
        assert r.status_code == 200, r.text

    def _upload_trust_files(self) -> None:
        for name, data in self.trust_files.items():
            r = self.put(f"trust-files/{name}", data)
            assert r.status_code == 200, r.text

    def set_trust_file(self, name: str, data: bytes) -> None:
        """List `trust/<name>` in a new targets.json, upload it, then upload the file."""
        self.trust_files[name] = data
        path = f"trust/{name}"
        self.targets.signed.targets[path] = TargetFile.from_data(path, data, ["sha256"])
        self._sign_targets()
        self._upload_trust_files()

    def set_policy(self, policy: dict[str, Any], fleet: str | None = None) -> None:
        name = f"policies/{fleet}.json" if fleet else "policy.json"
        data = json.dumps(policy, sort_keys=True, separators=(",", ":")).encode()
        self.set_trust_file(name, data)

    def bind(self, key_pem: str | bytes, user: str, roles: Sequence[str]) -> None:
        """Bind a person's key to roles offline; an mlops-engineer key also joins the
        releases delegation (it can publish)."""
        pem = key_pem.decode() if isinstance(key_pem, bytes) else key_pem
        kid = keys.key_id(keys.load_public_key(pem))
        self.bindings["keys"][kid] = {"user": user, "roles": list(roles), "public_key_pem": pem}
        if "mlops-engineer" in roles:
            key = tuf_key(pem)
            delegations = self.targets.signed.delegations
            assert delegations is not None and delegations.roles is not None
            delegations.keys[key.keyid] = key
            role = delegations.roles["releases"]
            if key.keyid not in role.keyids:
                role.keyids.append(key.keyid)
        data = json.dumps(self.bindings, sort_keys=True, separators=(",", ":")).encode()
        self.set_trust_file("bindings.json", data)

    def set_releases_threshold(self, threshold: int) -> None:
        delegations = self.targets.signed.delegations
        assert delegations is not None and delegations.roles is not None
        delegations.roles["releases"].threshold = threshold
        self._sign_targets()
        self._upload_trust_files()

    # --- release managers: releases.json ----------------------------------------------

    def releases_metadata(self) -> Metadata[Targets]:
        """The current releases.json, or an empty one before the first publication."""
        r = self.api.get(f"{TUF}/image/metadata/releases.json", headers=self.headers)
        if r.status_code == 404:
            return Metadata(Targets(version=1, expires=self.now() + timedelta(days=90)))
        assert r.status_code == 200, r.text
        md: Metadata[Targets] = Metadata.from_bytes(r.content)
        return md

    def release_targets(self, release_id: int) -> dict[str, TargetFile]:
        """The release's manifest and model as target files, from the bytes the server
        serves (a release manager would build them from what they reviewed)."""
        out = {}
        for name in ("manifest.json", "model.onnx"):
            path = f"releases/{release_id}/{name}"
            r = self.api.get(f"{TUF}/image/targets/{path}", headers=self.headers)
            assert r.status_code == 200, r.text
            out[path] = TargetFile.from_data(path, r.content, ["sha256"])
        return out

    def sign_releases(
        self, release_ids: Sequence[int], signers: Sequence[Signer], version: int | None = None
    ) -> Metadata[Targets]:
        md = self.releases_metadata()
        first = not md.signatures
        md.signatures.clear()
        for rid in release_ids:
            md.signed.targets.update(self.release_targets(rid))
        if version is not None:
            md.signed.version = version
        elif not first:
            md.signed.version += 1
        md.signed.expires = self.now() + timedelta(days=90)
        for sg in signers:
            md.sign(signer_of(sg), append=True)
        return md

    def cosign(self, signer: Signer, token: str | None = None) -> Any:
        """A second release manager adds their signature to the current releases.json."""
        md = self.releases_metadata()
        md.sign(signer_of(signer), append=True)
        return self.put("releases", md.to_bytes(), token)

    def publish(
        self,
        release_id: int,
        signer: Signer | Sequence[Signer],
        *,
        token: str | None = None,
        expect: int = 200,
    ) -> Any:
        """Add the release to releases.json, sign it with `signer` (one key or several),
        upload it; asserts the status is `expect` and returns the response."""
        signers = list(signer) if isinstance(signer, (list, tuple)) else [signer]
        md = self.sign_releases([release_id], signers)
        r = self.put("releases", md.to_bytes(), token)
        assert r.status_code == expect, r.text
        return r

    # --- root -------------------------------------------------------------------------

    def rotate_root(
        self,
        new_signers: Sequence[CryptoSigner] | None = None,
        threshold: int | None = None,
        sign_with: Sequence[CryptoSigner] | None = None,
        expect: int = 200,
    ) -> Any:
        """Root N+1 with new root keys, signed by `sign_with` (default: a threshold of the
        old keys and of the new ones)."""
        new_signers = list(
            new_signers or [CryptoSigner(keys.generate_private_key()) for _ in range(3)]
        )
        threshold = threshold or self.root_threshold
        md = build_root(
            self.root.signed.version + 1,
            [s.public_key for s in new_signers],
            threshold,
            self.targets_signer.public_key,
            self.online,
            self.now() + timedelta(days=365),
        )
        if sign_with is None:
            sign_with = [*self.root_signers[: self.root_threshold], *new_signers[:threshold]]
        for sg in sign_with:
            md.sign(sg, append=True)
        r = self.put("root", md.to_bytes())
        assert r.status_code == expect, r.text
        if r.status_code == 200:
            self.root, self.root_signers, self.root_threshold = md, new_signers, threshold
        return r

    # --- clients ----------------------------------------------------------------------

    def updater(
        self,
        name: str = "client",
        device: Any = None,
        bootstrap: bytes | None = None,
        token: str | None = None,
        from_local: bool = False,
    ) -> Updater:
        """A `tuf.ngclient.Updater` over the app, with directories per `name`: bootstrapped
        with `bootstrap` (default root v1), or with the root it trusts already
        (`from_local`). An Updater refreshes once; make another to refresh again."""
        base = self.tmp_path / "tuf-clients" / name
        (base / "metadata").mkdir(parents=True, exist_ok=True)
        (base / "targets").mkdir(parents=True, exist_ok=True)
        fetcher = AppFetcher(self.api, token or self.admin_token, device)
        return Updater(
            str(base / "metadata"),
            f"http://testserver{TUF}/image/metadata/",
            str(base / "targets"),
            f"http://testserver{TUF}/image/targets/",
            fetcher,
            bootstrap=None if from_local else (bootstrap or self.root_bytes(1)),
        )


def init_trust(api: TestClient, admin_token: str, tmp_path: Path) -> TrustFixture:
    """Root v1 (2 of 3 offline keys), targets v1 delegating `releases/*/*` (no keys yet),
    bindings.json (empty) and the default policy, all uploaded as an admin would."""
    h = {"Authorization": f"Bearer {admin_token}"}
    r = api.get(f"{TUF}/online-keys", headers=h)
    assert r.status_code == 200, r.text
    online = {role: tuf_key(r.json()[role]) for role in ("snapshot", "timestamp", "director")}
    app: FastAPI = api.app  # type: ignore[assignment]
    now = _now(app)

    root_signers = [CryptoSigner(keys.generate_private_key()) for _ in range(3)]
    targets_signer = CryptoSigner(keys.generate_private_key())
    root = build_root(
        1,
        [s.public_key for s in root_signers],
        2,
        targets_signer.public_key,
        online,
        now + timedelta(days=365),
    )
    for sg in root_signers[:2]:
        root.sign(sg, append=True)
    r = api.put(f"{TUF}/image/root", content=root.to_bytes(), headers=h)
    assert r.status_code == 200, r.text

    releases = DelegatedRole("releases", [], 1, True, paths=["releases/*/*"])
    targets = Metadata(
        Targets(
            version=1,
            expires=now + timedelta(days=365),
            delegations=Delegations(keys={}, roles={"releases": releases}),
        )
    )
    fx = TrustFixture(
        api=api,
        admin_token=admin_token,
        tmp_path=tmp_path,
        root_signers=root_signers,
        root_threshold=2,
        targets_signer=targets_signer,
        root=root,
        targets=targets,
        online=online,
    )
    policy = {
        "schema": "farpoint.trust-policy/v1",
        "evaluation": "passed",
        "approvals": [
            {"role": "data-scientist", "min": 1},
            {"role": "mlops-engineer", "min": 1},
        ],
        "min_distinct_approvers": 2,
        "author_may_approve": False,
    }
    for name, doc in (("bindings.json", fx.bindings), ("policy.json", policy)):
        data = json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()
        fx.trust_files[name] = data
        targets.signed.targets[f"trust/{name}"] = TargetFile.from_data(
            f"trust/{name}", data, ["sha256"]
        )
    fx._sign_targets()
    fx._upload_trust_files()
    return fx


def decode_root(b64: str) -> bytes:
    return base64.b64decode(b64)
