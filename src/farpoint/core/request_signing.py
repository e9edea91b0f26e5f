"""Signed device requests: every request a device makes is signed with its own key.

The signature covers the method, the path with its query, a timestamp, the device id and
the SHA-256 of the body, so a captured request cannot be replayed elsewhere or later than
the allowed clock skew, and no shared secret exists to steal from the server.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping
from typing import TYPE_CHECKING

from farpoint.core import keys
from farpoint.core.errors import SignatureError, Unauthorized

if TYPE_CHECKING:
    from farpoint.core.light_key import LightPrivateKey

__all__ = [
    "HEADER_DEVICE",
    "HEADER_SIGNATURE",
    "HEADER_TIMESTAMP",
    "MAX_SKEW_S",
    "canonical_request",
    "sign_request",
    "verify_request",
]

HEADER_DEVICE = "X-Farpoint-Device"
HEADER_TIMESTAMP = "X-Farpoint-Timestamp"
HEADER_SIGNATURE = "X-Farpoint-Signature"
MAX_SKEW_S = 300


def canonical_request(
    method: str, path_and_query: str, device_id: str, timestamp: int, body: bytes
) -> bytes:
    body_hash = hashlib.sha256(body).hexdigest()
    return "\n".join(
        ["farpoint-device-v1", method.upper(), path_and_query, device_id, str(timestamp), body_hash]
    ).encode()


def sign_request(
    key: keys.PrivateKey | LightPrivateKey,
    device_id: str,
    method: str,
    path_and_query: str,
    body: bytes,
    now: float,
) -> dict[str, str]:
    """The headers that authenticate one request."""
    ts = int(now)
    message = canonical_request(method, path_and_query, device_id, ts, body)
    return {
        HEADER_DEVICE: device_id,
        HEADER_TIMESTAMP: str(ts),
        HEADER_SIGNATURE: base64.b64encode(keys.sign(key, message)).decode(),
    }


def verify_request(
    headers: Mapping[str, str],
    method: str,
    path_and_query: str,
    body: bytes,
    public_key: keys.PublicKey,
    now: float,
    max_skew_s: int = MAX_SKEW_S,
) -> None:
    """Raise Unauthorized/SignatureError unless the headers sign this request, now."""
    device_id = headers.get(HEADER_DEVICE)
    ts_text = headers.get(HEADER_TIMESTAMP)
    sig_text = headers.get(HEADER_SIGNATURE)
    if not device_id or not ts_text or not sig_text:
        raise Unauthorized("device request is missing its signature headers")
    try:
        ts = int(ts_text)
        sig = base64.b64decode(sig_text, validate=True)
    except ValueError as exc:
        raise SignatureError("device request signature headers are malformed") from exc
    if abs(now - ts) > max_skew_s:
        raise SignatureError(
            f"device request timestamp is {int(now - ts)} s off the server clock "
            f"(allowed: {max_skew_s} s); check the device clock"
        )
    message = canonical_request(method, path_and_query, device_id, ts, body)
    if not keys.verify(public_key, message, sig):
        raise SignatureError("device request signature does not verify")
