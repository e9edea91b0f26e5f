"""HTTP routes for enrollment, devices and the device-signed `devices/self/*` endpoints."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Response
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import ValidationError
from sqlalchemy.orm import Session

from farpoint.core import digest as digests
from farpoint.core.errors import NotFound
from farpoint.server import tls
from farpoint.server.audit import service as audit
from farpoint.server.auth import Principal, Requires
from farpoint.server.context import AppContext
from farpoint.server.deps import Ctx, DbSession
from farpoint.server.device_auth import (
    SignedDevice,
    SignedDeviceDep,
    SignedReporterDep,
    refusal,
)
from farpoint.server.devices import repository as repo
from farpoint.server.devices import service
from farpoint.server.devices.lifecycle_router import router as lifecycle_router
from farpoint.server.errors import problem_response
from farpoint.server.pagination import Limit, decode_cursor, next_cursor
from farpoint.wire.common import Page, Role
from farpoint.wire.devices import (
    DesiredState,
    DeviceOut,
    DeviceState,
    DeviceStatusReport,
    EnrollmentTokenCreate,
    EnrollmentTokenCreated,
    EnrollRequest,
    EnrollResponse,
)

router = APIRouter(tags=["devices"])
router.include_router(lifecycle_router)
ItOps = Annotated[Principal, Depends(Requires(Role.IT_OPS))]
Anyone = Annotated[Principal, Depends(Requires())]

_POLL_SLICE_S = 2.0
"""Re-read the database this often while long-polling, so other replicas' changes are seen
(changes this replica commits wake the poll at once)..."""
_RECHECKS_PER_S = 50.0
"""...but no more often, over all the polls held here, than this many re-reads a second:
a thousand devices held in polls would otherwise cost the server a core. Past 100 held
polls each waits longer between re-reads (at most until its timeout)."""
_TOUCH_EVERY_S = 15.0
"""last_seen_at is rewritten at most this often by polls; status reports always write it."""


def recheck_interval(held_polls: int) -> float:
    """Seconds a held poll waits between re-reads when `held_polls` are held here."""
    return max(_POLL_SLICE_S, held_polls / _RECHECKS_PER_S)


def _now(ctx: AppContext) -> datetime:
    return datetime.fromtimestamp(ctx.clock(), UTC)


@router.post("/enrollment-tokens", status_code=201)
def create_enrollment_token(
    body: EnrollmentTokenCreate, p: ItOps, s: DbSession, ctx: Ctx
) -> EnrollmentTokenCreated:
    out = service.create_enrollment_token(
        s, body, p.user, ctx.signing_key_id, _now(ctx), tls.ca_digest(ctx.settings)
    )
    audit.record(s, ctx, p.user, "enrollment-token.create", f"enrollment-token/{out.id}")
    s.commit()
    return out


@router.post("/devices/enroll", status_code=201)
def enroll(body: EnrollRequest, s: DbSession, ctx: Ctx) -> EnrollResponse:
    out = service.enroll(s, body, ctx.signing_key.public_key(), _now(ctx))
    audit.record_enrollment(s, ctx, out.device_id)
    s.commit()
    return out


@router.get("/devices")
def list_devices(
    _p: Anyone,
    s: DbSession,
    ctx: Ctx,
    limit: Limit = 100,
    cursor: str | None = None,
    state: DeviceState | None = None,
) -> Page[DeviceOut]:
    """Enrolled devices; `state=pending` lists the ones waiting for approval."""
    rows = repo.list_devices(s, decode_cursor(cursor), limit, state)
    items = service.device_outs(s, rows, _now(ctx), ctx.settings.device_online_s)
    return Page(items=items, next_cursor=next_cursor([d.seq for d in rows], limit))


@router.get("/devices/{device_id}")
def get_device(device_id: str, _p: Anyone, s: DbSession, ctx: Ctx) -> DeviceOut:
    return service.get_device(s, device_id, _now(ctx), ctx.settings.device_online_s)


# --- signed by the device ------------------------------------------------------------
# These open short sessions themselves instead of taking DbSession: a long-poll or a blob
# download must not hold a database connection while it waits or streams.


def _current_state(ctx: AppContext, device: SignedDevice, recheck: bool = False) -> DesiredState:
    with ctx.db.session() as s:
        if recheck:  # inside a held poll: was the device decommissioned meanwhile?
            found = repo.auth_view(s, device.id)
            refused = refusal(device.id, device.name, found[3] if found else "decommissioned")
            if refused is not None:
                raise refused
        return service.desired_state(s, device.id)


def _etag_header(etag: str) -> dict[str, str]:
    return {"ETag": f'"{etag}"'}


def _unquote_etag(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    if value.startswith("W/"):
        value = value[2:]
    return value.strip('"')


@router.get(
    "/devices/self/desired-state",
    response_model=DesiredState,
    responses={304: {"description": "unchanged since the etag sent in If-None-Match"}},
)
async def desired_state(
    device: SignedDeviceDep,
    ctx: Ctx,
    wait: Annotated[float, Query(ge=0)] = 0,
    if_none_match: Annotated[str | None, Header()] = None,
) -> Response:
    """The releases this device must run; with `If-None-Match`, hold until they change."""
    deadline = time.monotonic() + min(wait, ctx.settings.long_poll_max_s)
    now = ctx.clock()
    stale = device.last_seen_at is None or now - device.last_seen_at.timestamp() >= _TOUCH_EVERY_S
    seen = _now(ctx)
    touched = (
        ctx.device_writes.submit(lambda s: repo.touch(s, device.id, seen)) if stale else None
    )  # written meanwhile, by the device writer
    state = await ctx.db.read(_current_state, ctx, device)
    if touched is not None:
        await asyncio.wrap_future(touched)
    known = _unquote_etag(if_none_match)
    while state.etag == known:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return Response(status_code=304, headers=_etag_header(state.etag))
        await ctx.notifier.wait(min(recheck_interval(ctx.notifier.waiting), remaining), device.id)
        state = await ctx.db.read(_current_state, ctx, device, True)
    return JSONResponse(state.model_dump(mode="json"), headers=_etag_header(state.etag))


def _envelope(ctx: AppContext, device_id: str, release_id: int) -> dict[str, object]:
    with ctx.db.session() as s:
        return service.desired_release_envelope(s, device_id, release_id)


@router.get("/devices/self/releases/{release_id}/manifest")
async def release_manifest(release_id: int, device: SignedDeviceDep, ctx: Ctx) -> dict[str, Any]:
    """The DSSE envelope of a release manifest desired for this device."""
    return await ctx.db.read(_envelope, ctx, device.id, release_id)


def _attestations(ctx: AppContext, device_id: str, release_id: int) -> list[dict[str, object]]:
    with ctx.db.session() as s:
        return service.desired_release_attestations(s, device_id, release_id)


@router.get("/devices/self/releases/{release_id}/attestations")
async def release_attestations(
    release_id: int, device: SignedDeviceDep, ctx: Ctx
) -> dict[str, list[dict[str, object]]]:
    """Approvals and test results of a release desired for this device (DSSE envelopes)."""
    found = await ctx.db.read(_attestations, ctx, device.id, release_id)
    return {"attestations": found}


def _check_blob(ctx: AppContext, device_id: str, digest: str) -> None:
    with ctx.db.session() as s:
        service.check_blob_desired(s, device_id, digest)


_RANGE = re.compile(r"^bytes=(\d+)-(\d*)$")


def _skip(chunks: Iterator[bytes], start: int, end: int) -> Iterator[bytes]:
    """Bytes start..end (inclusive) of the stream. The prefix is still read and hashed, so a
    corrupted blob is never served, at the cost of reading it from disk."""
    pos = 0
    for chunk in chunks:
        lo, hi = pos, pos + len(chunk)
        pos = hi
        if hi <= start or lo > end:
            continue
        yield chunk[max(start - lo, 0) : min(end + 1 - lo, len(chunk))]


@router.get(
    "/devices/self/blobs/{digest}",
    response_class=StreamingResponse,
    responses={206: {"description": "the requested range (Range: bytes=N- )"}},
)
async def blob(
    digest: str,
    device: SignedDeviceDep,
    ctx: Ctx,
    range_: Annotated[str | None, Header(alias="range")] = None,
) -> Response:
    """A blob of a release desired for this device; `Range: bytes=N-` resumes a download."""
    if not digests.is_digest(digest):
        raise NotFound(f"{digest!r} is not a sha256:<hex> content address")
    await ctx.db.read(_check_blob, ctx, device.id, digest)
    size = ctx.blobs.size(digest)
    headers = {"Accept-Ranges": "bytes", "ETag": f'"{digest}"'}
    media = "application/octet-stream"
    if range_ is None:
        headers["Content-Length"] = str(size)
        return StreamingResponse(ctx.blobs.iter_verified(digest), media_type=media, headers=headers)
    m = _RANGE.match(range_.strip())
    start = int(m.group(1)) if m else -1
    end = min(int(m.group(2)), size - 1) if m and m.group(2) else size - 1
    if m is None or start >= size or end < start:
        refused = problem_response(
            416,
            "Range not satisfiable",
            f"range {range_!r} does not fit a blob of {size} bytes; send bytes=N- with N < size",
        )
        refused.headers["Content-Range"] = f"bytes */{size}"
        return refused
    headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    headers["Content-Length"] = str(end - start + 1)
    return StreamingResponse(
        _skip(ctx.blobs.iter_verified(digest), start, end),
        status_code=206,
        media_type=media,
        headers=headers,
    )


@router.post("/devices/self/status", status_code=204)
async def report_status(device: SignedReporterDep, ctx: Ctx) -> Response:
    """Record the device's phases per model and its heartbeat; advance its rollouts.

    The one request a device waiting for approval may make: IT operations see its
    hardware and heartbeat before they decide. Reports are group-committed
    (`server/group_commit.py`): answered once the transaction holding this one committed."""
    try:
        report = DeviceStatusReport.model_validate_json(device.body or b"{}")
    except ValidationError as exc:
        errors = [
            {"location": ".".join(str(p) for p in e["loc"]) or "body", "message": e["msg"]}
            for e in exc.errors()
        ]
        first = errors[0]
        return problem_response(
            422, "Invalid input", f"{first['location']}: {first['message']}", errors=errors
        )
    now = _now(ctx)

    def store(s: Session) -> bool:
        audit.record_phase_changes(s, ctx, device.id, report)  # before: compares with stored
        return service.report_status(s, device.id, report, now)

    changed = await asyncio.wrap_future(ctx.device_writes.submit(store))
    if changed:  # a rollout moved on: wake the long-polls after the commit
        ctx.notifier.changed()
    return Response(status_code=204)
