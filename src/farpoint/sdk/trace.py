"""SDK calls for `farpoint trace`: fetch a chain and verify every link here, not on the server."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from dataclasses import dataclass, field

from farpoint.core import dsse, keys
from farpoint.core.digest import digest_bytes
from farpoint.core.errors import FarpointError, SignatureError
from farpoint.sdk._http import segment
from farpoint.sdk.trust import TrustCalls
from farpoint.wire.trace import Trace, TraceLink

__all__ = ["LinkCheck", "TraceCalls", "walk"]


@dataclass
class LinkCheck:
    """What verifying one link found: each signed thing with its verdict."""

    link: TraceLink
    depth: int
    checks: list[tuple[str, bool, str]] = field(default_factory=list)
    """(what, verified, detail) for the link's own signature and each attestation."""

    @property
    def ok(self) -> bool:
        return all(ok for _, ok, _ in self.checks)


def walk(link: TraceLink, depth: int = 0) -> Iterator[tuple[TraceLink, int]]:
    yield link, depth
    for child in link.children:
        yield from walk(child, depth + 1)


class TraceCalls(TrustCalls):
    def trace_release(self, release_id: int) -> Trace:
        return self._one(Trace, "GET", f"trace/releases/{release_id}")

    def trace_device(self, device: str) -> Trace:
        """A device by id or name, and the chain of every release it runs."""
        return self._one(Trace, "GET", f"trace/devices/{segment(device)}")

    def verify_trace(self, trace: Trace, server_key_id: str | None = None) -> list[LinkCheck]:
        """Verify every signature in the chain with keys checked here.

        `server_key_id` pins the release-signing key; without it the key the server presents
        is used (and shown), which proves integrity but not who the server is.
        """
        server_key = keys.load_public_key(trace.server_public_key_pem)
        presented = keys.key_id(server_key)
        out = []
        for link, depth in walk(trace.root):
            check = LinkCheck(link, depth)
            if link.envelope is not None:
                check.checks.append(
                    self._check_manifest(link, server_key, presented, server_key_id)
                )
            for att in link.attestations:
                what = f"{att.predicate_type.rsplit('/', 2)[-2]} by {att.signer}"
                try:
                    statement = self.verify_attestation(att)
                    if link.digest and link.digest not in [s.digest for s in statement.subjects]:
                        raise SignatureError(f"the statement is not about {link.digest}")
                    check.checks.append((what, True, f"key {att.key_id[:19]}…"))
                except FarpointError as exc:
                    check.checks.append((what, False, exc.detail))
            out.append(check)
        return out

    @staticmethod
    def _check_manifest(
        link: TraceLink, key: keys.PublicKey, presented: str, pinned: str | None
    ) -> tuple[str, bool, str]:
        what = "manifest signed by the server key"
        if pinned and pinned != presented:
            return what, False, f"signed by {presented}, expected {pinned}"
        assert link.envelope is not None
        try:
            dsse.verify_envelope(link.envelope, {presented: key}, dsse.MANIFEST_TYPE)
            payload = base64.b64decode(link.envelope["payload"])
        except (FarpointError, KeyError, ValueError) as exc:
            return what, False, str(exc)
        if link.digest and digest_bytes(payload) != link.digest:
            return what, False, f"the signed manifest does not hash to {link.digest}"
        return what, True, f"key {presented[:19]}…"
