"""Test helpers of the agent: a fake control plane and real ONNX models."""

from __future__ import annotations

import base64
import copy
import datetime
import hashlib
import json
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import numpy as np
import pandas as pd
import pytest
from securesystemslib.signer import CryptoSigner
from tuf.api.metadata import (
    DelegatedRole,
    Delegations,
    Metadata,
    MetaFile,
    Root,
    Snapshot,
    TargetFile,
    Targets,
    Timestamp,
)

from farpoint.core import digest, dsse, intoto, keys, oms, request_signing
from farpoint.core.errors import FarpointError


@dataclass
class OnnxModel:
    data: bytes
    inputs: list[str]
    rows: list[dict[str, float]]
    labels: list[int]
    probabilities: list[list[float]]

    @property
    def digest(self) -> str:
        return digest.digest_bytes(self.data)


def _train(seed: int) -> OnnxModel:
    import onnxruntime as ort
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline

    names = ["f0", "f1", "f2"]
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(200, 3)).astype(np.float32)
    y = (x[:, 0] + 0.5 * x[:, 1] - x[:, 2] + rng.normal(scale=0.3, size=200) > 0).astype(int)
    frame = pd.DataFrame(x, columns=names)
    # one named [None, 1] input per feature, as the SDK's conversion produces
    clf = LogisticRegression(C=1.0 / (seed + 1))
    pipe = Pipeline(
        [("features", ColumnTransformer([("pass", "passthrough", names)])), ("clf", clf)]
    ).fit(frame, y)
    onx = convert_sklearn(
        pipe,
        initial_types=[(n, FloatTensorType([None, 1])) for n in names],
        options={id(clf): {"zipmap": False}},
        target_opset=17,
    )
    data = onx.SerializeToString()
    sess = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    golden = x[:5]
    feeds = {n: golden[:, i : i + 1] for i, n in enumerate(names)}
    labels, probas = sess.run(["label", "probabilities"], feeds)
    rows = [{n: float(v) for n, v in zip(names, r, strict=True)} for r in golden]
    return OnnxModel(data, names, rows, [int(v) for v in labels], probas.tolist())


def failing_model(base: OnnxModel, f0_limit: float = 100.0) -> OnnxModel:
    """`base`, but onnxruntime fails (an out-of-bounds Gather) on rows whose f0 is over
    `f0_limit`: it passes its golden self-test and fails real traffic."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    graph = onnx.load_from_string(base.data)
    g = graph.graph
    for node in g.node:
        for i, out in enumerate(node.output):
            if out == "probabilities":
                node.output[i] = "probabilities_raw"
    g.initializer.extend(
        [
            numpy_helper.from_array(np.array([f0_limit], np.float32), "fp_limit"),
            numpy_helper.from_array(np.zeros((1,), np.float32), "fp_zero"),
        ]
    )
    g.node.extend(
        [
            helper.make_node("Greater", ["f0", "fp_limit"], ["fp_over"]),
            helper.make_node("Cast", ["fp_over"], ["fp_index"], to=TensorProto.INT64),
            helper.make_node("Gather", ["fp_zero", "fp_index"], ["fp_pad"], axis=0),
            helper.make_node("Add", ["probabilities_raw", "fp_pad"], ["probabilities"]),
        ]
    )
    onnx.checker.check_model(graph)
    return OnnxModel(
        graph.SerializeToString(), base.inputs, base.rows, base.labels, base.probabilities
    )


def padded_model(base: OnnxModel, extra_bytes: int) -> OnnxModel:
    """`base` with an unused initializer of `extra_bytes`: the same answers, more bytes."""
    import onnx
    from onnx import numpy_helper

    graph = onnx.load_from_string(base.data)
    pad = np.random.default_rng(1).random(extra_bytes // 4, dtype=np.float32)
    graph.graph.initializer.append(numpy_helper.from_array(pad, "padding"))
    return OnnxModel(
        graph.SerializeToString(), base.inputs, base.rows, base.labels, base.probabilities
    )


@pytest.fixture(scope="session")
def model_a() -> OnnxModel:
    return _train(0)


@pytest.fixture(scope="session")
def model_b() -> OnnxModel:
    return _train(3)


# -- keys ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Person:
    name: str
    roles: tuple[str, ...]
    key: keys.PrivateKey

    @property
    def key_id(self) -> str:
        return keys.key_id(self.key.public_key())


@dataclass(frozen=True)
class TrustKeys:
    """The offline, online and people's keys of one test session (ECDSA P-256)."""

    root: CryptoSigner
    targets: CryptoSigner
    snapshot: CryptoSigner
    timestamp: CryptoSigner
    director: CryptoSigner
    release_manager: CryptoSigner
    rogue: CryptoSigner
    dana: Person  # data-scientist
    omar: Person  # mlops-engineer
    alex: Person  # data-scientist and mlops-engineer; the author of every model version
    eve: Person  # a key the server knows but no offline binding names


