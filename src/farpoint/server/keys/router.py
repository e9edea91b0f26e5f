"""HTTP routes for users' public signing keys."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Response

from farpoint.server.audit import service as audit
from farpoint.server.auth import Principal, Requires
from farpoint.server.deps import Ctx, DbSession
from farpoint.server.keys import service
from farpoint.server.pagination import Limit, decode_cursor, next_cursor
from farpoint.wire.common import Page
from farpoint.wire.trust import KeyCreate, KeyOut

router = APIRouter(tags=["keys"])
Anyone = Annotated[Principal, Depends(Requires())]


@router.post("/keys", status_code=201)
def register_key(body: KeyCreate, p: Anyone, s: DbSession, ctx: Ctx) -> KeyOut:
    out = service.register(s, p, body, datetime.fromtimestamp(ctx.clock(), UTC))
    audit.record(s, ctx, p.user, "key.register", f"key/{out.name}", key=out.key_id)
    s.commit()
    return out


@router.get("/keys")
def list_keys(
    p: Anyone,
    s: DbSession,
    user: str | None = None,
    limit: Limit = 100,
    cursor: str | None = None,
) -> Page[KeyOut]:
    rows = service.list_for(s, p, user, decode_cursor(cursor), limit)
    return Page(
        items=[service.key_out(s, r) for r in rows],
        next_cursor=next_cursor([r.id for r in rows], limit),
    )


@router.get("/keys/{key_id}")
def get_key(key_id: str, _p: Anyone, s: DbSession) -> KeyOut:
    return service.get(s, key_id)


@router.delete("/keys/{key_id}", status_code=204)
def revoke_key(key_id: str, p: Anyone, s: DbSession, ctx: Ctx) -> Response:
    service.revoke(s, p, key_id, datetime.fromtimestamp(ctx.clock(), UTC))
    audit.record(s, ctx, p.user, "key.revoke", f"key/{key_id}")
    s.commit()
    return Response(status_code=204)
