"""HTTP routes for the audit log: entries, checkpoints, and the key that signs them."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends

from farpoint.core import keys
from farpoint.server.audit import repository as repo
from farpoint.server.audit import service
from farpoint.server.auth import Principal, Requires
from farpoint.server.deps import Ctx, DbSession
from farpoint.server.pagination import Limit, decode_cursor, next_cursor
from farpoint.wire.audit import AuditCheckpointOut, AuditEntryOut, AuditKeyOut
from farpoint.wire.common import Page, Role

router = APIRouter(tags=["audit"])
Admin = Annotated[Principal, Depends(Requires(Role.ADMIN))]
Reader = Annotated[Principal, Depends(Requires(Role.BUSINESS))]
"""Compliance reads the log (admin always passes)."""


@router.get("/audit")
def list_entries(
    _p: Reader,
    s: DbSession,
    limit: Limit = 100,
    cursor: str | None = None,
    order: Literal["asc", "desc"] = "asc",
) -> Page[AuditEntryOut]:
    """Entries by seq; the cursor is the last seq of the previous page."""
    rows = repo.events(s, decode_cursor(cursor), limit, newest_first=order == "desc")
    return Page(
        items=[service.entry_out(r) for r in rows],
        next_cursor=next_cursor([r.seq for r in rows], limit),
    )


@router.get("/audit/checkpoints")
def list_checkpoints(
    _p: Reader, s: DbSession, limit: Limit = 100, cursor: str | None = None
) -> Page[AuditCheckpointOut]:
    rows = repo.checkpoints(s, decode_cursor(cursor), limit)
    return Page(
        items=[service.checkpoint_out(r) for r in rows],
        next_cursor=next_cursor([r.id for r in rows], limit),
    )


@router.post("/audit/checkpoints")
def create_checkpoint(_p: Admin, s: DbSession, ctx: Ctx) -> AuditCheckpointOut:
    """Sign the current head now (answers the latest checkpoint if it already covers it)."""
    out = service.checkpoint_now(s, ctx)
    s.commit()
    return out


@router.get("/audit/key")
def signing_key(_p: Reader, ctx: Ctx) -> AuditKeyOut:
    """The public key checkpoints are signed with; pin its id (`audit verify --key-id`)."""
    public = ctx.signing_key.public_key()
    return AuditKeyOut(
        key_id=keys.key_id(public), public_key_pem=keys.public_key_pem(public).decode()
    )
