"""Test helpers of the agent: a fake control plane and real ONNX models."""

from __future__ import annotations

import base64
import copy
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

from farpoint.core import digest, dsse, keys, request_signing
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


@pytest.fixture(scope="session")
def model_a() -> OnnxModel:
    return _train(0)


@pytest.fixture(scope="session")
def model_b() -> OnnxModel:
    return _train(3)


@pytest.fixture(scope="session")
def server_key() -> keys.PrivateKey:
    return keys.generate_private_key()


def make_manifest(release_id: int, model: OnnxModel, name: str = "churn") -> dict[str, Any]:
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
        "created_at": "2026-11-01T00:00:00Z",
    }


@dataclass
class FakeControlPlane:
    """Just enough of the server for a device: it checks every device signature."""

    key: keys.PrivateKey
    url: str = ""
    tokens: set[str] = field(default_factory=set)
    devices: dict[str, keys.PublicKey] = field(default_factory=dict)
    enroll_requests: list[dict[str, Any]] = field(default_factory=list)
    # what enrollment answers with: override to play a server with the wrong key
    answer_key_pem: str | None = None
    answer_key_id: str | None = None
    envelopes: dict[int, dict[str, Any]] = field(default_factory=dict)
    blobs: dict[str, bytes] = field(default_factory=dict)
    desired: list[dict[str, Any]] = field(default_factory=list)
    etag: str = "e0"
    reports: list[dict[str, Any]] = field(default_factory=list)
    requests: list[tuple[str, str]] = field(default_factory=list)
    bad_signatures: int = 0
    cond: threading.Condition = field(default_factory=threading.Condition)

    @property
    def key_id(self) -> str:
        return keys.key_id(self.key.public_key())

    def token(self) -> str:
        token = f"fpe1.{secrets.token_urlsafe(16)}.{self.key_id.split(':', 1)[1]}"
        self.tokens.add(token)
        return token

    def publish(
        self,
        release_id: int,
        model: OnnxModel,
        *,
        name: str = "churn",
        edit: Callable[[dict[str, Any]], None] | None = None,
        signer: keys.PrivateKey | None = None,
        blob: bytes | None = None,
    ) -> dict[str, Any]:
        """Sign a release manifest, store the blob and return the desired-state entry."""
        manifest = make_manifest(release_id, model, name)
        if edit is not None:
            edit(manifest)
        payload = json.dumps(manifest).encode()
        envelope = dsse.sign_envelope(payload, dsse.MANIFEST_TYPE, signer or self.key)
        if signer is not None:  # claim the server's key id: the signature must still fail
            envelope["signatures"][0]["keyid"] = self.key_id
        self.envelopes[release_id] = envelope
        self.blobs[model.digest] = model.data if blob is None else blob
        return {
            "model": name,
            "release_id": release_id,
            "manifest_digest": digest.digest_bytes(payload),
            "model_digest": model.digest,
            "fleet": "all",
        }

    def set_desired(self, *models: dict[str, Any]) -> None:
        with self.cond:
            self.desired = list(models)
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

    def last_status(self, model: str) -> dict[str, Any] | None:
        for report in reversed(self.reports):
            for m in report["models"]:
                if m["model"] == model:
                    return dict(m)
        return None

    def count(self, path_prefix: str) -> int:
        return sum(1 for _, p in self.requests if p.startswith(path_prefix))


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _json(self, status: int, doc: Any, ctype: str = "application/json") -> None:
        body = json.dumps(doc).encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

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
                self.headers, self.command, self.path, body, key, time.time()
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
        cp.requests.append(("POST", path))
        if path == "/api/v1/devices/enroll":
            doc = json.loads(body)
            cp.enroll_requests.append(doc)
            if doc["token"] not in cp.tokens:
                self._problem(401, "enrollment token is unknown, used or expired")
                return
            cp.tokens.discard(doc["token"])
            device_id = "dev-" + uuid.uuid4().hex[:12]
            cp.devices[device_id] = keys.load_public_key(doc["public_key_pem"])
            pem = cp.answer_key_pem or keys.public_key_pem(cp.key.public_key()).decode()
            self._json(
                201,
                {
                    "device_id": device_id,
                    "server_public_key_pem": pem,
                    "server_key_id": cp.answer_key_id or cp.key_id,
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
            with cp.cond:
                cp.reports.append(json.loads(body))
                cp.cond.notify_all()
            self._empty(204)
            return
        self._problem(404, "no route")

    def do_GET(self) -> None:
        cp = self.server.cp
        parts = urlsplit(self.path)
        path = parts.path
        cp.requests.append(("GET", path))
        try:
            self._device(b"")
        except FarpointError as exc:
            self._problem(401, exc.detail)
            return
        if path == "/api/v1/devices/self/desired-state":
            wait = float(parse_qs(parts.query).get("wait", ["0"])[0])
            seen = self.headers.get("If-None-Match")
            with cp.cond:
                cp.cond.wait_for(lambda: cp.etag != seen, timeout=min(wait, 60))
                if cp.etag == seen:
                    self._empty(304)
                    return
                doc = {"device_id": "x", "etag": cp.etag, "models": list(cp.desired)}
            self._json(200, doc)
            return
        prefix = "/api/v1/devices/self/releases/"
        if path.startswith(prefix) and path.endswith("/manifest"):
            envelope = cp.envelopes.get(int(path[len(prefix) : -len("/manifest")]))
            if envelope is None:
                self._problem(404, "no such release")
            else:
                self._json(200, envelope)
            return
        prefix = "/api/v1/devices/self/blobs/"
        if path.startswith(prefix):
            data = cp.blobs.get(path[len(prefix) :])
            if data is None:
                self._problem(404, "no such blob")
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        self._problem(404, "no route")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    cp: FakeControlPlane


@pytest.fixture
def control_plane(server_key: keys.PrivateKey) -> Iterator[FakeControlPlane]:
    cp = FakeControlPlane(key=server_key)
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
