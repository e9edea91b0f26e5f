"""Wakes long-polling devices when desired state may have changed, and pushes the news to
devices over MQTT when a broker is configured (`FARPOINT_MQTT_URL`)."""

from __future__ import annotations

import asyncio
import logging
import threading
import uuid
from collections.abc import Iterable
from typing import Any

from farpoint.core.push import Broker, all_topic, parse_broker_url, sync_topic

__all__ = ["MqttPush", "Notifier"]

log = logging.getLogger("farpoint.server.push")


class Notifier:
    """A generation counter with waiters, each waiting for all devices' changes or for one
    device's; each replica also re-checks on a timer (the long-poll's)."""

    def __init__(self) -> None:
        self._generation = 0
        self._waiters: dict[asyncio.Future[None], str | None] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self.push: MqttPush | None = None

    @property
    def waiting(self) -> int:
        """How many long-polls wait now."""
        return len(self._waiters)

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def start_push(self, mqtt_url: str) -> None:
        """Publish sync pushes to this broker from now on (no-op for an empty URL)."""
        if mqtt_url and self.push is None:
            self.push = MqttPush(parse_broker_url(mqtt_url))
            self.push.start()

    def close(self) -> None:
        if self.push is not None:
            self.push.stop()
            self.push = None

    def changed(self, device_ids: Iterable[str] | None = None) -> None:
        """Call from any thread after a commit that may change desired state: of the devices
        named, or of any device when none are named (a rollout, a fleet). Only the polls of
        the devices named wake."""
        named = None if device_ids is None else frozenset(device_ids)
        if self.push is not None:
            self.push.publish(None if named is None else sorted(named))
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        loop.call_soon_threadsafe(self._wake, named)

    def _wake(self, device_ids: frozenset[str] | None = None) -> None:
        self._generation += 1
        woken = [
            fut
            for fut, device in self._waiters.items()
            if device_ids is None or device is None or device in device_ids
        ]
        for fut in woken:
            if not fut.done():
                fut.set_result(None)
            del self._waiters[fut]

    async def wait(self, timeout: float, device_id: str | None = None) -> None:
        """Return when something changed (for `device_id`, if given) or after `timeout`
        seconds."""
        self._loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = self._loop.create_future()
        self._waiters[fut] = device_id
        try:
            await asyncio.wait_for(asyncio.shield(fut), timeout)
        except TimeoutError:
            pass
        finally:
            self._waiters.pop(fut, None)


class MqttPush:
    """Publishes empty "sync now" messages from a thread of its own.

    Requests coalesce: what piles up while a batch goes out leaves as one next batch, and a
    broadcast (`farpoint/devices/all/sync`) replaces per-device messages in the same batch.
    A broker that is down costs nothing but a warning: long polls still deliver every
    change, pushes only make it sooner.
    """

    MAX_DEVICES_PER_BATCH = 1000
    """More devices than this in one batch go out as one broadcast."""

    def __init__(self, broker: Broker, client_id: str | None = None) -> None:
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        self.broker = broker
        self._mqtt: Any = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=client_id or f"farpoint-server-{uuid.uuid4().hex[:12]}",
            protocol=mqtt.MQTTv311,
        )
        if broker.username:
            self._mqtt.username_pw_set(broker.username, broker.password)
        if broker.tls:
            self._mqtt.tls_set()
        self._mqtt.reconnect_delay_set(min_delay=1, max_delay=30)
        self._mqtt.on_connect = self._on_connect
        self._mqtt.on_disconnect = self._on_disconnect
        self._cond = threading.Condition()
        self._all = False
        self._devices: set[str] = set()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self.connected = threading.Event()
        self.published = 0
        """Messages handed to the broker connection (for tests and metrics)."""

    def _on_connect(self, _c: Any, _u: Any, _flags: Any, reason: Any, _p: Any) -> None:
        if getattr(reason, "is_failure", False):
            log.warning("MQTT broker %s refused the connection: %s", self.broker, reason)
            return
        log.info("publishing sync pushes to %s", self.broker)
        self.connected.set()

    def _on_disconnect(self, _c: Any, _u: Any, _flags: Any, reason: Any, _p: Any) -> None:
        self.connected.clear()
        if not self._stopping:
            log.warning("MQTT broker %s disconnected (%s); reconnecting", self.broker, reason)

    def start(self) -> None:
        self._mqtt.connect_async(self.broker.host, self.broker.port, keepalive=30)
        self._mqtt.loop_start()
        self._thread = threading.Thread(target=self._run, name="farpoint-mqtt-push", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._mqtt.disconnect()
        self._mqtt.loop_stop()

    def publish(self, device_ids: list[str] | None) -> None:
        """Queue a push for these devices (None: every device); returns at once."""
        with self._cond:
            if device_ids is None:
                self._all = True
            else:
                self._devices.update(device_ids)
            self._cond.notify_all()

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._stopping or self._all or bool(self._devices))
                if self._stopping:
                    return
                everyone, devices = self._all, self._devices
                self._all, self._devices = False, set()
            if everyone or len(devices) > self.MAX_DEVICES_PER_BATCH:
                topics = [all_topic(self.broker.prefix)]
            else:
                topics = [sync_topic(d, self.broker.prefix) for d in sorted(devices)]
            for topic in topics:
                info = self._mqtt.publish(topic, payload=b"", qos=1)
                if info.rc != 0:
                    log.debug("push on %s not sent (rc %s): broker unreachable", topic, info.rc)
                else:
                    self.published += 1
