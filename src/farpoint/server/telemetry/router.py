"""HTTP routes for telemetry: one device's windows, and sums over releases and fleets."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from farpoint.server.auth import Principal, Requires
from farpoint.server.deps import Ctx, DbSession
from farpoint.server.pagination import Limit, decode_cursor
from farpoint.server.telemetry import service
from farpoint.wire.telemetry import DeviceTelemetry, TelemetrySummary

router = APIRouter(tags=["telemetry"])
Anyone = Annotated[Principal, Depends(Requires())]
Since = Annotated[
    datetime | None,
    Query(description="ISO 8601; windows ending after it (default: until minus 24 h)"),
]
Until = Annotated[
    datetime | None, Query(description="ISO 8601; windows ending at or before it (default: now)")
]


def _utc(value: datetime | None) -> datetime | None:
    """A time without a zone is taken as UTC."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


@router.get("/devices/{device_id}/telemetry")
def device_telemetry(
    device_id: str,
    _p: Anyone,
    s: DbSession,
    ctx: Ctx,
    since: Since = None,
    until: Until = None,
    limit: Limit = 100,
    cursor: str | None = None,
) -> DeviceTelemetry:
    """A device's telemetry windows, oldest first (`next_cursor` for the next page)."""
    return service.device_telemetry(
        s,
        device_id,
        _utc(since),
        _utc(until),
        decode_cursor(cursor) if cursor else -1,  # seqs start at 0
        limit,
        datetime.fromtimestamp(ctx.clock(), UTC),
    )


@router.get("/telemetry/summary")
def telemetry_summary(
    _p: Anyone,
    s: DbSession,
    ctx: Ctx,
    release_id: Annotated[int | None, Query(ge=1)] = None,
    fleet: str | None = None,
    model: str | None = None,
    since: Since = None,
    until: Until = None,
) -> TelemetrySummary:
    """Counts summed over a release's windows and/or a fleet's devices, per model and
    release: requests, failures, latency histogram and quantiles, labels, feedback."""
    return service.summary(
        s,
        release_id,
        fleet,
        model,
        _utc(since),
        _utc(until),
        datetime.fromtimestamp(ctx.clock(), UTC),
    )
