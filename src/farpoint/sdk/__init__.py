"""The Farpoint Python SDK: `Client` speaks the HTTP API and returns `farpoint.wire` models."""

from farpoint.sdk._http import ServerUnreachable
from farpoint.sdk.client import Client

__all__ = ["Client", "ServerUnreachable"]
