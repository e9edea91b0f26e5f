"""Device identity and channels with real processes: `farpoint server` over HTTPS with a
pinned CA and approval of a real agent, and MQTT pushes that bring a rollout to an agent
that barely polls."""

from __future__ import annotations

import json
import os
import ssl
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from identity_world import env_for as _env
from identity_world import prepare as _prepare
from identity_world import release_of

from farpoint.examples.processes import (
    Child,
    farpoint_command,
    start_agent,
    start_server,
    stop_all,
    wait_for_file,
)
from tls_certs import TlsFiles, write_tls_files

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]
MQTT_URL = os.environ.get("FARPOINT_TEST_MQTT_URL", "")


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        farpoint_command(*args),
        env=env or _env(Path("/nonexistent")),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _wait(what: str, check: Callable[[], bool], child: Child, timeout_s: float = 60.0) -> float:
    started = time.monotonic()
    while not check():
        if child.proc.poll() is not None:
            raise AssertionError(f"{child.name} exited while waiting for {what}:\n{child.tail(40)}")
        if time.monotonic() - started > timeout_s:
            raise AssertionError(f"timed out waiting for {what}:\n{child.tail(40)}")
        time.sleep(0.05)
    return time.monotonic() - started


@pytest.fixture
def children() -> Iterator[list[Child]]:
    started: list[Child] = []
    yield started
    stop_all(started)


# --- HTTPS with a pinned CA, approval, diagnostics --------------------------------------


def test_a_real_agent_pins_the_servers_ca_waits_for_approval_and_answers_diagnostics(
    tmp_path: Path, children: list[Child]
) -> None:
    home = tmp_path / "server"
    tls: TlsFiles = write_tls_files(tmp_path / "tls")
    _app, admin = _prepare(home)
    env = _env(
        home,
        FARPOINT_TLS_CERT=str(tls.cert),
        FARPOINT_TLS_KEY=str(tls.key),
        FARPOINT_TLS_CA=str(tls.ca),
    )
    server, http_url = start_server(home, env, console=False)
    children.append(server)
    url = http_url.replace("http://", "https://")
    verify = ssl.create_default_context(cafile=str(tls.ca))
    ops = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {admin}"}, verify=verify)
    with pytest.raises(httpx.TransportError):  # it speaks TLS only
        httpx.get(f"{http_url}/api/v1/health", timeout=5)

    r = ops.post("/api/v1/enrollment-tokens", json={"requires_approval": True})
    assert r.status_code == 201, r.text
    token = r.json()["token"]
    state = tmp_path / "device"
    enrolled = _cli("agent", "enroll", "--server", url, "--token", token,
                    "--state-dir", str(state), "--name", "edge-1")  # fmt: skip
    assert enrolled.returncode == 0, enrolled.stderr
    device_id = enrolled.stdout.strip()
    assert "pinned the server's TLS CA" in enrolled.stderr
    assert f"farpoint device approve {device_id}" in enrolled.stderr
    assert (state / "tls-ca.pem").read_bytes() == tls.ca_bytes

    agent, _port = start_agent(state, poll_wait=20, heartbeat_s=1)
    children.append(agent)
    _wait("the agent to say it waits", lambda: "waiting for IT operations" in agent.tail(40), agent)
    assert ops.get("/api/v1/devices?state=pending").json()["items"][0]["id"] == device_id
    assert ops.post(f"/api/v1/devices/{device_id}/approve").status_code == 200
    rid = ops.post(f"/api/v1/devices/{device_id}/diagnostics").json()["id"]

    def uploaded() -> bool:
        found = ops.get(f"/api/v1/devices/{device_id}/diagnostics").json()
        return any(d["id"] == rid and d["uploaded_at"] for d in found)

    _wait("the diagnostics upload", uploaded, agent)
    [shown] = ops.get(f"/api/v1/devices/{device_id}/diagnostics").json()
    messages = " ".join(line["message"] for line in shown["bundle"]["logs"])
    assert "waiting for IT operations to approve" in messages  # its own log, as it was
    assert token.split(".")[1] not in json.dumps(shown)
    ops.close()


