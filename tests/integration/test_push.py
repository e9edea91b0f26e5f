"""The server publishes "sync now" pushes to a real MQTT broker (FARPOINT_TEST_MQTT_URL):
per device for a device's own changes, one broadcast for fleet-wide ones."""

from __future__ import annotations

import dataclasses
import os
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from release_fixtures import enroll_device, enrollment_token, make_release

from conftest import bearer
from farpoint.core.push import all_topic, parse_broker_url, sync_topic

MQTT_URL = os.environ.get("FARPOINT_TEST_MQTT_URL", "")
pytestmark = [
    pytest.mark.timeout(60),
    pytest.mark.skipif(not MQTT_URL, reason="FARPOINT_TEST_MQTT_URL is not set; no broker"),
]


class Subscriber:
    """Records every message on <prefix>/devices/# (a real paho client)."""

    def __init__(self, url: str) -> None:
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        broker = parse_broker_url(url)
        self.messages: list[tuple[str, bytes]] = []
        self._cond = threading.Condition()
        self._subscribed = threading.Event()
        self._client: Any = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2)
        topics = f"{broker.prefix}/devices/#"
        self._client.on_connect = lambda c, *_: c.subscribe(topics, qos=1)
        self._client.on_subscribe = lambda *_: self._subscribed.set()
        self._client.on_message = self._on_message
        self._client.connect(broker.host, broker.port)
        self._client.loop_start()
        assert self._subscribed.wait(10), "could not subscribe to the test broker"

    def _on_message(self, _c: Any, _u: Any, message: Any) -> None:
        with self._cond:
            self.messages.append((message.topic, bytes(message.payload)))
            self._cond.notify_all()

    def wait_for(self, topic: str, timeout_s: float = 10.0) -> bytes:
        with self._cond:
            ok = self._cond.wait_for(
                lambda: any(t == topic for t, _ in self.messages), timeout=timeout_s
            )
            assert ok, f"no message on {topic}; got {self.messages}"
            return next(p for t, p in self.messages if t == topic)

    def topics(self) -> list[str]:
        with self._cond:
            return [t for t, _ in self.messages]

    def clear(self) -> None:
        with self._cond:
            self.messages.clear()

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()


@pytest.fixture
def broker_url() -> str:
    """The shared test broker under a topic prefix of this test's own: tests running at the
    same time (other workers, other checkouts) never see each other's pushes."""
    return f"{MQTT_URL.rstrip('/')}/t-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def prefix(broker_url: str) -> str:
    return parse_broker_url(broker_url).prefix


@pytest.fixture
def subscriber(broker_url: str) -> Iterator[Subscriber]:
    sub = Subscriber(broker_url)
    yield sub
    sub.close()


@pytest.fixture
def settings(settings, broker_url):  # type: ignore[no-untyped-def]
    """The suite's settings with the test broker configured."""
    return dataclasses.replace(settings, mqtt_url=broker_url)


def test_changes_to_one_device_push_to_its_topic_and_rollouts_broadcast(
    app, api, token_for, subscriber: Subscriber, prefix: str
) -> None:
    push = app.state.ctx.notifier.push
    assert push is not None and push.connected.wait(10)
    ops, mlops = token_for("it-ops"), token_for("mlops-engineer")
    pending = api.post(
        "/api/v1/devices/enroll",
        json={
            "token": enrollment_token(api, ops, requires_approval=True)["token"],
            "name": "bed-1",
            "public_key_pem": _pem(),
        },
    ).json()
    other = enroll_device(app, api, ops, "bed-2")

    assert api.post(f"/api/v1/devices/{pending['device_id']}/approve", headers=bearer(ops))
    assert subscriber.wait_for(sync_topic(pending["device_id"], prefix)) == b""  # a nudge
    api.post(f"/api/v1/devices/{other.id}/diagnostics", headers=bearer(ops))
    subscriber.wait_for(sync_topic(other.id, prefix))
    assert all_topic(prefix) not in subscriber.topics()

    subscriber.clear()
    release = make_release(app)
    api.post("/api/v1/fleets", json={"name": "all"}, headers=bearer(mlops))
    r = api.post(
        "/api/v1/rollouts", json={"fleet": "all", "release_id": release.id}, headers=bearer(mlops)
    )
    assert r.status_code == 201
    assert subscriber.wait_for(all_topic(prefix)) == b""
    time.sleep(0.3)  # a broadcast replaces per-device messages: nothing else went out
    assert subscriber.topics() == [all_topic(prefix)]


def test_a_broker_that_is_down_does_not_stop_the_server(tmp_path, db_url) -> None:
    from fastapi.testclient import TestClient

    from farpoint.server.app import create_app
    from farpoint.server.settings import Settings

    settings = Settings(home=tmp_path / "h", database_url=db_url, mqtt_url="mqtt://127.0.0.1:9")
    app = create_app(settings)
    with TestClient(app) as client:
        app.state.ctx.notifier.changed(["some-device"])  # queued, never delivered, no error
        assert client.get("/api/v1/health").status_code == 200
        assert not app.state.ctx.notifier.push.connected.is_set()


def _pem() -> str:
    from farpoint.core import keys

    return keys.public_key_pem(keys.generate_private_key().public_key()).decode()
