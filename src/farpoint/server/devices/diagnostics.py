"""Remote diagnostics: IT operations ask a device for its recent logs and last errors; the
request shows in the device's desired state, and the device uploads them at its next sync."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from farpoint.core.errors import Conflict, NotFound
from farpoint.server.devices import repository as repo
from farpoint.server.devices.tables import DeviceDiagnostics
from farpoint.wire.device_ops import DiagnosticsOut, DiagnosticsUpload
from farpoint.wire.devices import DiagnosticsRequest

__all__ = [
    "MAX_LISTED",
    "diagnostics_out",
    "list_diagnostics",
    "pending_diagnostics",
    "request_diagnostics",
    "store_upload",
]

MAX_LISTED = 20
"""`GET /devices/{id}/diagnostics` shows this many of the newest requests."""


def pending_diagnostics(s: Session, device_id: str) -> DiagnosticsRequest | None:
    """The request the desired state carries: the oldest the device has not answered."""
    row = repo.pending_diagnostics(s, device_id)
    return None if row is None else DiagnosticsRequest(id=row.id)


def request_diagnostics(s: Session, device_id: str, actor: str, now: datetime) -> DiagnosticsOut:
    """Ask the device for its logs; one open request at a time (asking again returns it)."""
    device = repo.device_by_id(s, device_id)
    if device is None:
        raise NotFound(f"device {device_id} does not exist")
    if device.state in ("decommissioned", "rejected"):
        raise Conflict(f"device {device.name!r} is {device.state}: it will never answer")
    open_request = repo.pending_diagnostics(s, device_id)
    if open_request is not None:
        return diagnostics_out(open_request)
    row = DeviceDiagnostics(
        device_id=device_id,
        requested_by=actor,
        requested_at=now,
        uploaded_at=None,
        bundle=None,
        size_bytes=None,
    )
    repo.add_diagnostics(s, row)
    s.flush()
    return diagnostics_out(row)


def store_upload(
    s: Session,
    device_id: str,
    diagnostics_id: int,
    upload: DiagnosticsUpload,
    size_bytes: int,
    now: datetime,
) -> DiagnosticsOut:
    row = repo.diagnostics_by_id(s, diagnostics_id)
    if row is None or row.device_id != device_id:
        raise NotFound(f"diagnostics request {diagnostics_id} does not exist for this device")
    if row.uploaded_at is not None:
        raise Conflict(f"diagnostics request {diagnostics_id} was already answered")
    row.bundle = upload.model_dump(mode="json")
    row.size_bytes = size_bytes
    row.uploaded_at = now
    s.flush()
    return diagnostics_out(row)


def list_diagnostics(s: Session, device_id: str) -> list[DiagnosticsOut]:
    if repo.device_by_id(s, device_id) is None:
        raise NotFound(f"device {device_id} does not exist")
    return [diagnostics_out(r) for r in repo.list_diagnostics(s, device_id, MAX_LISTED)]


def diagnostics_out(row: DeviceDiagnostics) -> DiagnosticsOut:
    return DiagnosticsOut(
        id=row.id,
        device_id=row.device_id,
        requested_by=row.requested_by,
        requested_at=row.requested_at,
        uploaded_at=row.uploaded_at,
        size_bytes=row.size_bytes,
        bundle=None if row.bundle is None else DiagnosticsUpload.model_validate(row.bundle),
    )
