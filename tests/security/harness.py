"""The world the attack suite runs in, with real processes, and a man in the middle.

- `World`: a real `farpoint server` (its own FARPOINT_HOME, SQLite), people with roles and
  their own signing keys, an offline root of trust made with the real tooling
  (`farpoint.sdk.offline`), keys bound offline, release 1 published by a release manager
  (`farpoint.sdk.publish`) and rolled out to a real `farpoint agent` that reaches the
  server only through the proxy below, so it serves release 1.
- `MitmProxy`: a small HTTP proxy (stdlib `ThreadingHTTPServer` on 127.0.0.1) between the
  agent and the server that records every answer and can replay an earlier answer,
  freeze a path to a recorded one, substitute another device's, or append bytes to a body.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import http.client
import json
import os
import secrets
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from farpoint.core import keys
from farpoint.core.request_signing import sign_request
from farpoint.examples.processes import Child, farpoint_command, start_agent, start_server

MODEL = "deterioration"
API = "/api/v1"
TUF_META = f"{API}/tuf/image/metadata/"
TUF_TARGETS = f"{API}/tuf/image/targets/"
DIRECTOR = f"{API}/tuf/director/targets.json"
DESIRED = f"{API}/devices/self/desired-state"
DONE_PHASES = ("failed", "active", "rolled_back")
APPROVERS = (("sam", "data-scientist"), ("mo", "mlops-engineer"))
"""The default approvals: a data scientist who is not the author, and a release manager."""
PASSPHRASE = "offline passphrase for the attack suite"
DIRECTOR_EXPIRY_S = 30
"""FARPOINT_DIRECTOR_EXPIRY_S for the server: short, so a frozen director answer expires
while the suite runs (the agent has no injectable clock on its command line)."""

# -- the man in the middle ---------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    """One HTTP answer as the proxy saw it from the server (or serves it instead)."""

    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes
    at: float = 0.0

    def header(self, name: str) -> str | None:
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    def with_body(self, body: bytes) -> Answer:
        return replace(self, body=body)

    def json(self) -> Any:
        return json.loads(self.body)


Transform = Callable[[Answer], Answer]
_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailers",
    "transfer-encoding",
    "upgrade",
    "content-length",
    "host",
    "accept-encoding",
}


@dataclass
class _Rule:
    serve: Answer | None = None
    """Answer this without asking the server."""
    transform: Transform | None = None
    """Ask the server, then change its answer."""
    hits: int = 0


class MitmProxy:
    """agent -> proxy -> server. Rules are keyed by exact URL path (no query)."""

    def __init__(self, upstream: str) -> None:
        u = urlsplit(upstream)
        self.upstream_host = u.hostname or "127.0.0.1"
        self.upstream_port = u.port or 80
        self._lock = threading.Lock()
        self._rules: dict[str, _Rule] = {}
        self._history: dict[str, list[Answer]] = {}
        self.requests: list[tuple[str, str]] = []
        self._reports: list[dict[str, Any]] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._server.proxy = self  # type: ignore[attr-defined]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> MitmProxy:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    # -- what was seen -------------------------------------------------------------------
    def history(self, path: str) -> list[Answer]:
        """Every answer the server gave for `path` (status 200/206 only), oldest first."""
        with self._lock:
            return list(self._history.get(path, []))

    def last(self, path: str) -> Answer:
        seen = self.history(path)
        assert seen, f"the proxy never saw an answer for {path}"
        return seen[-1]

    def hits(self, path: str) -> int:
        with self._lock:
            rule = self._rules.get(path)
            return rule.hits if rule else 0

    # -- attacks -----------------------------------------------------------------------------
    def replay(self, path: str, answer: Answer) -> None:
        """Answer `path` with an earlier recorded answer (the server is not asked)."""
        self._set(path, _Rule(serve=answer))

    def freeze(self, path: str, answer: Answer) -> None:
        """Keep answering `path` with `answer` from now on (a freeze attack)."""
        self._set(path, _Rule(serve=answer))

    def substitute(self, path: str, answer: Answer) -> None:
        """Answer `path` with someone else's answer (another device's metadata)."""
        self._set(path, _Rule(serve=answer))

    def transform(self, path: str, change: Transform) -> None:
        """Ask the server, then hand the agent `change(answer)`."""
        self._set(path, _Rule(transform=change))

    def append(self, path: str, extra: bytes) -> None:
        """Ask the server, then append `extra` to the body (endless data)."""
        self.transform(path, lambda a: a.with_body(a.body + extra))

    def clear(self, path: str | None = None) -> None:
        with self._lock:
            if path is None:
                self._rules.clear()
            else:
                self._rules.pop(path, None)

    def _set(self, path: str, rule: _Rule) -> None:
        with self._lock:
            self._rules[path] = rule

    # -- plumbing ----------------------------------------------------------------------------
    def _rule(self, path: str) -> _Rule | None:
        with self._lock:
            rule = self._rules.get(path)
            if rule is not None:
                rule.hits += 1
            return rule

    def _forward(self, method: str, target: str, headers: Any, body: bytes) -> Answer:
        conn = http.client.HTTPConnection(self.upstream_host, self.upstream_port, timeout=120)
        try:
            out = {k: v for k, v in headers.items() if k.lower() not in _HOP}
            out["Host"] = f"{self.upstream_host}:{self.upstream_port}"
            if body:
                out["Content-Length"] = str(len(body))
            conn.request(method, target, body=body or None, headers=out)
            resp = conn.getresponse()
            data = resp.read()
            kept = tuple((k, v) for k, v in resp.getheaders() if k.lower() not in _HOP)
            return Answer(resp.status, kept, data, time.time())
        finally:
            conn.close()

    def wait_hits(self, path: str, count: int = 1, timeout_s: float = 20.0) -> None:
        """Wait until the rule on `path` has answered `count` requests: every sync the
        agent starts from then on meets the attack."""
        deadline = time.monotonic() + timeout_s
        while self.hits(path) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"the agent did not ask for {path} within {timeout_s} s")
            time.sleep(0.05)

    def reports(self) -> list[dict[str, Any]]:
        """Every status report the agent sent through the proxy, oldest first."""
        with self._lock:
            return list(self._reports)

    def _record(self, method: str, path: str, answer: Answer, body: bytes = b"") -> None:
        with self._lock:
            self.requests.append((method, path))
            if method == "POST" and path == f"{API}/devices/self/status":
                with contextlib.suppress(ValueError):
                    self._reports.append(json.loads(body))
            if method == "GET" and answer.status in (200, 206):
                self._history.setdefault(path, []).append(answer)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _handle(self) -> None:
        proxy: MitmProxy = self.server.proxy  # type: ignore[attr-defined]
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        path = urlsplit(self.path).path
        rule = proxy._rule(path)
        if rule is not None and rule.serve is not None:
            answer = rule.serve
            with proxy._lock:
                proxy.requests.append((self.command, path))
        else:
            try:
                answer = proxy._forward(self.command, self.path, self.headers, body)
            except OSError as exc:
                answer = Answer(502, (("Content-Type", "text/plain"),), str(exc).encode())
            proxy._record(self.command, path, answer, body)
            if rule is not None and rule.transform is not None:
                answer = rule.transform(answer)
        self.send_response(answer.status)
        for k, v in answer.headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(answer.body)))
        self.end_headers()
        if self.command != "HEAD":
            with contextlib.suppress(OSError):
                self.wfile.write(answer.body)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _handle


# -- the world -----------------------------------------------------------------------------------


@dataclass
class Person:
    name: str
    roles: list[str]
    client: Any
    """farpoint.sdk.Client with this person's token and keys directory."""
    key: keys.PrivateKey
    key_id: str
    passphrase: str