def test_the_server_refuses_to_start_with_unusable_tls_files(tmp_path: Path) -> None:
    tls = write_tls_files(tmp_path / "tls")
    other = write_tls_files(tmp_path / "other", "Another CA")
    missing = _cli("server", "--no-console", "--tls-cert", str(tmp_path / "nope.pem"),
                   "--tls-key", str(tls.key), env=_env(tmp_path / "h1"))  # fmt: skip
    assert missing.returncode == 2 and "cannot be read" in missing.stderr
    alone = _cli("server", "--no-console", "--tls-cert", str(tls.cert), env=_env(tmp_path / "h2"))
    assert alone.returncode == 2 and "FARPOINT_TLS_KEY" in alone.stderr
    other_ca = _env(tmp_path / "h3", FARPOINT_TLS_CA=str(other.ca))
    wrong_ca = _cli("server", "--no-console", "--tls-cert", str(tls.cert),
                    "--tls-key", str(tls.key), env=other_ca)  # fmt: skip
    assert wrong_ca.returncode == 2 and "was not issued by the CA" in wrong_ca.stderr


def test_the_console_behind_tls_reaches_its_own_api(tmp_path: Path, children: list[Child]) -> None:
    """The console calls the API at the server's socket address over HTTPS; it pins the
    served certificate (given here as options, not environment) to do so."""
    home = tmp_path / "server"
    tls = write_tls_files(tmp_path / "tls")
    _app, admin = _prepare(home)
    port_file = home / "server.port"
    log = home / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            farpoint_command("server", "--port", "0", "--port-file", str(port_file),
                             "--tls-cert", str(tls.cert), "--tls-key", str(tls.key)),
            env=_env(home, FARPOINT_TLS_CA=str(tls.ca)),
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,
        )  # fmt: skip
    server = Child("server", proc, log)
    children.append(server)
    port = wait_for_file(port_file, server, timeout=60)
    verify = ssl.create_default_context(cafile=str(tls.ca))
    url = f"https://127.0.0.1:{port}"
    _wait("the console", lambda: _answers(url, verify), server)
    r = httpx.get(f"{url}/console/login?token={admin}", verify=verify, timeout=30)
    assert r.status_code == 303, r.text[-2000:]  # signed in: the token checked over HTTPS
    assert r.headers["location"].startswith("/console/")
    assert httpx.get(f"{url}/api/v1/tls/ca.pem", verify=verify, timeout=30).content == tls.ca_bytes


def _answers(url: str, verify: ssl.SSLContext) -> bool:
    try:
        return httpx.get(f"{url}/api/v1/health", verify=verify, timeout=2).status_code == 200
    except httpx.TransportError:
        return False


# --- MQTT push ----------------------------------------------------------------------------


@pytest.mark.xdist_group("mqtt")
@pytest.mark.skipif(not MQTT_URL, reason="FARPOINT_TEST_MQTT_URL is not set; no broker")
def test_a_push_brings_a_rollout_to_an_agent_that_barely_polls(
    tmp_path: Path, children: list[Child]
) -> None:
    home = tmp_path / "server"
    app, admin = _prepare(home)
    release = release_of(app)
    broker = f"{MQTT_URL.rstrip('/')}/e2e-{uuid.uuid4().hex[:12]}"  # topics of its own
    server, url = start_server(home, _env(home, FARPOINT_MQTT_URL=broker), console=False)
    children.append(server)
    ops = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {admin}"}, timeout=30)
    token = ops.post("/api/v1/enrollment-tokens", json={}).json()["token"]
    state = tmp_path / "device"
    enrolled = _cli("agent", "enroll", "--server", url, "--token", token,
                    "--state-dir", str(state), "--name", "edge-push")  # fmt: skip
    assert enrolled.returncode == 0, enrolled.stderr
    device_id = enrolled.stdout.strip()

    # No long poll, and a poll every 10 minutes at most: only a push can make it sooner.
    agent, _port = start_agent(
        state,
        poll_wait=0,
        heartbeat_s=600,
        extra_args=["--poll-interval", "600", "--mqtt-url", broker, "--log-level", "DEBUG"],
    )
    children.append(agent)
    _wait("the push listener", lambda: "listening for sync pushes" in agent.tail(200), agent)
    _wait("the first sync", lambda: "sync refused" in agent.tail(200), agent)

    assert ops.post("/api/v1/fleets", json={"name": "all"}).status_code == 201
    started = time.monotonic()
    r = ops.post("/api/v1/rollouts", json={"fleet": "all", "release_id": release.id})
    assert r.status_code == 201, r.text

    def reported() -> bool:
        models = ops.get(f"/api/v1/devices/{device_id}").json()["models"]
        return any(m["release_id"] == release.id for m in models)

    _wait("the device to report on the rolled-out release", reported, agent, timeout_s=60)
    elapsed = time.monotonic() - started
    print(f"rollout reached the device {elapsed:.2f} s after it was created (push)")
    assert elapsed < 60  # its next poll was 10 minutes away
    prefix = broker.rsplit("/", 1)[1]
    assert f"sync push on {prefix}/devices/all/sync" in agent.tail(400)
    ops.close()
