"""The MQTT push channel's contract, shared by the server (publisher) and the agent.

A push carries no data: it only says "sync now". The server publishes an empty message on
`<prefix>/devices/<device id>/sync` when one device's desired state may have changed, and
on `<prefix>/devices/all/sync` when a change may concern many (a rollout, a fleet): one
message the broker fans out, instead of one per device. The prefix is `farpoint` unless
the broker URL's path names another (`mqtt://broker:1883/site-a`), so several control
planes can share one broker. A forged push can only make a
device sync early (the agent rate-limits), never tell it what to run.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

__all__ = [
    "ALL_TOPIC",
    "DEFAULT_PREFIX",
    "Broker",
    "BrokerUrlError",
    "all_topic",
    "parse_broker_url",
    "sync_topic",
]

DEFAULT_PREFIX = "farpoint"
ALL_TOPIC = "farpoint/devices/all/sync"
_PREFIX = re.compile(r"^[A-Za-z0-9._-]{1,64}(/[A-Za-z0-9._-]{1,64}){0,3}$")


def all_topic(prefix: str = DEFAULT_PREFIX) -> str:
    return f"{prefix}/devices/all/sync"


def sync_topic(device_id: str, prefix: str = DEFAULT_PREFIX) -> str:
    if not device_id or any(c in device_id for c in "/+#\0"):
        raise ValueError(f"device id {device_id!r} cannot be part of an MQTT topic")
    return f"{prefix}/devices/{device_id}/sync"


class BrokerUrlError(ValueError):
    """The broker URL is not `mqtt://` or `mqtts://` with a host."""


@dataclass(frozen=True)
class Broker:
    host: str
    port: int
    tls: bool
    username: str | None = None
    password: str | None = None
    prefix: str = DEFAULT_PREFIX
    """The first levels of every topic (the URL's path)."""

    def __str__(self) -> str:  # never the password
        scheme = "mqtts" if self.tls else "mqtt"
        who = f"{self.username}@" if self.username else ""
        return f"{scheme}://{who}{self.host}:{self.port}/{self.prefix}"


def parse_broker_url(url: str) -> Broker:
    """`mqtt://[user[:password]@]host[:port][/prefix]` (1883) or `mqtts://...` (TLS, 8883)."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("mqtt", "mqtts"):
        raise BrokerUrlError(
            f"broker URL must start with mqtt:// or mqtts://, got {parts.scheme or 'none'}://"
        )
    try:
        port = parts.port
    except ValueError as exc:
        raise BrokerUrlError(f"broker URL has a bad port: {exc}") from exc
    if not parts.hostname:
        raise BrokerUrlError("broker URL names no host, e.g. mqtt://127.0.0.1:1883")
    if parts.query or parts.fragment:
        raise BrokerUrlError("broker URL takes no query: mqtt://host:port[/topic prefix]")
    prefix = parts.path.strip("/") or DEFAULT_PREFIX
    if not _PREFIX.match(prefix):
        raise BrokerUrlError(
            f"broker URL's topic prefix {prefix!r} must be 1 to 4 levels of letters, digits, "
            "'.', '_' or '-'"
        )
    tls = parts.scheme == "mqtts"
    return Broker(
        host=parts.hostname,
        port=port or (8883 if tls else 1883),
        tls=tls,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        prefix=prefix,
    )
