"""DSSE envelopes (the signing wrapper of in-toto attestations).

A release manifest is signed as a DSSE envelope today; the chain-of-trust work wraps
in-toto Statements the same way.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from farpoint.core import keys
from farpoint.core.errors import SignatureError

__all__ = ["MANIFEST_TYPE", "pae", "sign_envelope", "verify_envelope"]

MANIFEST_TYPE = "application/vnd.farpoint.release-manifest+json"


def pae(payload_type: str, payload: bytes) -> bytes:
    """Pre-authentication encoding, DSSE v1."""
    t = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(t), t, len(payload), payload)


def sign_envelope(payload: bytes, payload_type: str, key: keys.PrivateKey) -> dict[str, Any]:
    signature = keys.sign(key, pae(payload_type, payload))
    return {
        "payloadType": payload_type,
        "payload": base64.b64encode(payload).decode(),
        "signatures": [
            {"keyid": keys.key_id(key.public_key()), "sig": base64.b64encode(signature).decode()}
        ],
    }


def verify_envelope(
    envelope: dict[str, Any], trusted: dict[str, keys.PublicKey], payload_type: str
) -> Any:
    """Check the envelope against the trusted keys (by key id); return the decoded payload.

    Raises SignatureError when no signature by a trusted key verifies, or the type differs.
    """
    try:
        if envelope["payloadType"] != payload_type:
            raise SignatureError(
                f"envelope payload type is {envelope['payloadType']!r}, expected {payload_type!r}"
            )
        payload = base64.b64decode(envelope["payload"], validate=True)
        signatures = envelope["signatures"]
    except (KeyError, TypeError, ValueError) as exc:
        raise SignatureError(f"malformed DSSE envelope: {exc}") from exc
    message = pae(payload_type, payload)
    for entry in signatures:
        key = trusted.get(entry.get("keyid", ""))
        if key is None:
            continue
        try:
            sig = base64.b64decode(entry["sig"], validate=True)
        except (KeyError, ValueError):
            continue
        if keys.verify(key, message, sig):
            try:
                return json.loads(payload)
            except ValueError as exc:
                raise SignatureError(f"signed payload is not JSON: {exc}") from exc
    raise SignatureError("no signature on the envelope verifies with a trusted key")
