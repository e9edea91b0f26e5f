"""HTTP routes of a device's life after enrollment: approve, reject, decommission, rotate
its key, remote diagnostics; and the TLS CA certificate devices pin."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, TypeVar

from fastapi import APIRouter, Depends, Response
from pydantic import BaseModel, ValidationError

from farpoint.core.errors import NotFound, ValidationFailed
from farpoint.server import tls
from farpoint.server.audit import service as audit
from farpoint.server.auth import Principal, Requires
from farpoint.server.context import AppContext
from farpoint.server.deps import Ctx, DbSession
from farpoint.server.device_auth import SignedDeviceDep
from farpoint.server.devices import diagnostics, lifecycle, service
from farpoint.wire.common import Role
from farpoint.wire.device_ops import (
    DiagnosticsOut,
    DiagnosticsUpload,
    KeyRotated,
    KeyRotation,
)
from farpoint.wire.devices import DeviceOut

__all__ = ["parse_device_body", "router"]

router = APIRouter(tags=["devices"])
ItOps = Annotated[Principal, Depends(Requires(Role.IT_OPS))]
M = TypeVar("M", bound=BaseModel)


def _now(ctx: AppContext) -> datetime:
    return datetime.fromtimestamp(ctx.clock(), UTC)


def parse_device_body(model: type[M], body: bytes) -> M:
    """A signed device body (already read for the signature) as `model`, or 422."""
    try:
        return model.model_validate_json(body or b"{}")
    except ValidationError as exc:
        errors = [
            {"location": ".".join(str(p) for p in e["loc"]) or "body", "message": e["msg"]}
            for e in exc.errors()
        ]
        first = errors[0]
        raise ValidationFailed(f"{first['location']}: {first['message']}", errors=errors) from exc


# --- IT operations ---------------------------------------------------------------------


def _decided(s: DbSession, ctx: AppContext, actor: str, action: str, device_id: str) -> DeviceOut:
    audit.record(s, ctx, actor, action, f"device/{device_id}")
    out = service.get_device(s, device_id, _now(ctx), ctx.settings.device_online_s)
    s.commit()
    # Its desired state changed (approved: it has one now; gone: it leaves fleets).
    ctx.notifier.changed([device_id])
    return out


@router.post("/devices/{device_id}/approve")
def approve(
    device_id: str,
    p: ItOps,
    s: DbSession,
    ctx: Ctx,
) -> DeviceOut:
    """Let a device that enrolled with an approval-requiring token in (it is `pending`)."""
    lifecycle.approve(s, device_id, p.user, _now(ctx))
    return _decided(s, ctx, p.user, "device.approve", device_id)


@router.post("/devices/{device_id}/reject")
def reject(
    device_id: str,
    p: ItOps,
    s: DbSession,
    ctx: Ctx,
) -> DeviceOut:
    """Refuse a pending enrollment for good."""
    lifecycle.reject(s, device_id, p.user, _now(ctx))
    return _decided(s, ctx, p.user, "device.reject", device_id)


@router.post("/devices/{device_id}/decommission")
def decommission(
    device_id: str,
    p: ItOps,
    s: DbSession,
    ctx: Ctx,
) -> DeviceOut:
    """Refuse every request of the device from now on (403); its record stays."""
    lifecycle.decommission(s, device_id, p.user, _now(ctx))
    return _decided(s, ctx, p.user, "device.decommission", device_id)


@router.post("/devices/{device_id}/diagnostics", status_code=201)
def request_diagnostics(device_id: str, p: ItOps, s: DbSession, ctx: Ctx) -> DiagnosticsOut:
    """Ask the device for its recent logs and last errors; it uploads them at its next sync."""
    out = diagnostics.request_diagnostics(s, device_id, p.user, _now(ctx))
    audit.record(s, ctx, p.user, "device.diagnostics-request", f"device/{device_id}")
    s.commit()
    ctx.notifier.changed([device_id])
    return out


@router.get("/devices/{device_id}/diagnostics")
def list_diagnostics(device_id: str, _p: ItOps, s: DbSession) -> list[DiagnosticsOut]:
    """The newest diagnostics requests of the device, with what it uploaded."""
    return diagnostics.list_diagnostics(s, device_id)


# --- signed by the device --------------------------------------------------------------


@router.post("/devices/self/key")
def rotate_key(device: SignedDeviceDep, s: DbSession, ctx: Ctx) -> KeyRotated:
    """Replace the device key (this request is signed with the current one); the old key
    is refused from the moment this answers."""
    body = parse_device_body(KeyRotation, device.body)
    out, rotated = lifecycle.rotate_key(s, device.id, body, _now(ctx))
    if rotated:  # not a retry of a rotation already made
        audit.record(
            s, ctx, f"device:{device.id}", "device.key-rotate", f"device/{device.id}",
            key=out.key_id,
        )  # fmt: skip
    s.commit()
    return out


@router.post("/devices/self/diagnostics/{diagnostics_id}", status_code=204)
def upload_diagnostics(
    diagnostics_id: int, device: SignedDeviceDep, s: DbSession, ctx: Ctx
) -> Response:
    """The device's answer to a diagnostics request (at most 64 KiB, like every device body)."""
    upload = parse_device_body(DiagnosticsUpload, device.body)
    diagnostics.store_upload(s, device.id, diagnostics_id, upload, len(device.body), _now(ctx))
    audit.record(
        s, ctx, f"device:{device.id}", "device.diagnostics-upload",
        f"device/{device.id}/diagnostics/{diagnostics_id}",
    )  # fmt: skip
    s.commit()
    return Response(status_code=204)


# --- public ------------------------------------------------------------------------------


@router.get(
    "/tls/ca.pem",
    response_class=Response,
    responses={200: {"content": {"application/x-pem-file": {}}}},
)
def tls_ca(ctx: Ctx) -> Response:
    """The CA certificate that issued this server's TLS certificate (FARPOINT_TLS_CA).

    Public and unauthenticated on purpose: a device trusts it only if its sha256 equals the
    one its enrollment token names.
    """
    if ctx.settings.tls_ca is None:
        raise NotFound("this server has no TLS CA configured (FARPOINT_TLS_CA)")
    return Response(tls.load_ca(ctx.settings.tls_ca), media_type="application/x-pem-file")
