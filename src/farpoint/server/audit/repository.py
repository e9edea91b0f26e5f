"""All SQL for the audit chain and its checkpoints."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from farpoint.server.audit.tables import AuditChainLock, AuditCheckpoint, AuditEvent

_LOCK_ID = 1


def lock_chain(s: Session) -> None:
    """Take the chain's write lock until this transaction ends (see `AuditChainLock`)."""
    bump = (
        update(AuditChainLock)
        .where(AuditChainLock.id == _LOCK_ID)
        .values(appends=AuditChainLock.appends + 1)
        .execution_options(synchronize_session=False)
    )
    if s.execute(bump).rowcount:  # type: ignore[attr-defined]
        return
    # First append ever: create the row; of two racing creators, one inserts and the
    # other's insert waits for it, then does nothing. Both then lock the row as usual.
    insert = pg_insert if s.get_bind().dialect.name == "postgresql" else sqlite_insert
    s.execute(
        insert(AuditChainLock)
        .values(id=_LOCK_ID, appends=0)
        .on_conflict_do_nothing(index_elements=["id"])
    )
    s.execute(bump)


def head(s: Session) -> AuditEvent | None:
    return s.scalars(select(AuditEvent).order_by(AuditEvent.seq.desc()).limit(1)).one_or_none()


def add_event(s: Session, row: AuditEvent) -> None:
    s.add(row)


def events(
    s: Session, cursor: int, limit: int, *, newest_first: bool = False
) -> Sequence[AuditEvent]:
    """A page of entries after `cursor` (before it when newest first; 0 means the end)."""
    q = select(AuditEvent)
    if newest_first:
        if cursor:
            q = q.where(AuditEvent.seq < cursor)
        q = q.order_by(AuditEvent.seq.desc())
    else:
        q = q.where(AuditEvent.seq > cursor).order_by(AuditEvent.seq)
    return s.scalars(q.limit(limit)).all()


def last_checkpoint(s: Session) -> AuditCheckpoint | None:
    q = select(AuditCheckpoint).order_by(AuditCheckpoint.seq.desc(), AuditCheckpoint.id.desc())
    return s.scalars(q.limit(1)).one_or_none()


def add_checkpoint(s: Session, row: AuditCheckpoint) -> None:
    s.add(row)


def checkpoints(s: Session, after_id: int, limit: int) -> Sequence[AuditCheckpoint]:
    q = select(AuditCheckpoint).where(AuditCheckpoint.id > after_id).order_by(AuditCheckpoint.id)
    return s.scalars(q.limit(limit)).all()
