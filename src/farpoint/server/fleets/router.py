"""HTTP routes for fleets and rollouts."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends

from farpoint.server.audit import service as audit
from farpoint.server.auth import Principal, Requires
from farpoint.server.deps import Ctx, DbSession
from farpoint.server.fleets import repository as repo
from farpoint.server.fleets import service
from farpoint.server.pagination import Limit, decode_cursor, next_cursor
from farpoint.wire.common import Page, Role
from farpoint.wire.devices import FleetCreate, FleetOut, RolloutCreate, RolloutOut

router = APIRouter(tags=["fleets"])
FleetEditor = Annotated[Principal, Depends(Requires(Role.IT_OPS, Role.MLOPS_ENGINEER))]
Mlops = Annotated[Principal, Depends(Requires(Role.MLOPS_ENGINEER))]
Anyone = Annotated[Principal, Depends(Requires())]


def _now(clock_value: float) -> datetime:
    return datetime.fromtimestamp(clock_value, UTC)


@router.post("/fleets", status_code=201)
def create_fleet(body: FleetCreate, p: FleetEditor, s: DbSession, ctx: Ctx) -> FleetOut:
    out = service.create_fleet(s, body, p.user, _now(ctx.clock()))
    audit.record(s, ctx, p.user, "fleet.create", f"fleet/{out.name}")
    s.commit()
    return out


@router.get("/fleets")
def list_fleets(_p: Anyone, s: DbSession) -> Page[FleetOut]:
    return Page(items=service.list_fleets(s))


@router.get("/fleets/{name}")
def get_fleet(name: str, _p: Anyone, s: DbSession) -> FleetOut:
    return service.get_fleet(s, name)


@router.post("/rollouts", status_code=201)
def create_rollout(body: RolloutCreate, p: Mlops, s: DbSession, ctx: Ctx) -> RolloutOut:
    out = service.create_rollout(s, body, p.user, _now(ctx.clock()))
    audit.record(
        s,
        ctx,
        p.user,
        "rollout.create",
        f"rollout/{out.id}",
        release=audit.release_digest(s, out.to_release_id),
    )
    s.commit()
    # After the commit, so a woken long-poll reads the new desired state.
    ctx.notifier.changed()
    return out


@router.get("/rollouts")
def list_rollouts(
    _p: Anyone, s: DbSession, limit: Limit = 100, cursor: str | None = None
) -> Page[RolloutOut]:
    rows = repo.list_rollouts(s, decode_cursor(cursor), limit)
    items = [service.rollout_out(s, r) for r in rows]
    return Page(items=items, next_cursor=next_cursor([r.id for r in rows], limit))


@router.get("/rollouts/{rollout_id}")
def get_rollout(rollout_id: int, _p: Anyone, s: DbSession) -> RolloutOut:
    return service.get_rollout(s, rollout_id)