@pytest.fixture(scope="session")
def trust_keys() -> TrustKeys:
    gen = CryptoSigner.generate_ecdsa
    person = keys.generate_private_key
    return TrustKeys(
        gen(), gen(), gen(), gen(), gen(), gen(), gen(),
        Person("dana", ("data-scientist",), person()),
        Person("omar", ("mlops-engineer",), person()),
        Person("alex", ("data-scientist", "mlops-engineer"), person()),
        Person("eve", ("mlops-engineer",), person()),
    )  # fmt: skip


def make_manifest(
    release_id: int, model: OnnxModel, name: str = "churn", author: str = "alex"
) -> dict[str, Any]:
    return {
        "schema": "farpoint.release-manifest/v1",
        "release_id": release_id,
        "model": name,
        "model_version": release_id,
        "model_ref": f"{name}@{release_id}",
        "model_digest": model.digest,
        "model_size": len(model.data),
        "signature": {
            "inputs": [{"name": n, "dtype": "float32", "shape": [None, 1]} for n in model.inputs],
            "outputs": [
                {"name": "label", "dtype": "int64", "shape": [None]},
                {"name": "probabilities", "dtype": "float32", "shape": [None, 2]},
            ],
        },
        "label_column": "churned",
        "classes": [0, 1],
        "golden": copy.deepcopy(
            {"rows": model.rows, "labels": model.labels, "probabilities": model.probabilities}
        ),
        "evaluation_id": 1,
        "author": author,
        "created_at": "2026-11-01T00:00:00Z",
    }


def canonical(doc: Any) -> bytes:
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def envelope(person: Person, statement: intoto.Statement) -> dict[str, Any]:
    return dsse.sign_envelope(intoto.statement_bytes(statement), intoto.PAYLOAD_TYPE, person.key)


def approval(person: Person, manifest_digest: str, role: str) -> dict[str, Any]:
    st = intoto.Statement.build(
        [intoto.Subject("release", manifest_digest)],
        intoto.APPROVAL_V1,
        {"role": role, "comment": "", "approved_at": "2026-11-01T00:00:00+00:00"},
    )
    return envelope(person, st)


def evaluation(person: Person, model_digest: str, result: str = "PASSED") -> dict[str, Any]:
    st = intoto.Statement.build(
        [intoto.Subject("churn@1", model_digest)],
        intoto.TEST_RESULT_V01,
        {"result": result, "passedTests": [], "failedTests": [], "configuration": []},
    )
    return envelope(person, st)


@dataclass
class Clock:
    """The one clock of a test: device request signing, expiry, the fake's checks."""

    offset: float = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset

    def dt(self, delta_s: float = 0.0) -> datetime.datetime:
        return datetime.datetime.fromtimestamp(self() + delta_s, datetime.UTC).replace(
            microsecond=0
        )


@dataclass
class Release:
    release_id: int
    model: OnnxModel
    name: str
    manifest: bytes
    fleet: str = "all"

    @property
    def manifest_digest(self) -> str:
        return digest.digest_bytes(self.manifest)

    @property
    def manifest_path(self) -> str:
        return f"releases/{self.release_id}/manifest.json"

    @property
    def model_path(self) -> str:
        return f"releases/{self.release_id}/model.onnx"


