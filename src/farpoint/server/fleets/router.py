"""HTTP routes for fleets, their history, and why a device runs what it runs."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends

from farpoint.core.errors import ValidationFailed
from farpoint.server.audit import service as audit
from farpoint.server.auth import Principal, Requires
from farpoint.server.deps import Ctx, DbSession
from farpoint.server.fleets import history, service
from farpoint.wire.common import Page, Role
from farpoint.wire.devices import FleetCreate, FleetOut
from farpoint.wire.rollouts import DeviceDesiredState, FleetHistory

router = APIRouter(tags=["fleets"])
FleetEditor = Annotated[Principal, Depends(Requires(Role.IT_OPS, Role.MLOPS_ENGINEER))]
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


@router.get("/fleets/{name}/history")
def fleet_history(
    name: str, _p: Anyone, s: DbSession, ctx: Ctx, at: str | None = None
) -> FleetHistory:
    """What each device the fleet selects now was serving at `at` (ISO 8601; default now)."""
    when = _now(ctx.clock()) if at is None else _instant(at)
    return history.fleet_history(s, name, when)


_DECODED_PLUS = re.compile(r" (\d\d:?\d\d)$")


def _instant(text: str) -> datetime:
    # `?at=...T10:00+02:00` typed unencoded arrives with the '+' decoded to a space.
    text = _DECODED_PLUS.sub(r"+\1", text.strip())
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ValidationFailed(
            f"at: {text!r} is not an ISO 8601 instant; write e.g. 2026-03-01T14:05:00Z"
        ) from exc
    # An instant without a zone is read as UTC, the server's zone for every time it stores.
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


# Served by this room though it sits under /devices: precedence between fleets is decided
# here. The devices room's `/devices/self/desired-state` is registered first and keeps
# `self` for signed device requests.
@router.get("/devices/{device_id}/desired-state")
def device_desired_state(device_id: str, _p: Anyone, s: DbSession) -> DeviceDesiredState:
    """What a device is told to run per model, with the candidate fleets and the winner."""
    return service.explain_desired_state(s, device_id)
