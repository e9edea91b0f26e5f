"""The audit chain: recording changes, appending entries, signing checkpoints of the head.

Routes call `record(...)` before they commit. The entry is appended inside that commit
(a `before_commit` hook on the request's session), so a change and its entry are one
transaction, and the chain lock is the LAST lock any transaction takes and is held only
for its commit: an append can never wait on a row a waiting appender holds (no deadlock),
and appends queue on one row instead of forking (see `repository.lock_chain`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session

from farpoint.core import audit_chain, dsse, keys
from farpoint.core.digest import is_digest
from farpoint.core.errors import Conflict
from farpoint.server.audit import repository as repo
from farpoint.server.audit.tables import AuditCheckpoint, AuditEvent
from farpoint.server.context import AppContext
from farpoint.server.devices import repository as devices_repo
from farpoint.server.releases import repository as releases_repo
from farpoint.wire.audit import AuditCheckpointOut, AuditEntryOut
from farpoint.wire.devices import DeviceStatusReport

__all__ = [
    "append",
    "checkpoint_now",
    "checkpoint_out",
    "digest_of",
    "entry_out",
    "record",
    "record_enrollment",
    "record_phase_changes",
    "release_digest",
]

"""Sign the head on append when the last checkpoint is at least this old (seconds)."""
_STAGED = "farpoint.audit.staged"


@dataclass(frozen=True)
class _Staged:
    ctx: AppContext
    actor: str
    action: str
    subject: str
    digests: dict[str, str]


def digest_of(value: Any) -> str:
    """`sha256:` of a text's UTF-8 bytes, or of anything else as canonical JSON: for
    changes that create no blob (a policy's YAML, column roles)."""
    if isinstance(value, str):
        data = value.encode()
    else:
        data = json.dumps(value, sort_keys=True, separators=(",", ":")).encode()
    return "sha256:" + hashlib.sha256(data).hexdigest()


def release_digest(s: Session, release_id: int) -> str:
    """The manifest digest of a release, to name it in an entry by content."""
    release = releases_repo.release_by_id(s, release_id)
    if release is None:
        raise ValueError(f"release {release_id} does not exist")
    return release.manifest_digest


def record(
    s: Session, ctx: AppContext, actor: str, action: str, subject: str, /, **digests: str
) -> None:
    """Audit a change made in `s`: appended to the chain when `s` commits, in that commit."""
    bad = {name: d for name, d in digests.items() if not is_digest(d)}
    if bad:
        raise ValueError(f"audit digests must be sha256:<hex> content addresses, got {bad}")
    staged: list[_Staged] | None = s.info.get(_STAGED)
    if staged is None:
        staged = s.info[_STAGED] = []
        event.listen(s, "before_commit", _append_staged)
    staged.append(_Staged(ctx, actor, action, subject, dict(digests)))


def _append_staged(s: Session) -> None:
    staged: list[_Staged] = s.info.get(_STAGED) or []
    while staged:
        item = staged.pop(0)
        append(s, item.ctx, item.actor, item.action, item.subject, item.digests)


def record_enrollment(s: Session, ctx: AppContext, device_id: str) -> None:
    """Audit an enrollment: the actor is the enrollment token, the digest the device's key."""
    device = devices_repo.device_by_id(s, device_id)
    assert device is not None, "record_enrollment runs after the device is added"
    actor = f"enroll:{device.enrollment_token_id}"
    record(s, ctx, actor, "device.enroll", f"device/{device_id}", key=device.key_id)


def record_phase_changes(
    s: Session, ctx: AppContext, device_id: str, report: DeviceStatusReport
) -> None:
    """Audit the models whose phase or release this report changes; call it BEFORE storing
    the report (it compares with what is stored). Heartbeats alone are not audited."""
    for m in report.models:
        was = devices_repo.model_state(s, device_id, m.model)
        if was is not None and was.phase == m.phase and was.release_id == m.release_id:
            continue
        release = releases_repo.release_by_id(s, m.release_id) if m.release_id else None
        digests = {"manifest": release.manifest_digest} if release is not None else {}
        subject = f"device/{device_id}/{m.model}={m.phase}"
        record(s, ctx, f"device:{device_id}", "device.phase", subject, **digests)


def _now(ctx: AppContext) -> datetime:
    return datetime.fromtimestamp(ctx.clock(), UTC)


def _interval_s(ctx: AppContext) -> float:
    return float(ctx.settings.audit_checkpoint_interval_s)


def append(
    s: Session,
    ctx: AppContext,
    actor: str,
    action: str,
    subject: str,
    digests: Mapping[str, str],
) -> AuditEvent:
    """Lock the chain, read its head, add the next entry; sign the head when it is due."""
    repo.lock_chain(s)  # first: the head read below cannot change until we commit
    head = repo.head(s)
    seq = head.seq + 1 if head is not None else 1
    prev = head.hash if head is not None else audit_chain.GENESIS
    at = _now(ctx)
    digests = dict(digests)
    row = AuditEvent(
        seq=seq,
        at=at,
        actor=actor,
        action=action,
        subject=subject,
        digests=digests,
        prev_hash=prev,
        hash=audit_chain.entry_hash(
            seq=seq, at=at, actor=actor, action=action, subject=subject, digests=digests, prev=prev
        ),
    )
    repo.add_event(s, row)
    s.flush()
    last = repo.last_checkpoint(s)
    if last is None or (at - last.at).total_seconds() >= _interval_s(ctx):
        _sign_head(s, row, ctx.signing_key, at)
    return row


def _sign_head(s: Session, head: AuditEvent, key: keys.PrivateKey, at: datetime) -> AuditCheckpoint:
    payload = audit_chain.checkpoint_payload(head.seq, head.hash, at)
    row = AuditCheckpoint(
        seq=head.seq,
        hash=head.hash,
        at=at,
        key_id=keys.key_id(key.public_key()),
        envelope=dsse.sign_envelope(payload, audit_chain.CHECKPOINT_TYPE, key),
    )
    repo.add_checkpoint(s, row)
    s.flush()
    return row


def checkpoint_now(s: Session, ctx: AppContext) -> AuditCheckpointOut:
    """A checkpoint of the current head: a new one, or the latest if it already covers it."""
    repo.lock_chain(s)
    head = repo.head(s)
    if head is None:
        raise Conflict("the audit log is empty; there is no head to checkpoint yet")
    last = repo.last_checkpoint(s)
    if last is not None and last.seq == head.seq:
        return checkpoint_out(last)
    return checkpoint_out(_sign_head(s, head, ctx.signing_key, _now(ctx)))


def entry_out(row: AuditEvent) -> AuditEntryOut:
    return AuditEntryOut.model_validate(row)


def checkpoint_out(row: AuditCheckpoint) -> AuditCheckpointOut:
    return AuditCheckpointOut.model_validate(row)