@dataclass
class Device:
    name: str
    id: str
    state_dir: Path
    key: keys.PrivateKey
    labels: dict[str, str]
    agent: Child | None = None
    port: int = 0


@dataclass
class ModelVersion:
    ref: str
    digest: str
    evaluation_id: int


@dataclass
class World:
    root: Path
    home: Path
    env: dict[str, str]
    base_url: str
    server: Child
    proxy: MitmProxy
    admin: Any
    people: dict[str, Person]
    offline_dir: Path
    rows: list[dict[str, Any]]
    versions: list[ModelVersion] = field(default_factory=list)
    devices: dict[str, Device] = field(default_factory=dict)
    children: list[Child] = field(default_factory=list)
    good_release: int = 0
    """The release the device serves before every attack (release 1)."""
    log: list[str] = field(default_factory=list)

    # -- people, keys, the offline root ---------------------------------------------------------
    def offline_passphrase(self) -> bytes:
        return PASSPHRASE.encode()

    def bind(self, person: str, role: str) -> None:
        from farpoint.sdk import offline

        offline.bind_key(
            self.admin,
            self.offline_dir,
            self.offline_passphrase(),
            self.people[person].key_id,
            role,
        )

    def unbind(self, person: str) -> None:
        from farpoint.sdk import offline

        offline.unbind_key(
            self.admin, self.offline_dir, self.offline_passphrase(), self.people[person].key_id
        )

    def online_key(self, role: str) -> keys.PrivateKey:
        """An online key stolen from the server's disk (FARPOINT_HOME/keys/tuf-<role>.pem)."""
        return keys.load_private_key((self.home / "keys" / f"tuf-{role}.pem").read_bytes())

    # -- releases ------------------------------------------------------------------------------
    def create_release(self, version: int = 1) -> int:
        """A release of model version `version` (1-based index into `versions`)."""
        mv = self.versions[version - 1]
        release = self.people["mo"].client.create_release(mv.ref, evaluation_id=mv.evaluation_id)
        return int(release.id)

    def approve(self, release_id: int, *who: tuple[str, str]) -> None:
        for person, role in who:
            p = self.people[person]
            p.client.approve(release_id=release_id, role=role, key=p.key)

    def publish(self, release_id: int, by: str = "mo") -> None:
        from farpoint.sdk import publish

        p = self.people[by]
        publish.publish_release(p.client, release_id, p.key)

    def release(
        self,
        version: int = 2,
        *,
        approvals: tuple[tuple[str, str], ...] = APPROVERS,
        publish: bool = True,
    ) -> int:
        """Create, approve and (unless told otherwise) publish a release; not rolled out."""
        rid = self.create_release(version)
        self.approve(rid, *approvals)
        if publish:
            self.publish(rid)
            self.settle()
        return rid

    def settle(self, timeout_s: float = 20.0) -> None:
        """Wait until the device has fetched the server's newest timestamp, so a rollout
        made next is not judged against an image repository read just before a publish
        (the agent refreshes the repository, then fetches the director)."""
        newest = metadata_version(self.tuf_bytes("timestamp.json"))
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            seen = self.proxy.history(TUF_META + "timestamp.json")
            if seen and metadata_version(seen[-1].body) >= newest:
                return
            time.sleep(0.1)
        raise AssertionError(f"the device did not fetch timestamp version {newest}")

    def rollout(self, release_id: int, fleet: str = "ward-a") -> int:
        # No rollback on failure: these attacks need the device to keep being told about
        # the bad release, and to go on refusing it while it serves the good one.
        client = self.people["mo"].client
        return int(client.create_rollout(fleet, release_id, rollback_on_failure=False).id)

    # -- what the device says ----------------------------------------------------------------------
    def device_entry(self, device: str = "a") -> dict[str, Any] | None:
        out = self.admin.get_device(self.devices[device].id)
        for m in out.models:
            if m.model == MODEL:
                return m.model_dump(mode="json")  # type: ignore[no-any-return]
        return None

    def wait_report(
        self,
        release_id: int,
        device: str = "a",
        timeout_s: float = 45.0,
        phases: tuple[str, ...] = DONE_PHASES,
    ) -> tuple[str, str]:
        """Wait until the device reports one of `phases` (by default a final one) for
        `release_id` through GET /devices/{id}; returns (phase, error). Bounded: fails
        with the agent's and the server's log tails."""
        deadline = time.monotonic() + timeout_s
        seen: dict[str, Any] | None = None
        while time.monotonic() < deadline:
            seen = self.device_entry(device)
            if seen and seen["release_id"] == release_id and seen["phase"] in phases:
                return seen["phase"], seen.get("error") or ""
            time.sleep(0.2)
        agent = self.devices[device].agent
        raise AssertionError(
            f"device {device} reported no final phase for release {release_id} within "
            f"{timeout_s} s; last seen {seen}\n--- agent log ---\n"
            f"{agent.tail(40) if agent else ''}\n--- server log ---\n{self.server.tail(20)}"
        )

    def reasons(self, release_id: int) -> list[str]:
        """Every reason device a gave for refusing `release_id`, as sent to the server."""
        out = []
        for report in self.proxy.reports():
            for m in report.get("models", []):
                if m.get("release_id") == release_id and m.get("phase") == "failed":
                    out.append(str(m.get("error") or ""))
        return out

    def restore(self) -> None:
        """After an attack: honest answers again, and the device back on release 1."""
        self.proxy.clear()
        self.rollout(self.good_release)
        self.wait_serving(self.good_release)

    def serving(self, device: str = "a") -> int:
        """The release the device's local API answers predictions with."""
        d = self.devices[device]
        r = httpx.post(
            f"http://127.0.0.1:{d.port}/v1/models/{MODEL}:predict",
            json={"rows": self.rows},
            timeout=30,
        )
        r.raise_for_status()
        return int(r.json()["release_id"])

    def wait_serving(self, release_id: int, device: str = "a", timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        last: Any = None
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                last = self.serving(device)
                if last == release_id:
                    return
            time.sleep(0.2)
        agent = self.devices[device].agent
        raise AssertionError(
            f"device {device} serves {last}, not {release_id}, after {timeout_s} s; "
            f"report {self.device_entry(device)}\n{agent.tail(40) if agent else ''}"
        )

    # -- speaking as a device, directly to the server ---------------------------------------
    def signed(
        self,
        key: keys.PrivateKey,
        device_id: str,
        method: str,
        path: str,
        body: bytes = b"",
    ) -> httpx.Response:
        headers = sign_request(key, device_id, method, path, body, time.time())
        if body:
            headers["Content-Type"] = "application/json"
        return httpx.request(
            method, self.base_url + path, content=body or None, headers=headers, timeout=30
        )

    def as_device(self, device: str, method: str, path: str, body: bytes = b"") -> httpx.Response:
        d = self.devices[device]
        return self.signed(d.key, d.id, method, path, body)

    def tuf_bytes(self, name: str) -> bytes:
        data = self.admin.tuf_metadata(name)
        assert data is not None, f"the server has no {name}"
        return bytes(data)

    def enroll(self, name: str, labels: dict[str, str], via: str | None = None) -> Device:
        ito = self.people["ito"].client
        token = ito.create_enrollment_token(labels=labels, expires_in_s=3600).token
        state = self.root / "devices" / name
        out = run_cli(
            "agent",
            "enroll",
            "--server",
            via or self.proxy.url,
            "--token",
            token,
            "--state-dir",
            str(state),
            "--name",
            name,
            env=self.env,
        )
        assert out.returncode == 0, out.stderr
        device_id = out.stdout.strip().splitlines()[-1]
        key = keys.load_private_key((state / "device-key.pem").read_bytes())
        d = Device(name, device_id, state, key, labels)
        self.devices[name] = d
        return d

    def start_agent(self, device: str) -> None:
        d = self.devices[device]
        child, port = start_agent(
            d.state_dir,
            poll_wait=2,
            heartbeat_s=2,
            env=self.agent_env(),
            extra_args=[
                "--trust-clock-offset-file",
                str(self.clock_file(device)),
                # the attacks change what the server serves without a rollout: look often
                "--resync-s",
                "2",
            ],
        )
        self.children.append(child)
        d.agent, d.port = child, port

    def clock_file(self, device: str) -> Path:
        return self.devices[device].state_dir / "clock-offset"

    def travel(self, seconds: float, device: str = "a") -> None:
        """Move the clock device `device` judges metadata expiry by (injected, no sleeping);
        its requests stay signed with the real time the server checks."""
        from farpoint.agent.state import atomic_write

        atomic_write(self.clock_file(device), f"{seconds}\n".encode())

    def agent_env(self) -> dict[str, str]:
        env = dict(self.env)
        env.pop("FARPOINT_HOME", None)
        return env


def run_cli(
    *args: str, env: dict[str, str], timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        farpoint_command(*args),
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def sdk(base_url: str, token: str, keys_dir: Path) -> Any:
    from farpoint.sdk import Client

    c = Client(base_url, token, timeout=120)
    c.keys_dir = keys_dir
    return c


PEOPLE = {
    "dana": ["data-scientist"],  # the author of every model version
    "sam": ["data-scientist"],  # a reviewer, bound offline
    "eve": ["data-scientist"],  # has a registered key that is never bound offline
    "mo": ["mlops-engineer"],  # the release manager, bound offline
    "rex": ["mlops-engineer"],  # bound offline, later unbound (a revoked key)
    "ito": ["it-ops"],
}
BOUND = (
    ("dana", "data-scientist"),
    ("sam", "data-scientist"),
    ("mo", "mlops-engineer"),
    ("rex", "mlops-engineer"),
)


def build_world(root: Path) -> Iterator[World]:
    """Generator: yields the world (device a serving release 1), then stops everything."""
    from farpoint.examples import vitals
    from farpoint.sdk import offline

    home = root / "server"
    env = dict(os.environ)
    env["FARPOINT_HOME"] = str(home)
    env["FARPOINT_DIRECTOR_EXPIRY_S"] = str(DIRECTOR_EXPIRY_S)
    env.pop("FARPOINT_URL", None)
    env.pop("FARPOINT_TOKEN", None)
    out = run_cli("admin", "init", "--json", env=env)
    assert out.returncode == 0, out.stderr
    admin_token = json.loads(out.stdout)["token"]
    children: list[Child] = []
    proxy: MitmProxy | None = None
    try:
        server, base_url = start_server(home, env, console=False)
        children.append(server)
        proxy = MitmProxy(base_url).start()
        admin = sdk(base_url, admin_token, root / "keys" / "admin")
        people: dict[str, Person] = {}
        for name, roles in PEOPLE.items():
            admin.create_user(name, roles)
            token = admin.create_token(name, description="attack suite").token
            client = sdk(base_url, token, root / "keys" / name)
            passphrase = secrets.token_urlsafe(12)
            key = client.create_key("own", passphrase)
            client.register_key("own")
            key_id = keys.key_id(key.public_key())
            people[name] = Person(name, roles, client, key, key_id, passphrase)

        offline_dir = root / "offline"
        offline.init(admin, offline_dir, PASSPHRASE.encode())
        frame = vitals.generate(n_rows=1200, seed=3)
        train, holdout = vitals.split(frame, holdout_fraction=0.3, seed=3)
        rows = json.loads(holdout.head(3)[vitals.FEATURES].to_json(orient="records"))
        world = World(
            root=root,
            home=home,
            env=env,
            base_url=base_url,
            server=server,
            proxy=proxy,
            admin=admin,
            people=people,
            offline_dir=offline_dir,
            rows=rows,
            children=children,
        )
        for person, role in BOUND:
            world.bind(person, role)
        _models(world, train, holdout, root / "data")

        world.admin.create_fleet("ward-a", {"ward": "a"})
        world.admin.create_fleet("ward-b", {"ward": "b"})
        world.enroll("a", {"ward": "a"})
        world.enroll("b", {"ward": "b"}, via=base_url)
        world.start_agent("a")
        world.good_release = world.release(1)
        world.rollout(world.good_release, "ward-a")
        world.rollout(world.good_release, "ward-b")
        world.wait_report(world.good_release, timeout_s=90, phases=("active",))
        world.wait_serving(world.good_release)
        yield world
    finally:
        from farpoint.examples.processes import stop_all

        stop_all(children)
        if proxy is not None:
            proxy.stop()


def _models(world: World, train: Any, holdout: Any, data_dir: Path) -> None:
    """Four model versions of one model (distinct ONNX bytes), evaluated and attested."""
    from farpoint.examples import vitals

    dana = world.people["dana"]
    data_dir.mkdir(parents=True, exist_ok=True)
    train.to_csv(data_dir / "train.csv", index=False)
    holdout.to_csv(data_dir / "holdout.csv", index=False)
    ds = dana.client
    v_train = ds.upload_dataset("vitals", data_dir / "train.csv", roles=vitals.COLUMN_ROLES)
    v_hold = ds.upload_dataset("holdout", data_dir / "holdout.csv", roles=vitals.COLUMN_ROLES)
    world.people["mo"].client.create_policy("lenient", LENIENT)
    data = ds.load_dataset(v_train.ref)
    for i, c in enumerate((1.0, 0.5, 0.25, 0.125), start=1):
        run = ds.log_run(name=f"run-{i}", params={"C": c}, metrics={}, datasets=[v_train.ref])
        model = vitals.train_model(data, seed=7)
        model.set_params(classifier__C=c)
        model.fit(data[vitals.FEATURES], data[vitals.LABEL])
        mv = ds.register_sklearn_model(
            MODEL, model, data, vitals.FEATURES, run_id=run.id, label_column=vitals.LABEL
        )
        evaluation = ds.evaluate(mv.ref, v_hold.ref, "lenient")
        assert evaluation.passed, evaluation.gates
        ds.attest_evaluation(evaluation.id, dana.key)
        world.versions.append(ModelVersion(mv.ref, mv.digest, evaluation.id))
    digests = {v.digest for v in world.versions}
    assert len(digests) == len(world.versions), "model versions must differ in bytes"


LENIENT = "gates:\n  - metric: roc_auc\n    min: 0.5\n"


# -- forging with stolen keys ----------------------------------------------------------------


def tuf_signer(private: keys.PrivateKey) -> Any:
    from securesystemslib.signer import CryptoSigner

    from farpoint.sdk.offline import tuf_key

    return CryptoSigner(private, tuf_key(private.public_key()))


def resign(data: bytes, private: keys.PrivateKey, change: Callable[[Any], None]) -> bytes:
    """TUF metadata `data` changed by `change(signed)` and signed again with `private` only."""
    from tuf.api.metadata import Metadata

    md = Metadata.from_bytes(data)
    change(md.signed)
    md.signatures.clear()
    md.sign(tuf_signer(private))
    return bytes(md.to_bytes())


def expires_in(seconds: float) -> datetime:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).replace(microsecond=0)


def metadata_version(data: bytes) -> int:
    return int(json.loads(data)["signed"]["version"])


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()
