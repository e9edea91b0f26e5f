"""HTTP routes for releases."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends

from farpoint.core.errors import NotFound
from farpoint.server.audit import service as audit
from farpoint.server.auth import Principal, Requires
from farpoint.server.deps import Ctx, DbSession
from farpoint.server.pagination import Limit, decode_cursor, next_cursor
from farpoint.server.releases import repository as repo
from farpoint.server.releases import service
from farpoint.wire.common import Page, Role
from farpoint.wire.releases import ReleaseCreate, ReleaseOut

router = APIRouter(tags=["releases"])
Anyone = Annotated[Principal, Depends(Requires())]
Mlops = Annotated[Principal, Depends(Requires(Role.MLOPS_ENGINEER))]


@router.post("/releases", status_code=201)
def create_release(body: ReleaseCreate, p: Mlops, s: DbSession, ctx: Ctx) -> ReleaseOut:
    now = datetime.fromtimestamp(ctx.clock(), UTC)
    out = service.create_release(s, ctx.blobs, ctx.signing_key, body, p.user, now)
    audit.record(
        s,
        ctx,
        p.user,
        "release.create",
        f"release/{out.id}",
        model=out.model_digest,
        manifest=out.manifest_digest,
    )
    s.commit()
    return out


@router.get("/releases")
def list_releases(
    _p: Anyone, s: DbSession, limit: Limit = 100, cursor: str | None = None
) -> Page[ReleaseOut]:
    rows = repo.list_releases(s, decode_cursor(cursor), limit)
    return Page(
        items=[service.release_out(s, r) for r in rows],
        next_cursor=next_cursor([r.id for r in rows], limit),
    )


@router.get("/releases/{release_id}")
def get_release(release_id: int, _p: Anyone, s: DbSession) -> ReleaseOut:
    r = repo.release_by_id(s, release_id)
    if r is None:
        raise NotFound(f"release {release_id} does not exist")
    return service.release_out(s, r)
