"""HTTP routes for users, teams and tokens."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Response

from farpoint.server.audit import service as audit
from farpoint.server.auth import Principal, Requires
from farpoint.server.deps import Ctx, DbSession
from farpoint.server.identity import repository as repo
from farpoint.server.identity import service
from farpoint.server.pagination import Limit, decode_cursor, next_cursor
from farpoint.wire.common import Page, Role
from farpoint.wire.identity import (
    Me,
    TeamCreate,
    TeamOut,
    TokenCreate,
    TokenCreated,
    TokenOut,
    UserCreate,
    UserOut,
)

router = APIRouter(tags=["identity"])
Admin = Annotated[Principal, Depends(Requires(Role.ADMIN))]
Anyone = Annotated[Principal, Depends(Requires())]


@router.get("/me")
def me(p: Anyone, s: DbSession) -> Me:
    return Me(
        user=p.user,
        kind=p.kind,
        roles=sorted(p.roles),
        teams=repo.teams_of(s, p.user_id),
        token_id=p.token_id,
        expires_at=p.expires_at,
    )


@router.post("/teams", status_code=201)
def create_team(body: TeamCreate, p: Admin, s: DbSession, ctx: Ctx) -> TeamOut:
    out = service.create_team(s, body.name)
    audit.record(s, ctx, p.user, "team.create", f"team/{out.name}")
    s.commit()
    return out


@router.get("/teams")
def list_teams(_p: Anyone, s: DbSession) -> Page[TeamOut]:
    return Page(items=[TeamOut.model_validate(t) for t in repo.list_teams(s)])


@router.post("/teams/{name}/members/{user}", status_code=204)
def add_member(name: str, user: str, p: Admin, s: DbSession, ctx: Ctx) -> Response:
    """Add a user to a team: datasets owned by the team become readable to them."""
    service.add_member(s, name, user)
    audit.record(s, ctx, p.user, "team.member.add", f"team/{name}/{user}")
    s.commit()
    return Response(status_code=204)


@router.post("/users", status_code=201)
def create_user(body: UserCreate, p: Admin, s: DbSession, ctx: Ctx) -> UserOut:
    out = service.create_user(s, body)
    audit.record(s, ctx, p.user, "user.create", f"user/{out.name}")
    s.commit()
    return out


@router.get("/users")
def list_users(_p: Admin, s: DbSession) -> Page[UserOut]:
    return Page(items=[service.user_out(s, u) for u in repo.list_users(s)])


@router.post("/tokens", status_code=201)
def create_token(body: TokenCreate, p: Admin, s: DbSession, ctx: Ctx) -> TokenCreated:
    out = service.create_token(s, body, datetime.fromtimestamp(ctx.clock(), UTC))
    audit.record(s, ctx, p.user, "token.create", f"token/{out.id}")
    s.commit()
    return out


@router.get("/tokens")
def list_tokens(
    _p: Admin, s: DbSession, limit: Limit = 100, cursor: str | None = None
) -> Page[TokenOut]:
    rows = repo.list_tokens(s, decode_cursor(cursor), limit)
    items = []
    for row in rows:
        user = repo.user_by_id(s, row.user_id)
        assert user is not None
        items.append(service.token_out(user, row))
    return Page(items=items, next_cursor=next_cursor([r.id for r in rows], limit))


@router.delete("/tokens/{token_id}", status_code=204)
def revoke_token(token_id: int, p: Anyone, s: DbSession, ctx: Ctx) -> Response:
    service.revoke_token(s, p, token_id, datetime.fromtimestamp(ctx.clock(), UTC))
    audit.record(s, ctx, p.user, "token.revoke", f"token/{token_id}")
    s.commit()
    return Response(status_code=204)
