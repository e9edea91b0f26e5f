"""The audit log: hash-chained entries, signed checkpoints of its head, the key that signs them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from farpoint.wire.common import WireModel

__all__ = ["AuditCheckpointOut", "AuditEntryOut", "AuditKeyOut"]


class AuditEntryOut(WireModel):
    seq: int
    """Position in the chain: 1, 2, 3... with no gaps."""
    at: datetime
    actor: str
    """A user's name, `device:<id>`, or `enroll:<enrollment token id>`."""
    action: str
    """What happened, such as `dataset.version.create` or `token.revoke`."""
    subject: str
    """What it happened to, such as `vitals@2`, `release/3` or `device/<id>`."""
    digests: dict[str, str]
    """Name → `sha256:<hex>` of what the change created or refers to."""
    prev_hash: str
    hash: str
    """`sha256:` of the canonical encoding (`farpoint.core.audit_chain`)."""


class AuditCheckpointOut(WireModel):
    id: int
    seq: int
    hash: str
    at: datetime
    key_id: str
    envelope: dict[str, Any]
    """DSSE envelope of `{seq, hash, at}`, the statement a verifier trusts (not the fields)."""


class AuditKeyOut(WireModel):
    key_id: str
    public_key_pem: str
