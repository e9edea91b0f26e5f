"""HTTP routes for tracing a release or a device back to its data."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from farpoint.server.auth import Principal, Requires
from farpoint.server.deps import Ctx, DbSession
from farpoint.server.trace import service
from farpoint.wire.trace import Trace

router = APIRouter(tags=["trace"])
Anyone = Annotated[Principal, Depends(Requires())]


@router.get("/trace/releases/{release_id}")
def trace_release(release_id: int, _p: Anyone, s: DbSession, ctx: Ctx) -> Trace:
    return service.trace(service.release_link(s, release_id), ctx.signing_key.public_key())


@router.get("/trace/devices/{device_id}")
def trace_device(device_id: str, _p: Anyone, s: DbSession, ctx: Ctx) -> Trace:
    return service.trace(service.device_link(s, device_id), ctx.signing_key.public_key())
