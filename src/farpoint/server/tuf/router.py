"""HTTP routes of the TUF image repository and the director (docs/trust-delivery.md)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Request, Response
from fastapi.responses import StreamingResponse
from sqlalchemy.exc import IntegrityError
from starlette.concurrency import run_in_threadpool

from farpoint.core.errors import NotFound, PayloadTooLarge
from farpoint.server.audit import service as audit
from farpoint.server.auth import Principal, Requires
from farpoint.server.context import AppContext
from farpoint.server.deps import Ctx, DbSession
from farpoint.server.device_auth import DeviceOrPersonDep, SignedDeviceDep
from farpoint.server.errors import problem_response
from farpoint.server.releases import repository as releases_repo
from farpoint.server.tuf import director, service, signatures
from farpoint.wire.common import Role
from farpoint.wire.tuf import OnlineKeysOut, OnlineKeysRotate, TufStatus, UploadResult

router = APIRouter(prefix="/tuf", tags=["tuf"])
Admin = Annotated[Principal, Depends(Requires(Role.ADMIN))]
Mlops = Annotated[Principal, Depends(Requires(Role.MLOPS_ENGINEER))]
Anyone = Annotated[Principal, Depends(Requires())]

_JSON = "application/json"
_NO_STORE = {"Cache-Control": "no-store"}
_MODEL = re.compile(r"^releases/([1-9][0-9]{0,17})/model\.onnx$")
_MANIFEST = re.compile(r"^releases/([1-9][0-9]{0,17})/manifest\.json$")
_SIGNATURE = re.compile(r"^releases/([1-9][0-9]{0,17})/model\.sig$")
_RANGE = re.compile(r"^bytes=(\d+)-(\d*)$")
_RETRIES = 3


async def _body(request: Request) -> bytes:
    """The raw upload, refused early when larger than any metadata the client would take."""
    limit = service.MAX_METADATA_BYTES
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > limit:
        raise PayloadTooLarge(f"uploads here are limited to {limit} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"uploads here are limited to {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


# --- admin and release-manager writes --------------------------------------------------


@router.put("/image/root")
async def put_root(request: Request, p: Admin, ctx: Ctx) -> UploadResult:
    """A new root.json (version N+1), signed by a threshold of the current root and its own."""
    data = await _body(request)
    result = await run_in_threadpool(_write, ctx, service.upload_root, data, p.user)
    await run_in_threadpool(_settle, ctx)  # after the commit: the stored root decides
    return result


def _settle(ctx: AppContext) -> None:
    with ctx.db.session() as s:
        service.settle_online_keys(s, ctx)


@router.put("/image/targets")
async def put_targets(request: Request, p: Admin, ctx: Ctx) -> UploadResult:
    """A new top-level targets.json signed by the offline targets key."""
    data = await _body(request)
    return await run_in_threadpool(_write, ctx, service.upload_targets, data, p.user)


@router.put("/image/trust-files/{name:path}")
async def put_trust_file(name: str, request: Request, p: Admin, ctx: Ctx) -> UploadResult:
    """`trust/<name>`, accepted only if the current targets.json lists these exact bytes."""
    data = await _body(request)

    def upload(s, c, d, actor):  # type: ignore[no-untyped-def]
        return service.upload_trust_file(s, c, name, d, actor)

    return await run_in_threadpool(_write, ctx, upload, data, p.user)


@router.put("/image/releases")
async def put_releases(request: Request, p: Mlops, ctx: Ctx) -> UploadResult:
    """A new releases.json signed by a threshold of the release managers' keys."""
    data = await _body(request)
    return await run_in_threadpool(_write, ctx, service.upload_releases, data, p.user)


@router.put("/image/release-files/{release_id}/model.sig", status_code=204)
async def put_model_signature(release_id: int, request: Request, p: Mlops, ctx: Ctx) -> Response:
    """A release manager's OMS bundle over the release's model, before listing it in
    releases.json as `releases/<id>/model.sig`."""
    data = await _body(request)

    def store() -> None:
        with ctx.db.session() as s:
            row = signatures.upload_model_signature(
                s, release_id, data, p.user_id, p.user, service.now_of(ctx)
            )
            audit.record(
                s, ctx, p.user, "release.model-signature", f"release/{release_id}",
                signature=row.digest,
            )  # fmt: skip

    await run_in_threadpool(store)
    return Response(status_code=204)


def _write(ctx: AppContext, upload, data: bytes, actor: str) -> UploadResult:  # type: ignore[no-untyped-def]
    with ctx.db.session() as s:
        result: UploadResult = upload(s, ctx, data, actor)
        return result


# --- admin views -----------------------------------------------------------------------


@router.get("/online-keys")
def get_online_keys(_p: Admin, ctx: Ctx) -> OnlineKeysOut:
    """Public PEMs of the server's snapshot, timestamp and director keys."""
    return service.online_keys_out(ctx)


@router.post("/online-keys/rotate")
def rotate_online_keys(body: OnlineKeysRotate, p: Admin, s: DbSession, ctx: Ctx) -> OnlineKeysOut:
    """Make next keys for online roles; they sign once a root signed offline names them
    (`farpoint trust rotate-online` does both), so devices follow without re-enrolling."""
    out = service.prepare_online_rotation(s, ctx, body.roles, p.user)
    s.commit()
    return out


