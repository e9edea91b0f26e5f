"""Authenticate a request signed by an enrolled device (`farpoint.core.request_signing`)."""

from __future__ import annotations

import base64
import functools
import heapq
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from farpoint.core import keys
from farpoint.core.errors import Forbidden, PayloadTooLarge, SignatureError, Unauthorized
from farpoint.core.request_signing import (
    HEADER_DEVICE,
    HEADER_SIGNATURE,
    HEADER_TIMESTAMP,
    MAX_SKEW_S,
    verify_request,
)
from farpoint.server.auth import Requires
from farpoint.server.context import AppContext
from farpoint.server.devices import repository as repo

__all__ = [
    "MAX_DEVICE_BODY",
    "DeviceOrPerson",
    "DeviceOrPersonDep",
    "ReplayGuard",
    "SignedDevice",
    "SignedDeviceDep",
    "SignedReporterDep",
    "device_or_person",
    "refusal",
    "signed_device",
    "signed_reporter",
]

MAX_DEVICE_BODY = 64 * 1024
"""Devices send status reports and nothing bigger; refuse larger bodies before reading them."""


@dataclass(frozen=True)
class SignedDevice:
    id: str
    name: str
    last_seen_at: datetime | None
    body: bytes
    """The raw body the signature covers (already read; do not read the request again)."""
    state: str = "active"


class ReplayGuard:
    """Signatures seen in the last skew window, so a captured request cannot be resent.

    In memory and per process: a replay sent to another replica is not caught, but it still
    expires with the timestamp window. Entries are keyed by the signature's `r` value, not
    its bytes: ECDSA signatures are malleable ((r, s) and (r, n - s) both verify) while `r`
    comes from the signer's fresh nonce. Only verified requests are recorded, so strangers
    cannot fill it; its size is bounded by the devices' request rate times the window.
    Only the event loop touches it (the dependency is async), so it needs no lock.
    """

    def __init__(self, window_s: int = MAX_SKEW_S) -> None:
        self.window_s = window_s
        self._seen: set[tuple[str, int]] = set()
        self._expiry: list[tuple[float, str, int]] = []

    def check_and_record(self, device_id: str, signature_b64: str, ts: int, now: float) -> None:
        while self._expiry and self._expiry[0][0] < now:
            _, dev, r = heapq.heappop(self._expiry)
            self._seen.discard((dev, r))
        try:
            r, _s = decode_dss_signature(base64.b64decode(signature_b64))
        except ValueError as exc:  # pragma: no cover - it verified, so it decodes
            raise SignatureError("device request signature is malformed") from exc
        key = (device_id, r)
        if key in self._seen:
            raise SignatureError("device request was already received once (replay refused)")
        self._seen.add(key)
        heapq.heappush(self._expiry, (ts + self.window_s + 1, device_id, r))


def _guard(request: Request) -> ReplayGuard:
    # Kept on the app so each app (and each test) has its own.
    guard: ReplayGuard | None = getattr(request.app.state, "device_replay_guard", None)
    if guard is None:
        guard = ReplayGuard()
        request.app.state.device_replay_guard = guard
    return guard


async def _read_body(request: Request) -> bytes:
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > MAX_DEVICE_BODY:
        raise PayloadTooLarge(f"device requests are limited to {MAX_DEVICE_BODY} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_DEVICE_BODY:
            raise PayloadTooLarge(f"device requests are limited to {MAX_DEVICE_BODY} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _lookup(ctx: AppContext, device_id: str) -> tuple[str, str, datetime | None, str] | None:
    with ctx.db.sessions() as s:
        return repo.auth_view(s, device_id)


@functools.lru_cache(maxsize=16384)
def _public_key(pem: str) -> keys.PublicKey:
    """A device's key, parsed once (parsing PEM was a few percent of every request)."""
    return keys.load_public_key(pem)


def refusal(device_id: str, name: str, state: str) -> Forbidden | None:
    """Why a device in `state` may not make a request (None: it may). The problem carries
    `device_state` so the agent can tell waiting for approval from being decommissioned."""
    who = f"device {name!r} ({device_id})"
    if state == "active":
        return None
    if state == "pending":
        detail = (
            f"{who} is waiting for IT operations to approve its enrollment; until then "
            "only its status reports are accepted"
        )
    elif state == "rejected":
        detail = f"{who}: IT operations rejected its enrollment; enroll again with a new token"
    elif state == "decommissioned":
        detail = f"{who} was decommissioned; its requests are refused from now on"
    else:  # pragma: no cover - the states are a closed set
        detail = f"{who} is in state {state!r}"
    return Forbidden(detail, device_state=state)


async def _authenticate(request: Request, allow_pending: bool) -> SignedDevice:
    ctx: AppContext = request.app.state.ctx
    device_id = request.headers.get(HEADER_DEVICE, "")
    if not device_id or not request.headers.get(HEADER_SIGNATURE):
        raise Unauthorized(
            f"device requests must be signed ({HEADER_DEVICE}, {HEADER_TIMESTAMP}, "
            f"{HEADER_SIGNATURE})"
        )
    body = await _read_body(request)
    found = await ctx.db.read(_lookup, ctx, device_id)
    if found is None:
        raise Unauthorized(f"device {device_id!r} is not enrolled; enroll it first")
    name, pem, last_seen_at, state = found
    path = request.url.path + ("?" + request.url.query if request.url.query else "")
    now = ctx.clock()
    verify_request(request.headers, request.method, path, body, _public_key(pem), now)
    _guard(request).check_and_record(
        device_id, request.headers[HEADER_SIGNATURE], int(request.headers[HEADER_TIMESTAMP]), now
    )
    # Only a request the device's own key signed learns its state.
    refused = None if allow_pending and state == "pending" else refusal(device_id, name, state)
    if refused is not None:
        raise refused
    return SignedDevice(id=device_id, name=name, last_seen_at=last_seen_at, body=body, state=state)


async def signed_device(request: Request) -> SignedDevice:
    """Dependency: the active enrolled device whose key signed this request; 401 for a bad
    signature, 403 for a device pending approval, rejected or decommissioned."""
    return await _authenticate(request, allow_pending=False)


async def signed_reporter(request: Request) -> SignedDevice:
    """Like `signed_device`, but a device waiting for approval passes too (status reports)."""
    return await _authenticate(request, allow_pending=True)


SignedDeviceDep = Annotated[SignedDevice, Depends(signed_device)]
SignedReporterDep = Annotated[SignedDevice, Depends(signed_reporter)]


class DeviceOrPerson(Requires):
    """Dependency: a signed device request, or a person's bearer token of any role.

    A `Requires` (of any role) so route enumeration sees that the route checks its caller.
    Returns the caller as an audit actor: `device:<id>` or the user's name.
    """

    def __init__(self) -> None:
        super().__init__()

    async def __call__(self, request: Request) -> str:  # type: ignore[override]
        if request.headers.get(HEADER_DEVICE):
            device = await signed_device(request)
            return f"device:{device.id}"
        principal = await run_in_threadpool(Requires.__call__, self, request)
        return principal.user


device_or_person = DeviceOrPerson()
DeviceOrPersonDep = Annotated[str, Depends(device_or_person)]
"""Readers of the image repository: enrolled devices and people alike."""
