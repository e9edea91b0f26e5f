"""The audit chain's rules: how an entry is encoded and hashed, and how a chain is verified.

Pure (stdlib and `farpoint.core` only) so a client verifies what the server sends without
the server's code. The rules, which any reimplementation must follow byte for byte:

* An entry's **canonical encoding** is the UTF-8 JSON object
  `{"action", "actor", "at", "digests", "prev", "seq", "subject"}` with keys sorted,
  no whitespace (`,` and `:` separators), non-ASCII escaped as `\\uXXXX`; `seq` is a
  decimal integer, `at` is UTC as `YYYY-MM-DDTHH:MM:SS.ffffffZ` (always six fraction
  digits), `digests` is an object of name → `sha256:<hex>`, `prev` is the previous
  entry's hash (entry 1: `sha256:` and 64 zeros).
* An entry's **hash** is `sha256:` + the hex SHA-256 of its canonical encoding.
* A **checkpoint** is a DSSE envelope of type `CHECKPOINT_TYPE` whose payload is the JSON
  `{"seq": N, "hash": "<hash of entry N>", "at": "<UTC time, as above>"}`, signed by the
  server's key. A chain shorter than a checkpoint's `seq` was truncated.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from farpoint.core import dsse, keys
from farpoint.core.errors import SignatureError

__all__ = [
    "CHECKPOINT_TYPE",
    "GENESIS",
    "Checkpoint",
    "Entry",
    "Remembered",
    "Verification",
    "canonical_entry",
    "checkpoint_payload",
    "entry_hash",
    "format_time",
    "verify",
]

CHECKPOINT_TYPE = "application/vnd.farpoint.audit-checkpoint+json"
GENESIS = "sha256:" + "0" * 64
"""The `prev` of entry 1."""


def format_time(moment: datetime) -> str:
    """`2025-03-01T14:05:09.123456Z`: the one spelling of a time the hashes use."""
    if moment.tzinfo is None:
        raise ValueError("audit times must be timezone-aware")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def canonical_entry(
    *,
    seq: int,
    at: datetime,
    actor: str,
    action: str,
    subject: str,
    digests: Mapping[str, str],
    prev: str,
) -> bytes:
    """The bytes an entry's hash is taken over (see the module docstring)."""
    document = {
        "seq": seq,
        "at": format_time(at),
        "actor": actor,
        "action": action,
        "subject": subject,
        "digests": dict(digests),
        "prev": prev,
    }
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()


def entry_hash(
    *,
    seq: int,
    at: datetime,
    actor: str,
    action: str,
    subject: str,
    digests: Mapping[str, str],
    prev: str,
) -> str:
    """`sha256:<hex>` of the canonical encoding."""
    data = canonical_entry(
        seq=seq, at=at, actor=actor, action=action, subject=subject, digests=digests, prev=prev
    )
    return "sha256:" + hashlib.sha256(data).hexdigest()


def checkpoint_payload(seq: int, head_hash: str, at: datetime) -> bytes:
    """The signed statement of a head: `{"seq", "hash", "at"}` as canonical JSON."""
    document = {"seq": seq, "hash": head_hash, "at": format_time(at)}
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()


@dataclass(frozen=True)
class Entry:
    """One audit entry as stored or served: its content, its link and its claimed hash."""

    seq: int
    at: datetime
    actor: str
    action: str
    subject: str
    digests: Mapping[str, str]
    prev_hash: str
    hash: str

    def recomputed(self, seq: int | None = None) -> str:
        """The hash this content has (at position `seq`, by default its own)."""
        return entry_hash(
            seq=self.seq if seq is None else seq,
            at=self.at,
            actor=self.actor,
            action=self.action,
            subject=self.subject,
            digests=self.digests,
            prev=self.prev_hash,
        )


@dataclass(frozen=True)
class Checkpoint:
    """A checkpoint as served: a label to name it by and its DSSE envelope."""

    id: int
    envelope: Mapping[str, Any]


@dataclass(frozen=True)
class Remembered:
    """The latest checkpoint a verifier saw verify, kept between runs."""

    key_id: str
    seq: int
    hash: str
    at: str
    verified_at: str


@dataclass
class Verification:
    """What `verify` found: `ok`, or the first `problem`, and what was covered."""

    entries: int = 0
    head_hash: str = GENESIS
    checkpoints: int = 0
    problem: str | None = None
    latest: Remembered | None = None
    """The checkpoint with the highest seq that verified (what to remember next time)."""
    unanchored: int = 0
    """Entries after the latest checkpoint: a cut there is invisible until the next one."""
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.problem is None