class Repository:
    """A real TUF image repository built with python-tuf's Metadata API."""

    def __init__(self, k: TrustKeys, clock: Clock) -> None:
        self.k, self.clock = k, clock
        self.metadata: dict[str, bytes] = {}
        self.targets_files: dict[str, bytes] = {}
        expires = clock.dt(365 * 86400)
        root = Root(expires=expires, consistent_snapshot=False)
        for role, signer in (
            ("root", k.root), ("targets", k.targets),
            ("snapshot", k.snapshot), ("timestamp", k.timestamp),
        ):  # fmt: skip
            root.add_key(signer.public_key, role)
        root.keys[k.director.public_key.keyid] = k.director.public_key
        root.unrecognized_fields["x-farpoint-director"] = {
            "keyids": [k.director.public_key.keyid],
            "threshold": 1,
        }
        self.root = Metadata(root)
        self.root.sign(k.root)
        self.root_bytes = self.root.to_bytes()
        self.metadata["1.root.json"] = self.root_bytes

        targets = Targets(expires=expires)
        targets.delegations = Delegations(
            keys={k.release_manager.public_key.keyid: k.release_manager.public_key},
            roles={
                "releases": DelegatedRole(
                    name="releases",
                    keyids=[k.release_manager.public_key.keyid],
                    threshold=1,
                    terminating=True,
                    paths=["releases/*/*"],
                )
            },
        )
        self.targets = Metadata(targets)
        self.releases = Metadata(Targets(expires=clock.dt(90 * 86400)))
        self.snapshot = Metadata(Snapshot(expires=clock.dt(7 * 86400)))
        self.timestamp = Metadata(Timestamp(expires=clock.dt(86400)))
        self.bindings: dict[str, Any] = {
            "schema": "farpoint.bindings/v1",
            "keys": {
                p.key_id: {
                    "user": p.name,
                    "roles": list(p.roles),
                    "public_key_pem": keys.public_key_pem(p.key.public_key()).decode(),
                }
                for p in (k.dana, k.omar, k.alex)
            },
        }
        self.policy: dict[str, Any] = {
            "schema": "farpoint.trust-policy/v1",
            "evaluation": "passed",
            "approvals": [
                {"role": "data-scientist", "min": 1},
                {"role": "mlops-engineer", "min": 1},
            ],
            "min_distinct_approvers": 2,
            "author_may_approve": False,
        }
        self.set_trust_files()

    def set_trust_files(self) -> None:
        for name, doc in (("bindings.json", self.bindings), ("policy.json", self.policy)):
            data = canonical(doc)
            path = f"trust/{name}"
            self.targets_files[path] = data
            self.targets.signed.targets[path] = TargetFile.from_data(path, data)
        self.targets.signed.version += 1
        self.targets.signatures.clear()
        self.targets.sign(self.k.targets)
        self.metadata["targets.json"] = self.targets.to_bytes()
        self._snapshot()

    def _snapshot(self) -> None:
        snap = self.snapshot.signed
        snap.meta["targets.json"] = MetaFile(version=self.targets.signed.version)
        snap.meta["releases.json"] = MetaFile(version=self.releases.signed.version)
        snap.version += 1
        snap.expires = self.clock.dt(7 * 86400)
        self.snapshot.signatures.clear()
        self.snapshot.sign(self.k.snapshot)
        self.metadata["snapshot.json"] = self.snapshot.to_bytes()
        ts = self.timestamp.signed
        ts.snapshot_meta = MetaFile(version=snap.version)
        ts.version += 1
        ts.expires = self.clock.dt(86400)
        self.timestamp.signatures.clear()
        self.timestamp.sign(self.k.timestamp)
        self.metadata["timestamp.json"] = self.timestamp.to_bytes()

    def add_release(
        self,
        release: Release,
        signer: CryptoSigner | None = None,
        model_signer: keys.PrivateKey | bool | None = True,
    ) -> None:
        """List the release in releases.json; `model_signer` signs its OMS bundle (True: a
        bound release manager, omar; None/False: no model signature at all)."""
        rel = self.releases.signed
        files = {release.manifest_path: release.manifest, release.model_path: release.model.data}
        if model_signer is not None and model_signer is not False:
            key = self.k.omar.key if model_signer is True else model_signer
            sha = hashlib.sha256(release.model.data).hexdigest()
            bundle = oms.sign_bundle(key, f"release-{release.release_id}", sha)
            sig_path = f"releases/{release.release_id}/{oms.SIGNATURE_FILE}"
            files[sig_path] = json.dumps(bundle).encode()
        for path, data in files.items():
            rel.targets[path] = TargetFile.from_data(path, data)
            self.targets_files[path] = data
        rel.version += 1
        self.releases.signatures.clear()
        self.releases.sign(signer or self.k.release_manager)
        self.metadata["releases.json"] = self.releases.to_bytes()
        self._snapshot()