@router.get("/status")
def get_status(_p: Anyone, s: DbSession) -> TufStatus:
    """Which metadata the repository holds, with versions and expiries."""
    return service.status(s)


# --- reads by devices and people -------------------------------------------------------


def _metadata(ctx: AppContext, filename: str) -> bytes:
    for attempt in range(_RETRIES):
        try:
            with ctx.db.session() as s:
                if filename in ("timestamp.json", "snapshot.json"):
                    service.refresh_if_due(s, ctx)
                return service.metadata_bytes(s, filename)
        except IntegrityError:  # another request re-signed at the same moment: read theirs
            if attempt == _RETRIES - 1:
                raise
    raise AssertionError("unreachable")


@router.get("/image/metadata/{filename}", response_class=Response)
async def get_metadata(filename: str, _reader: DeviceOrPersonDep, ctx: Ctx) -> Response:
    """`N.root.json`, `timestamp.json`, `snapshot.json`, `targets.json`, `releases.json`."""
    data = await run_in_threadpool(_metadata, ctx, filename)
    return Response(data, media_type=_JSON, headers=_NO_STORE)


def _target(ctx: AppContext, path: str) -> tuple[bytes | None, str | None]:
    """Small targets as bytes, or the digest of a model blob to stream."""
    with ctx.db.session() as s:
        if path.startswith("trust/"):
            return service.trust_file_bytes(s, path[len("trust/") :]), None
        m = _MANIFEST.match(path) or _MODEL.match(path) or _SIGNATURE.match(path)
        release = releases_repo.release_by_id(s, int(m.group(1))) if m else None
        if release is None:
            raise NotFound(f"target {path} does not exist")
        if path.endswith("manifest.json"):
            return ctx.blobs.read_bytes(release.manifest_digest), None
        if path.endswith("model.sig"):
            row = signatures.signature_of(s, release.id)
            if row is None:
                raise NotFound(f"release {release.id} has no model signature")
            return row.data, None
        return None, release.model_digest


def _skip(chunks: Iterator[bytes], start: int) -> Iterator[bytes]:
    pos = 0
    for chunk in chunks:
        lo, pos = pos, pos + len(chunk)
        if pos > start:
            yield chunk[max(start - lo, 0) :]


@router.get(
    "/image/targets/{path:path}",
    response_class=Response,
    responses={206: {"description": "model.onnx from byte N on (Range: bytes=N-)"}},
)
async def get_target(
    path: str,
    _reader: DeviceOrPersonDep,
    ctx: Ctx,
    range_: Annotated[str | None, Header(alias="range")] = None,
) -> Response:
    """A target file: trust files, release manifests, and models (resumable with Range)."""
    data, digest = await ctx.db.read(_target, ctx, path)
    if data is not None:
        return Response(data, media_type=_JSON, headers=_NO_STORE)
    assert digest is not None
    size = ctx.blobs.size(digest)
    media = "application/octet-stream"
    if range_ is None:
        headers = {"Content-Length": str(size), "Accept-Ranges": "bytes"}
        return StreamingResponse(ctx.blobs.iter_verified(digest), media_type=media, headers=headers)
    m = _RANGE.match(range_.strip())
    start = int(m.group(1)) if m else -1
    if m is None or m.group(2) or start >= size:
        refused = problem_response(
            416,
            "Range not satisfiable",
            f"range {range_!r} is not bytes=N- with N below the model's {size} bytes",
        )
        refused.headers["Content-Range"] = f"bytes */{size}"
        return refused
    headers = {
        "Content-Range": f"bytes {start}-{size - 1}/{size}",
        "Content-Length": str(size - start),
        "Accept-Ranges": "bytes",
    }
    return StreamingResponse(
        _skip(ctx.blobs.iter_verified(digest), start),
        status_code=206,
        media_type=media,
        headers=headers,
    )


# --- the director ----------------------------------------------------------------------


def _stored_director(ctx: AppContext, device_id: str) -> bytes | None:
    """The device's director metadata if the stored copy serves (None: sign anew)."""
    with ctx.db.session() as s:
        try:
            return director.director_targets(s, ctx, device_id, write=False)
        except director.NeedsSigning:
            return None


async def _signed_director(ctx: AppContext, device_id: str) -> bytes:
    """Sign and store a new version through the device writer (`group_commit.py`): a
    fleet fetching its new metadata at once queues instead of fighting for the lock."""
    for attempt in range(_RETRIES):
        try:
            return await asyncio.wrap_future(
                ctx.device_writes.submit(lambda s: director.director_targets(s, ctx, device_id))
            )
        except (director.LostRace, IntegrityError):  # another replica signed first
            if attempt == _RETRIES - 1:
                raise
    raise AssertionError("unreachable")


@router.get("/director/targets.json", response_class=Response)
async def get_director_targets(device: SignedDeviceDep, ctx: Ctx) -> Response:
    """The calling device's director metadata; who is asking comes from the signature."""
    data = await ctx.db.read(_stored_director, ctx, device.id)
    if data is None:
        data = await _signed_director(ctx, device.id)
    return Response(data, media_type=_JSON, headers=_NO_STORE)
