"""Signing keys and attestations (in-toto Statements in DSSE envelopes)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from farpoint.wire.common import Name, WireModel

__all__ = [
    "MAX_ENVELOPE_BYTES",
    "AttestationCreate",
    "AttestationOut",
    "Envelope",
    "EnvelopeSignature",
    "KeyCreate",
    "KeyOut",
    "SubjectOut",
]

MAX_ENVELOPE_BYTES = 1 << 20
"""The largest attestation request the server reads (1 MiB)."""


class KeyCreate(WireModel):
    name: Name
    public_key_pem: str = Field(max_length=4096)
    """ECDSA P-256 public key, PEM SubjectPublicKeyInfo."""


class KeyOut(WireModel):
    key_id: str
    """`sha256:<hex>` of the DER public key: the `keyid` in DSSE signatures."""
    name: str
    user: str
    public_key_pem: str
    created_at: datetime
    revoked_at: datetime | None


class EnvelopeSignature(WireModel):
    keyid: str = Field(max_length=128)
    sig: str = Field(max_length=1024)


class Envelope(WireModel):
    """A DSSE envelope; `payload` is base64 of the signed bytes."""

    payloadType: str = Field(max_length=200)  # DSSE's own spelling
    payload: str
    signatures: list[EnvelopeSignature] = Field(min_length=1, max_length=16)


class AttestationCreate(WireModel):
    envelope: Envelope


class SubjectOut(WireModel):
    name: str
    digest: str


class AttestationOut(WireModel):
    id: int
    predicate_type: str
    subjects: list[SubjectOut]
    signer: str
    """The user whose registered key signed it."""
    key_id: str
    envelope: Envelope
    statement: dict[str, Any]
    created_at: datetime
