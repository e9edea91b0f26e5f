"""SDK calls for the audit log, and its client-side verification."""

from __future__ import annotations

from typing import Any

from farpoint.core import audit_chain, keys
from farpoint.core.errors import SignatureError
from farpoint.sdk._http import _Base
from farpoint.wire.audit import AuditCheckpointOut, AuditEntryOut, AuditKeyOut

__all__ = ["AuditCalls"]


class AuditCalls(_Base):
    def audit_entries(
        self, limit: int | None = None, *, newest_first: bool = False
    ) -> list[AuditEntryOut]:
        """Audit entries by seq (admin, business): all of them, or the first `limit`."""
        if limit is None and not newest_first:
            return self._all(AuditEntryOut, "audit")
        order = "desc" if newest_first else "asc"
        items: list[AuditEntryOut] = []
        cursor: str | None = None
        while limit is None or len(items) < limit:
            want = self.page_size if limit is None else min(self.page_size, limit - len(items))
            query: dict[str, Any] = {"limit": want, "order": order}
            if cursor is not None:
                query["cursor"] = cursor
            page = self._json("GET", "audit", params=query)
            items.extend(AuditEntryOut.model_validate(item) for item in page["items"])
            cursor = page.get("next_cursor")
            if not cursor:
                break
        return items

    def audit_checkpoints(self) -> list[AuditCheckpointOut]:
        """Every signed checkpoint of the chain's head, oldest first."""
        return self._all(AuditCheckpointOut, "audit/checkpoints")

    def audit_key(self) -> AuditKeyOut:
        """The public key the server signs checkpoints with."""
        return self._one(AuditKeyOut, "GET", "audit/key")

    def create_audit_checkpoint(self) -> AuditCheckpointOut:
        """Have the server sign its current head now (admin)."""
        return self._one(AuditCheckpointOut, "POST", "audit/checkpoints")

    def verify_audit(
        self,
        key_id: str | None = None,
        remembered: audit_chain.Remembered | None = None,
    ) -> audit_chain.Verification:
        """Fetch the whole chain and verify it here, trusting nothing the server computed.

        `key_id` pins the server's key; `remembered` is a checkpoint an earlier run
        verified, which the chain must still contain.
        """
        served = self.audit_key()
        key = keys.load_public_key(served.public_key_pem)
        if keys.key_id(key) != served.key_id:
            raise SignatureError(
                f"the server names its audit key {served.key_id}, but the key it sent is "
                f"{keys.key_id(key)}"
            )
        # Checkpoints before entries: entries only grow, so every checkpoint fetched
        # covers entries that exist by the time they are fetched.
        checkpoints = [
            audit_chain.Checkpoint(id=c.id, envelope=c.envelope) for c in self.audit_checkpoints()
        ]
        entries = [
            audit_chain.Entry(
                seq=e.seq,
                at=e.at,
                actor=e.actor,
                action=e.action,
                subject=e.subject,
                digests=e.digests,
                prev_hash=e.prev_hash,
                hash=e.hash,
            )
            for e in self.audit_entries()
        ]
        if key_id is None and remembered is not None:
            key_id = remembered.key_id
        return audit_chain.verify(entries, checkpoints, key, remembered, expected_key_id=key_id)