@dataclass
class FakeControlPlane:
    """Enough of the server for a device: signed requests checked, a real TUF image
    repository, real per-device director metadata, DSSE attestations."""

    k: TrustKeys
    clock: Clock
    repo: Repository
    url: str = ""
    tokens: set[str] = field(default_factory=set)
    devices: dict[str, keys.PublicKey] = field(default_factory=dict)
    enroll_requests: list[dict[str, Any]] = field(default_factory=list)
    # what enrollment answers with: override to play a server handing over another root
    answer_root: bytes | None = None
    releases: dict[int, Release] = field(default_factory=dict)
    attestations: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    served_blobs: dict[str, bytes] = field(default_factory=dict)
    endless: set[str] = field(default_factory=set)
    director: dict[str, bytes] = field(default_factory=dict)
    director_history: dict[str, list[bytes]] = field(default_factory=dict)
    director_version: dict[str, int] = field(default_factory=dict)
    desired: list[dict[str, Any]] = field(default_factory=list)
    etag: str = "e0"
    reports: list[dict[str, Any]] = field(default_factory=list)
    # a status report this returns a status for is refused with it (and kept in `refused`)
    refuse_status: Callable[[dict[str, Any]], int | None] | None = None
    refused: list[dict[str, Any]] = field(default_factory=list)
    requests: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    bad_signatures: int = 0
    hold_polls: bool = False
    """Answer every held poll (wait > 0) 304, as a push that is late: only a poll with
    wait=0 sees a new desired state."""
    cond: threading.Condition = field(default_factory=threading.Condition)

    @property
    def root_hex(self) -> str:
        return hashlib.sha256(self.repo.root_bytes).hexdigest()

    def token(self) -> str:
        token = f"fpe1.{secrets.token_urlsafe(16)}.{self.root_hex}"
        self.tokens.add(token)
        return token

    def release(
        self,
        release_id: int,
        model: OnnxModel,
        *,
        name: str = "churn",
        edit: Callable[[dict[str, Any]], None] | None = None,
        signer: CryptoSigner | None = None,
        in_image: bool = True,
        served: bytes | None = None,
        attestations: Callable[[Release], list[dict[str, Any]]] | None = None,
        model_signer: keys.PrivateKey | bool | None = True,
    ) -> Release:
        """A release as a release manager publishes it, with its approvals by default."""
        manifest = make_manifest(release_id, model, name)
        if edit is not None:
            edit(manifest)
        release = Release(release_id, model, name, canonical(manifest))
        if in_image:
            self.repo.add_release(release, signer, model_signer)
        if served is not None:
            self.served_blobs[release.model_path] = served
        self.releases[release_id] = release
        self.attestations[release_id] = (
            attestations(release) if attestations else self.default_attestations(release)
        )
        return release

    def default_attestations(self, release: Release) -> list[dict[str, Any]]:
        return [
            evaluation(self.k.dana, release.model.digest),
            approval(self.k.dana, release.manifest_digest, "data-scientist"),
            approval(self.k.omar, release.manifest_digest, "mlops-engineer"),
        ]

    def director_metadata(
        self,
        device_id: str,
        releases: list[Release],
        *,
        expires: datetime.datetime | None = None,
        for_device: str | None = None,
        version: int | None = None,
    ) -> bytes:
        targets = Targets(expires=expires or self.clock.dt(3600))
        targets.version = version or self.director_version.get(device_id, 0) + 1
        self.director_version[device_id] = max(
            targets.version, self.director_version.get(device_id, 0)
        )
        targets.unrecognized_fields["x-farpoint-device"] = for_device or device_id
        for r in releases:
            info = TargetFile.from_data(r.manifest_path, r.manifest)
            info.unrecognized_fields["custom"] = {
                "model": r.name,
                "release_id": r.release_id,
                "model_path": r.model_path,
                "model_sha256": r.model.digest.split(":")[1],
                "model_length": len(r.model.data),
                "fleet": r.fleet,
            }
            targets.targets[r.manifest_path] = info
        md = Metadata(targets)
        md.sign(self.k.director)
        return md.to_bytes()

    def deploy(
        self,
        *releases: Release,
        rollout_id: int | None = None,
        health: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """The director names `releases` for every device; the desired state changes (and
        names `rollout_id` and the `health` window, when given)."""
        with self.cond:
            # both change under the lock: a held poll wakes once both have
            self.set_desired(*releases, rollout_id=rollout_id, health=health)
            for device_id in self.devices:
                data = self.director_metadata(device_id, list(releases), **kwargs)
                self.director[device_id] = data
                self.director_history.setdefault(device_id, []).append(data)

    def serve_director(self, data: bytes, *desired: Release) -> None:
        with self.cond:
            for device_id in self.devices:
                self.director[device_id] = data
            self.set_desired(*desired)

    def set_desired(
        self,
        *releases: Release,
        rollout_id: int | None = None,
        health: dict[str, Any] | None = None,
    ) -> None:
        with self.cond:
            self.desired = [
                {
                    "model": r.name,
                    "release_id": r.release_id,
                    "manifest_digest": r.manifest_digest,
                    "model_digest": r.model.digest,
                    "fleet": r.fleet,
                    "rollout_id": rollout_id,
                    **({"health": health} if health is not None else {}),
                }
                for r in releases
            ]
            self.etag = "e" + uuid.uuid4().hex[:8]
            self.cond.notify_all()

    def wait_for(
        self, predicate: Callable[[FakeControlPlane], bool], timeout_s: float = 15.0
    ) -> None:
        with self.cond:
            if not self.cond.wait_for(lambda: predicate(self), timeout=timeout_s):
                raise AssertionError(f"timed out; last reports: {self.reports[-3:]}")

    def phases(self, model: str, release_id: int) -> list[str]:
        out: list[str] = []
        for report in self.reports:
            for m in report["models"]:
                same = m["model"] == model and m["release_id"] == release_id
                if same and (not out or out[-1] != m["phase"]):
                    out.append(m["phase"])
        return out

    def statuses(self, model: str, release_id: int) -> list[dict[str, Any]]:
        """Every status of `release_id` reported, oldest first."""
        return [
            dict(m)
            for report in self.reports
            for m in report["models"]
            if m["model"] == model and m["release_id"] == release_id
        ]

    def last_status(self, model: str) -> dict[str, Any] | None:
        for report in reversed(self.reports):
            for m in report["models"]:
                if m["model"] == model:
                    return dict(m)
        return None

    def failure(self, model: str, release_id: int, timeout_s: float = 15.0) -> str:
        """Wait for `release_id` to be reported failed; return the reason."""
        self.wait_for(lambda c: "failed" in c.phases(model, release_id), timeout_s)
        for report in reversed(self.reports):
            for m in report["models"]:
                if (m["model"], m["release_id"], m["phase"]) == (model, release_id, "failed"):
                    return str(m["error"])
        raise AssertionError("unreachable")

    def count(self, path_prefix: str) -> int:
        return sum(1 for _, p, _ in self.requests if p.startswith(path_prefix))


TUF = "/api/v1/tuf"


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes: without TCP_NODELAY, Nagle and the
    # peer's delayed ACK add ~40 ms to every keep-alive response.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _send(
        self, status: int, body: bytes, ctype: str, extra: dict[str, str] | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, doc: Any, ctype: str = "application/json") -> None:
        self._send(status, json.dumps(doc).encode(), ctype)

    def _empty(self, status: int) -> None:
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _device(self, body: bytes) -> str:
        cp = self.server.cp
        device_id = self.headers.get(request_signing.HEADER_DEVICE, "")
        key = cp.devices.get(device_id)
        if key is None:
            raise FarpointError("unknown device")
        try:
            request_signing.verify_request(
                self.headers, self.command, self.path, body, key, cp.clock()
            )
        except FarpointError:
            with cp.cond:
                cp.bad_signatures += 1
            raise
        return device_id

    def _problem(self, status: int, detail: str) -> None:
        self._json(
            status, {"title": "x", "status": status, "detail": detail}, "application/problem+json"
        )

    def do_POST(self) -> None:
        cp = self.server.cp
        body = self._body()
        path = urlsplit(self.path).path
        cp.requests.append(("POST", path, dict(self.headers)))
        if path == "/api/v1/devices/enroll":
            doc = json.loads(body)
            cp.enroll_requests.append(doc)
            if doc["token"] not in cp.tokens:
                self._problem(401, "enrollment token is unknown, used or expired")
                return
            cp.tokens.discard(doc["token"])
            device_id = "dev-" + uuid.uuid4().hex[:12]
            cp.devices[device_id] = keys.load_public_key(doc["public_key_pem"])
            root = cp.answer_root if cp.answer_root is not None else cp.repo.root_bytes
            self._json(
                201,
                {
                    "device_id": device_id,
                    "root_json_b64": base64.b64encode(root).decode(),
                    "labels": doc["labels"],
                },
            )
            return
        try:
            self._device(body)
        except FarpointError as exc:
            self._problem(401, exc.detail)
            return
        if path == "/api/v1/devices/self/status":
            doc = json.loads(body)
            refusal = cp.refuse_status(doc) if cp.refuse_status is not None else None
            with cp.cond:
                (cp.refused if refusal else cp.reports).append(doc)
                cp.cond.notify_all()
            if refusal:
                self._problem(refusal, "status report refused by the test")
            else:
                self._empty(204)
            return
        self._problem(404, "no route")

    def _model(self, path: str, data: bytes) -> None:
        cp = self.server.cp
        if path in cp.endless:  # no length announced, and it never ends
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Connection", "close")
            self.end_headers()
            self.close_connection = True
            try:
                self.wfile.write(data)
                for _ in range(4096):  # 256 MiB at most, should the client not stop
                    self.wfile.write(b"\0" * 65536)
            except OSError:
                pass
            return
        start = 0
        rng = self.headers.get("Range")
        if rng and rng.startswith("bytes=") and rng.endswith("-"):
            start = int(rng[6:-1])
            if start >= len(data):
                self._problem(416, "range not satisfiable")
                return
            extra = {"Content-Range": f"bytes {start}-{len(data) - 1}/{len(data)}"}
            self._send(206, data[start:], "application/octet-stream", extra)
            return
        self._send(200, data, "application/octet-stream")

    def do_GET(self) -> None:
        cp = self.server.cp
        parts = urlsplit(self.path)
        path = parts.path
        cp.requests.append(("GET", path, dict(self.headers)))
        try:
            device_id = self._device(b"")
        except FarpointError as exc:
            self._problem(401, exc.detail)
            return
        if path == "/api/v1/devices/self/desired-state":
            wait = float(parse_qs(parts.query).get("wait", ["0"])[0])
            seen = self.headers.get("If-None-Match")
            with cp.cond:
                cp.cond.wait_for(lambda: cp.etag != seen, timeout=min(wait, 60))
                if cp.etag == seen or (cp.hold_polls and wait > 0):
                    self._empty(304)
                    return
                doc = {"device_id": device_id, "etag": cp.etag, "models": list(cp.desired)}
            self._json(200, doc)
            return
        if path == f"{TUF}/director/targets.json":
            data = cp.director.get(device_id)
            if data is None:
                self._problem(404, "no director metadata for this device yet")
            else:
                self._send(200, data, "application/json")
            return
        prefix = f"{TUF}/image/metadata/"
        if path.startswith(prefix):
            data = cp.repo.metadata.get(path[len(prefix) :])
            if data is None:
                self._problem(404, "no such metadata")
            else:
                self._send(200, data, "application/json")
            return
        prefix = f"{TUF}/image/targets/"
        if path.startswith(prefix):
            target = path[len(prefix) :]
            data = cp.served_blobs.get(target, cp.repo.targets_files.get(target))
            if data is None:
                self._problem(404, "no such target")
            elif target.endswith("/model.onnx"):
                self._model(target, data)
            else:
                self._send(200, data, "application/octet-stream")
            return
        prefix = "/api/v1/devices/self/releases/"
        if path.startswith(prefix) and path.endswith("/attestations"):
            release_id = int(path[len(prefix) : -len("/attestations")])
            self._json(200, {"attestations": cp.attestations.get(release_id, [])})
            return
        self._problem(404, "no route")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    cp: FakeControlPlane


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def control_plane(trust_keys: TrustKeys, clock: Clock) -> Iterator[FakeControlPlane]:
    cp = FakeControlPlane(k=trust_keys, clock=clock, repo=Repository(trust_keys, clock))
    httpd = _Server(("127.0.0.1", 0), _Handler)
    httpd.cp = cp
    cp.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield cp
    with cp.cond:  # release any held long poll
        cp.etag = "closing"
        cp.cond.notify_all()
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def enrolled(control_plane: FakeControlPlane, tmp_path: Path) -> Path:
    """A state directory enrolled with the fake control plane."""
    from farpoint.agent.enroll import enroll

    state = tmp_path / "state"
    enroll(control_plane.url, control_plane.token(), state, "edge-1", {"site": "lab"})
    return state


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()
