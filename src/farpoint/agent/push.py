"""The optional MQTT push channel: "sync now" nudges that wake the sync loop at once.

paho-mqtt (the `mqtt` extra) is imported only when `--mqtt-url` is given. A push carries
no data and is never trusted for anything but its timing; the loop still asks the server
for the desired state, and early wakes are rate-limited, so a flood of (forged) pushes
costs at most one sync per `min_interval_s`.
"""

from __future__ import annotations

import logging
import ssl
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from farpoint.core.push import Broker, all_topic, parse_broker_url, sync_topic

__all__ = ["PushListener", "PushUnavailable", "Waker"]

log = logging.getLogger("farpoint.agent.push")


class PushUnavailable(Exception):
    """`--mqtt-url` was given but paho-mqtt is not installed, or the URL is unusable."""


class Waker:
    """What the sync loop sleeps on: a timeout, a stop, or a push (rate-limited)."""

    def __init__(
        self,
        stop: threading.Event,
        min_interval_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._stop = stop
        self._event = threading.Event()
        self._min_interval_s = min_interval_s
        self._clock = clock
        self._last_wake: float | None = None
        self.wakes = 0
        """Pushes that ended a nap early (for tests and the log)."""

    def wake(self) -> None:
        """Called from any thread (the MQTT thread, `stop`)."""
        self._event.set()

    def nap(self, timeout_s: float) -> bool:
        """Sleep up to `timeout_s`; True when a push ended it early (or one came during the
        last sync). Never returns sooner than `min_interval_s` after the previous push."""
        if self._stop.is_set():
            return False
        woken = self._event.wait(max(0.0, timeout_s))
        if not woken or self._stop.is_set():
            return False
        self._event.clear()
        if self._last_wake is not None:
            spacing = self._last_wake + self._min_interval_s - self._clock()
            if spacing > 0 and self._stop.wait(spacing):
                return False
        self._last_wake = self._clock()
        self.wakes += 1
        return True


class PushListener:
    """Subscribes to this device's sync topic and the all-devices topic; reconnects on its
    own (paho's network thread) with a delay up to 30 s."""

    def __init__(
        self,
        url: str,
        device_id: str,
        on_push: Callable[[], None],
        ca_pem: bytes | None = None,
    ) -> None:
        try:
            import paho.mqtt.client as mqtt
            from paho.mqtt.enums import CallbackAPIVersion
        except ImportError as exc:
            raise PushUnavailable(
                "--mqtt-url needs paho-mqtt: pip install 'farpoint[mqtt]'"
            ) from exc
        try:
            self.broker: Broker = parse_broker_url(url)
        except ValueError as exc:
            raise PushUnavailable(str(exc)) from exc
        self.topics = (
            sync_topic(device_id, self.broker.prefix),
            all_topic(self.broker.prefix),
        )
        self._on_push = on_push
        self._client: Any = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=f"farpoint-agent-{device_id[:36]}-{uuid.uuid4().hex[:6]}",
            protocol=mqtt.MQTTv311,
        )
        if self.broker.username:
            self._client.username_pw_set(self.broker.username, self.broker.password)
        if self.broker.tls:
            context = ssl.create_default_context(
                cadata=ca_pem.decode("ascii", errors="replace") if ca_pem else None
            )
            self._client.tls_set_context(context)
        self._client.reconnect_delay_set(min_delay=1, max_delay=30)
        self._client.on_connect = self._on_connect
        self._client.on_message = self._on_message
        self._client.on_disconnect = self._on_disconnect
        self.connected = threading.Event()
        self.received = 0

    def _on_connect(self, client: Any, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if getattr(reason, "is_failure", False):
            log.warning("MQTT broker %s refused the connection: %s", self.broker, reason)
            return
        # Subscribing on every connect survives broker restarts (clean sessions).
        client.subscribe([(topic, 1) for topic in self.topics])
        log.info("listening for sync pushes on %s", self.broker)
        self.connected.set()
        # A change may have been published while we were away: sync once to catch up.
        self._on_push()

    def _on_disconnect(self, _c: Any, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if self.connected.is_set():
            log.warning("MQTT broker %s disconnected (%s); reconnecting", self.broker, reason)
        self.connected.clear()

    def _on_message(self, _c: Any, _u: Any, message: Any) -> None:
        self.received += 1
        log.debug("sync push on %s", message.topic)
        self._on_push()

    def start(self) -> None:
        self._client.connect_async(self.broker.host, self.broker.port, keepalive=60)
        self._client.loop_start()

    def stop(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()