def _entry_problem(entries: Sequence[Entry]) -> str | None:
    """The first bad entry, in order: missing, edited, reordered, or unlinked."""
    positions = {e.seq for e in entries}
    expected, prev_hash = 1, GENESIS
    for entry in entries:
        if entry.seq != expected:
            if entry.seq > expected:
                before = "the start" if expected == 1 else str(expected - 1)
                return (
                    f"entry {expected} missing: seq jumps from {before} to {entry.seq} (deleted?)"
                )
            return f"entry {entry.seq} appears again after entry {expected - 1} (reordered?)"
        if entry.recomputed() != entry.hash:
            others = (s for s in sorted(positions) if s != entry.seq)
            moved = next((s for s in others if entry.recomputed(s) == entry.hash), None)
            if moved is not None:
                return f"entry {entry.seq}: holds the content of entry {moved} (reordered?)"
            return f"entry {entry.seq}: hash does not match its content (edited?)"
        if entry.prev_hash != prev_hash:
            if entry.seq == 1:
                return "entry 1: prev_hash is not the genesis value (entries before it removed?)"
            return (
                f"entry {entry.seq}: prev_hash does not link to entry {entry.seq - 1} "
                f"(reordered, or entry {entry.seq - 1} rewritten?)"
            )
        expected, prev_hash = expected + 1, entry.hash
    return None


def _open_checkpoint(
    cp: Checkpoint, key: keys.PublicKey, key_id: str
) -> tuple[int, str, str] | str:
    """`(seq, hash, at)` from a checkpoint whose signature verifies, or why it does not."""
    try:
        payload = dsse.verify_envelope(dict(cp.envelope), {key_id: key}, CHECKPOINT_TYPE)
    except SignatureError as exc:
        return f"checkpoint {cp.id}: {exc.detail} (server key {key_id}; forged?)"
    if (
        not isinstance(payload, dict)
        or not isinstance(payload.get("seq"), int)
        or not isinstance(payload.get("hash"), str)
        or not isinstance(payload.get("at"), str)
    ):
        return f"checkpoint {cp.id}: the signed payload is not a {{seq, hash, at}} statement"
    return payload["seq"], payload["hash"], payload["at"]


def verify(
    entries: Sequence[Entry],
    checkpoints: Sequence[Checkpoint],
    key: keys.PublicKey,
    remembered: Remembered | None = None,
    *,
    expected_key_id: str | None = None,
    now: datetime | None = None,
) -> Verification:
    """Check a whole chain (entries in seq order) against its checkpoints and past runs.

    The key must be `expected_key_id` when given. Entries come next (the first bad one is
    named), then checkpoints in seq order, then the checkpoint a previous run verified
    (`remembered`): the chain must still hold it.
    """
    key_id = keys.key_id(key)
    result = Verification(entries=len(entries))
    if expected_key_id is not None and key_id != expected_key_id:
        result.problem = (
            f"the server's audit key is {key_id}, not the expected {expected_key_id}; "
            "if it was rotated on purpose, confirm the new key id out of band and pass it "
            "with --key-id"
        )
        return result
    if entries:
        result.head_hash = entries[-1].hash
    result.problem = _entry_problem(entries)
    if result.problem is not None:
        return result
    head = entries[-1].seq if entries else 0
    by_seq = {e.seq: e.hash for e in entries}

    opened: list[tuple[int, str, str, int]] = []
    for cp in checkpoints:
        got = _open_checkpoint(cp, key, key_id)
        if isinstance(got, str):
            result.problem = got
            return result
        opened.append((*got, cp.id))
    for seq, signed_hash, _at, cp_id in sorted(opened):
        if seq > head:
            result.problem = f"chain ends at {head} but checkpoint {cp_id} covers {seq} (truncated)"
            return result
        if seq < 1 or by_seq[seq] != signed_hash:
            result.problem = (
                f"entry {seq}: hash differs from the one checkpoint {cp_id} signed "
                f"(entries up to {seq} rewritten?)"
            )
            return result
    result.checkpoints = len(opened)
    if opened:
        seq, signed_hash, at, _ = max(opened)
        stamp = format_time(now or datetime.now(UTC))
        result.latest = Remembered(key_id, seq, signed_hash, at, stamp)
        result.unanchored = head - seq
    else:
        result.unanchored = head

    if remembered is not None:
        if remembered.seq > head:
            result.problem = (
                f"chain ends at {head} but a checkpoint verified on {remembered.verified_at} "
                f"covered {remembered.seq} (truncated, and its checkpoints removed)"
            )
            return result
        if by_seq.get(remembered.seq) != remembered.hash:
            result.problem = (
                f"entry {remembered.seq}: hash differs from the checkpoint verified on "
                f"{remembered.verified_at} (rewritten?)"
            )
            return result
        if result.latest is None or result.latest.seq < remembered.seq:
            result.latest = remembered
            result.notes.append(
                f"the server holds no checkpoint at or past entry {remembered.seq}, "
                "which a previous run verified"
            )
    return result
