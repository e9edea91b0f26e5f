"""HTTP routes for rollouts."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from farpoint.server.audit import service as audit
from farpoint.server.auth import Principal, Requires
from farpoint.server.deps import Ctx, DbSession
from farpoint.server.pagination import Limit, decode_cursor, next_cursor
from farpoint.server.rollouts import service
from farpoint.wire.common import Page, Role
from farpoint.wire.rollouts import RolloutCreate, RolloutOut, RolloutState, RolloutSummary

router = APIRouter(tags=["rollouts"])
Mlops = Annotated[Principal, Depends(Requires(Role.MLOPS_ENGINEER))]
Anyone = Annotated[Principal, Depends(Requires())]


def _now(clock_value: float) -> datetime:
    return datetime.fromtimestamp(clock_value, UTC)


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
    _p: Anyone,
    s: DbSession,
    limit: Limit = 100,
    cursor: str | None = None,
    fleet: str | None = None,
    state: Annotated[list[RolloutState] | None, Query()] = None,
) -> Page[RolloutSummary]:
    """Rollouts in creation order, without their device rows; filter by fleet and state."""
    items, ids = service.list_rollouts(s, decode_cursor(cursor), limit, fleet, state or ())
    return Page(items=items, next_cursor=next_cursor(ids, limit))


@router.get("/rollouts/{rollout_id}")
def get_rollout(rollout_id: int, _p: Anyone, s: DbSession) -> RolloutOut:
    return service.get_rollout(s, rollout_id)


@router.post("/rollouts/{rollout_id}/pause")
def pause_rollout(rollout_id: int, p: Mlops, s: DbSession, ctx: Ctx) -> RolloutOut:
    """Start no further batch until resumed (failures still stop the rollout)."""
    out = service.pause(s, rollout_id, p.user, _now(ctx.clock()))
    audit.record(s, ctx, p.user, "rollout.pause", f"rollout/{rollout_id}")
    s.commit()
    return out


@router.post("/rollouts/{rollout_id}/resume")
def resume_rollout(rollout_id: int, p: Mlops, s: DbSession, ctx: Ctx) -> RolloutOut:
    out, changed = service.resume(s, rollout_id, _now(ctx.clock()))
    audit.record(s, ctx, p.user, "rollout.resume", f"rollout/{rollout_id}")
    s.commit()
    if changed:
        ctx.notifier.changed()
    return out


@router.post("/rollouts/{rollout_id}/approve")
def approve_rollout(rollout_id: int, p: Mlops, s: DbSession, ctx: Ctx) -> RolloutOut:
    """Start the batch the rollout is waiting for approval of."""
    out = service.approve(s, rollout_id, _now(ctx.clock()))
    batch = out.current_batch
    audit.record(s, ctx, p.user, "rollout.approve", f"rollout/{rollout_id}/batch/{batch}")
    s.commit()
    ctx.notifier.changed()
    return out


@router.post("/rollouts/{rollout_id}/abort")
def abort_rollout(rollout_id: int, p: Mlops, s: DbSession, ctx: Ctx) -> RolloutOut:
    """End the rollout where it is; devices keep what they were assigned."""
    out = service.abort(s, rollout_id, p.user, _now(ctx.clock()))
    audit.record(s, ctx, p.user, "rollout.abort", f"rollout/{rollout_id}")
    s.commit()
    return out
