"""The agent's identity against the real server over real HTTP(S): enrollment that pins the
TLS CA, the hardware profile, key rotation (and its recovery), approval, decommissioning
and remote diagnostics, with the agent's own client (urllib3)."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import ssl
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from live_server import serve
from tuf_fixtures import ensure_trust

from farpoint.agent.client import DeviceClient, LinkDown, ServerError
from farpoint.agent.enroll import EnrollError, enroll_device
from farpoint.agent.rotate import NEXT_KEY_FILE, KeyRotator, resume_rotation, rotate_key
from farpoint.agent.state import KEY_FILE, load_identity
from farpoint.agent.tls import CA_FILE, InsecureServer
from farpoint.core import keys
from farpoint.core.key_rotation import sign_rotation
from tls_certs import TlsFiles, write_tls_files

pytestmark = pytest.mark.timeout(90)


@dataclass
class World:
    app: Any
    url: str
    ops: httpx.Client
    tls: TlsFiles | None

    def token(self, **body: Any) -> str:
        r = self.ops.post("/api/v1/enrollment-tokens", json=body)
        assert r.status_code == 201, r.text
        return str(r.json()["token"])

    def device(self, device_id: str) -> dict[str, Any]:
        r = self.ops.get(f"/api/v1/devices/{device_id}")
        assert r.status_code == 200, r.text
        return dict(r.json())


def _world(tmp_path: Path, tls: TlsFiles | None) -> Iterator[World]:
    from farpoint.server.app import create_app
    from farpoint.server.identity.service import bootstrap_admin
    from farpoint.server.settings import Settings

    settings = Settings(
        home=tmp_path / "home",
        database_url=f"sqlite:///{tmp_path / 'farpoint.db'}",
        long_poll_max_s=5,
    )
    if tls is not None:
        settings = dataclasses.replace(settings, tls_cert=tls.cert, tls_key=tls.key, tls_ca=tls.ca)
    app = create_app(settings)
    ensure_trust(app)
    with app.state.ctx.db.session() as s:
        admin = bootstrap_admin(s, "root", 3600).token
    cert, key = (tls.cert, tls.key) if tls else (None, None)
    with serve(app, cert, key) as url:
        verify: ssl.SSLContext | bool = (
            ssl.create_default_context(cafile=str(tls.ca)) if tls else True
        )
        with httpx.Client(
            base_url=url, headers={"Authorization": f"Bearer {admin}"}, verify=verify
        ) as ops:
            yield World(app, url, ops, tls)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    yield from _world(tmp_path, None)


@pytest.fixture
def tls_world(tmp_path: Path) -> Iterator[World]:
    yield from _world(tmp_path, write_tls_files(tmp_path / "tls"))


def _wait(what: str, check: Callable[[], bool], timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


# --- TLS and the pinned CA --------------------------------------------------------------


def test_enrollment_pins_the_ca_its_token_names_and_every_request_verifies_it(
    tls_world: World, tmp_path: Path
) -> None:
    w = tls_world
    assert w.tls is not None
    token = w.token()
    assert token.count(".") == 3
    state = tmp_path / "device"
    enrolled = enroll_device(w.url, token, state, "edge-1", {})
    assert enrolled.pinned_ca and enrolled.state == "active"
    assert (state / CA_FILE).read_bytes() == w.tls.ca_bytes

    identity, key = load_identity(state)
    client = DeviceClient(identity.server_url, identity.device_id, key, state_dir=state)
    assert client.desired_state(None, 0) is not None  # over HTTPS, verified against the pin

    # The hardware profile names ONNX Runtime's execution providers.
    hardware = w.device(identity.device_id)["hardware"]
    assert "CPUExecutionProvider" in hardware["execution_providers"]
    assert {"architecture", "cpu_count", "memory_bytes", "os"} <= set(hardware)


def test_a_server_with_a_certificate_from_another_ca_is_refused(
    tls_world: World, tmp_path: Path
) -> None:
    from farpoint.server.app import create_app

    w = tls_world
    state = tmp_path / "device"
    enroll_device(w.url, w.token(), state, "edge-2", {})
    identity, key = load_identity(state)
    # Someone else's server (its CA is not the pinned one) on the device's path.
    impostor = write_tls_files(tmp_path / "impostor", "Impostor CA")
    app = create_app(dataclasses.replace(w.app.state.ctx.settings, home=tmp_path / "h2"))
    with serve(app, impostor.cert, impostor.key) as url:
        client = DeviceClient(url, identity.device_id, key, state_dir=state)
        with pytest.raises(LinkDown, match="CERTIFICATE_VERIFY_FAILED"):
            client.desired_state(None, 0)


def test_enrollment_refuses_a_ca_that_does_not_hash_to_the_tokens(
    tls_world: World, tmp_path: Path
) -> None:
    w = tls_world
    token = w.token()
    forged = token[:-64] + "0" * 64
    state = tmp_path / "device"
    with pytest.raises(InsecureServer, match="refusing to trust this server"):
        enroll_device(w.url, forged, state, "edge-3", {})
    assert not (state / "device.json").exists() and not (state / CA_FILE).exists()
    # nothing was spent: the genuine token still enrolls
    assert enroll_device(w.url, token, state, "edge-3", {}).pinned_ca


def test_plain_http_is_refused_off_loopback(tmp_path: Path) -> None:
    token = "fpe1.s." + "a" * 64
    for url in ("http://10.1.2.3:8750", "http://farpoint.example", "ftp://127.0.0.1"):
        with pytest.raises(InsecureServer):
            enroll_device(url, token, tmp_path / "s", "edge-4", {})
    assert not (tmp_path / "s").exists()


def test_a_token_pinning_a_ca_needs_https(world: World, tmp_path: Path) -> None:
    token = world.token() + "." + "b" * 64
    with pytest.raises(InsecureServer, match="https"):
        enroll_device(world.url, token, tmp_path / "s", "edge-5", {})


# --- key rotation -----------------------------------------------------------------------


def _enrolled(w: World, state: Path, name: str, **token: Any) -> DeviceClient:
    enroll_device(w.url, w.token(**token), state, name, {})
    identity, key = load_identity(state)
    return DeviceClient(identity.server_url, identity.device_id, key, state_dir=state)


def test_rotate_key_replaces_the_key_on_both_sides(world: World, tmp_path: Path) -> None:
    state = tmp_path / "device"
    running = _enrolled(world, state, "edge-6")  # the running agent's client
    old_key = load_identity(state)[1]
    answer = rotate_key(state)
    new_key = load_identity(state)[1]
    assert (
        answer["key_id"] == keys.key_id(new_key.public_key()) != keys.key_id(old_key.public_key())
    )
    assert world.device(running.device_id)["key_id"] == answer["key_id"]
    assert not (state / NEXT_KEY_FILE).exists()
    # the running client re-read the key file; a client still holding the old key is refused
    assert running.desired_state(None, 0) is not None
    stale = DeviceClient(world.url, running.device_id, old_key)
    with pytest.raises(ServerError) as refused:
        stale.desired_state(None, 0)
    assert refused.value.status == 401


def test_a_rotation_whose_answer_was_lost_is_finished_with_the_new_key(
    world: World, tmp_path: Path
) -> None:
    state = tmp_path / "device"
    client = _enrolled(world, state, "edge-7")
    old_key = load_identity(state)[1]
    new_key = keys.generate_private_key()
    (state / NEXT_KEY_FILE).write_bytes(keys.private_key_pem(new_key))
    old_id = keys.key_id(old_key.public_key())
    body = {
        "public_key_pem": keys.public_key_pem(new_key.public_key()).decode(),
        "old_key_id": old_id,
        "proof_b64": __import__("base64")
        .b64encode(sign_rotation(new_key, client.device_id, old_id))
        .decode(),
    }
    client.rotate_key(body, signing_key=old_key)  # the server applied it; the device was cut

    answer = resume_rotation(state)  # the old key is refused now: it asks with the new one
    assert answer is not None and answer["key_id"] == keys.key_id(new_key.public_key())
    assert load_identity(state)[1].private_numbers() == new_key.private_numbers()
    assert not (state / NEXT_KEY_FILE).exists()


def test_a_rotation_cut_before_the_server_heard_of_it_is_finished_later(
    world: World, tmp_path: Path
) -> None:
    state = tmp_path / "device"
    client = _enrolled(world, state, "edge-8")
    new_key = keys.generate_private_key()
    (state / NEXT_KEY_FILE).write_bytes(keys.private_key_pem(new_key))
    answer = rotate_key(state)  # finishes the interrupted rotation with the kept key
    assert answer["key_id"] == keys.key_id(new_key.public_key())
    assert world.device(client.device_id)["key_id"] == answer["key_id"]
    assert resume_rotation(state) is None


def test_the_agent_rotates_a_key_older_than_its_max_age(world: World, tmp_path: Path) -> None:
    import threading

    state = tmp_path / "device"
    client = _enrolled(world, state, "edge-9")
    before = world.device(client.device_id)["key_id"]
    young = KeyRotator(state, 30 * 86400, threading.Event())
    assert young.rotate_if_due() is None
    month_ago = time.time() - 31 * 86400
    os.utime(state / KEY_FILE, (month_ago, month_ago))
    rotated = young.rotate_if_due()
    assert rotated is not None and world.device(client.device_id)["key_id"] != before
    assert (state / KEY_FILE).stat().st_mode & 0o777 == 0o600


# --- approval, decommissioning and diagnostics with the agent loop -----------------------


def _agent(state: Path, **kwargs: Any) -> Any:
    from farpoint.agent.loop import Agent

    agent = Agent(state, poll_wait_s=1, heartbeat_s=0.5, **kwargs)
    agent.start()
    return agent


def test_a_pending_agent_waits_for_approval_then_syncs(
    world: World, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="farpoint.agent")
    state = tmp_path / "device"
    enrolled = enroll_device(world.url, world.token(requires_approval=True), state, "edge-10", {})
    assert enrolled.state == "pending"
    device_id = enrolled.identity.device_id
    agent = _agent(state)
    try:
        _wait(
            "the wait to be logged", lambda: "waiting for IT operations to approve" in caplog.text
        )
        # its heartbeats arrive meanwhile: IT operations see it before they decide
        _wait("a heartbeat", lambda: bool(world.device(device_id)["heartbeat"]))
        assert agent._etag is None
        r = world.ops.post(f"/api/v1/devices/{device_id}/approve")
        assert r.status_code == 200, r.text
        _wait("the first desired state", lambda: agent._etag is not None)
    finally:
        agent.close()


def test_a_decommissioned_agent_stops_syncing_and_keeps_serving(
    world: World, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="farpoint.agent")
    state = tmp_path / "device"
    enrolled = enroll_device(world.url, world.token(), state, "edge-11", {})
    device_id = enrolled.identity.device_id
    agent = _agent(state)
    try:
        _wait("the first desired state", lambda: agent._etag is not None)
        assert world.ops.post(f"/api/v1/devices/{device_id}/decommission").status_code == 200
        sync = next(t for t in agent._threads if t.name.endswith("sync"))
        _wait("the sync thread to end", lambda: not sync.is_alive())
        assert "stops syncing and reporting" in caplog.text
        beat = next(t for t in agent._threads if t.name.endswith("heartbeat"))
        _wait("the heartbeat thread to end", lambda: not beat.is_alive())
        health = f"http://127.0.0.1:{agent.port}/v1/health"
        with urllib.request.urlopen(health, timeout=5) as resp:
            assert resp.status == 200
        assert world.device(device_id)["state"] == "decommissioned"
    finally:
        agent.close()


def test_the_agent_answers_a_diagnostics_request_without_secrets(
    world: World, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from farpoint.agent import diagnostics

    caplog.set_level(logging.INFO, logger="farpoint.agent")
    state = tmp_path / "device"
    enrolled = enroll_device(world.url, world.token(), state, "edge-12", {})
    device_id = enrolled.identity.device_id
    diagnostics.install(logging.INFO)
    agent = _agent(state)
    try:
        _wait("the first desired state", lambda: agent._etag is not None)
        log = logging.getLogger("farpoint.agent.test")
        pem = keys.private_key_pem(keys.generate_private_key()).decode()
        log.info("enrolled with fpe1.SeCrEt.%s and %s", "a" * 64, pem)
        log.error("upstream said no", exc_info=ValueError("bad thing"))
        r = world.ops.post(f"/api/v1/devices/{device_id}/diagnostics")
        assert r.status_code == 201
        rid = r.json()["id"]

        def answered() -> bool:
            found = world.ops.get(f"/api/v1/devices/{device_id}/diagnostics").json()
            return any(d["id"] == rid and d["uploaded_at"] for d in found)

        _wait("the upload", answered)
        [shown] = world.ops.get(f"/api/v1/devices/{device_id}/diagnostics").json()
        bundle = shown["bundle"]
        text = json.dumps(bundle)
        assert "SeCrEt" not in text and "PRIVATE KEY" not in text
        assert any("fpe1.[redacted]" in line["message"] for line in bundle["logs"])
        assert any("[private key redacted]" in line["message"] for line in bundle["logs"])
        [error] = [e for e in bundle["errors"] if "upstream said no" in e["message"]]
        assert "ValueError: bad thing" in error["message"]
        assert bundle["agent"]["device_id"] == device_id
        assert shown["size_bytes"] <= 64 * 1024
    finally:
        agent.close()


def test_enroll_errors_name_the_problem(world: World, tmp_path: Path) -> None:
    with pytest.raises(EnrollError, match="malformed"):
        enroll_device(world.url, "fpe1.nothex", tmp_path / "s", "edge-13", {})
