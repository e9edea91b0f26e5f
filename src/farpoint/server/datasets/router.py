"""HTTP routes for datasets."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Response, UploadFile
from pydantic import ValidationError

from farpoint.core.errors import PayloadTooLarge, ValidationFailed
from farpoint.server.audit import service as audit
from farpoint.server.auth import Principal, Requires
from farpoint.server.datasets import repository as repo
from farpoint.server.datasets import service
from farpoint.server.deps import Ctx, DbSession
from farpoint.server.pagination import Limit, decode_cursor, next_cursor
from farpoint.wire.common import ColumnRole, Name, Page, Role
from farpoint.wire.datasets import DatasetOut, DatasetVersionOut, RolesUpdate

router = APIRouter(tags=["datasets"])
Anyone = Annotated[Principal, Depends(Requires())]
Scientist = Annotated[Principal, Depends(Requires(Role.DATA_SCIENTIST))]
RowReader = Annotated[Principal, Depends(Requires(Role.DATA_SCIENTIST, Role.AI_ENGINEER))]


def spool_upload(upload: UploadFile, limit: int, directory: Path) -> Path:
    """Copy an upload to a temp file, refusing it past `limit` bytes."""
    fd, name = tempfile.mkstemp(dir=directory, suffix=".upload")
    path = Path(name)
    size = 0
    try:
        with open(fd, "wb") as out:
            while chunk := upload.file.read(1 << 20):
                size += len(chunk)
                if size > limit:
                    raise PayloadTooLarge(
                        f"{upload.filename or 'the upload'} is larger than the limit of "
                        f"{limit} bytes (FARPOINT_MAX_UPLOAD_BYTES)"
                    )
                out.write(chunk)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path


def parse_roles(raw: str) -> dict[str, ColumnRole]:
    try:
        return RolesUpdate.model_validate({"roles": json.loads(raw or "{}")}).roles
    except json.JSONDecodeError as exc:
        raise ValidationFailed(f"roles must be a JSON object of column → role: {exc}") from exc
    except ValidationError as exc:
        err = exc.errors()[0]
        column = ".".join(str(p) for p in err["loc"][1:])
        allowed = ", ".join(r.value for r in ColumnRole)
        raise ValidationFailed(
            f"unknown column role for {column!r}: {err.get('input')!r}; allowed roles: {allowed}"
        ) from exc


@router.post("/datasets/{name}/versions", status_code=201)
def upload_version(
    name: Name,
    file: UploadFile,
    p: Scientist,
    s: DbSession,
    ctx: Ctx,
    roles: Annotated[str, Form()] = "{}",
    team: Annotated[str | None, Form()] = None,
) -> DatasetVersionOut:
    parsed = parse_roles(roles)
    tmp_dir = ctx.settings.home / "tmp"
    tmp_dir.mkdir(parents=True, exist_ok=True)
    path = spool_upload(file, ctx.settings.max_upload_bytes, tmp_dir)
    try:
        out = service.register_version(
            s,
            ctx.blobs,
            name=name,
            upload=path,
            filename=file.filename or "upload",
            roles=parsed,
            team=team,
            actor=p.user,
        )
        audit.record(s, ctx, p.user, "dataset.version.create", out.ref, dataset=out.digest)
        s.commit()
    finally:
        path.unlink(missing_ok=True)
    return out


@router.get("/datasets")
def list_datasets(
    _p: Anyone, s: DbSession, limit: Limit = 100, cursor: str | None = None
) -> Page[DatasetOut]:
    rows = repo.list_datasets(s, decode_cursor(cursor), limit)
    return Page(
        items=[service.dataset_out(s, d) for d in rows],
        next_cursor=next_cursor([d.id for d in rows], limit),
    )


@router.get("/datasets/{name}/versions")
def list_versions(
    name: str, _p: Anyone, s: DbSession, limit: Limit = 100, cursor: str | None = None
) -> Page[DatasetVersionOut]:
    dataset, _ = service.resolve(s, name)
    rows = repo.versions(s, dataset.id, decode_cursor(cursor), limit)
    return Page(
        items=[service.version_out(dataset, v) for v in rows],
        next_cursor=next_cursor([v.id for v in rows], limit),
    )


@router.get("/datasets/{name}/versions/{version}")
def get_version(name: str, version: int, _p: Anyone, s: DbSession) -> DatasetVersionOut:
    dataset, v = service.resolve(s, f"{name}@{version}")
    return service.version_out(dataset, v)


@router.put("/datasets/{name}/versions/{version}/roles")
def set_roles(
    name: str, version: int, body: RolesUpdate, p: Scientist, s: DbSession, ctx: Ctx
) -> DatasetVersionOut:
    out = service.set_roles(s, f"{name}@{version}", body.roles)
    audit.record(
        s,
        ctx,
        p.user,
        "dataset.version.roles",
        out.ref,
        dataset=out.digest,
        roles=audit.digest_of(out.roles),
    )
    s.commit()
    return out


@router.get("/datasets/{name}/versions/{version}/data")
def download(name: str, version: int, _p: RowReader, s: DbSession, ctx: Ctx) -> Response:
    _, v = service.resolve(s, f"{name}@{version}")
    data = ctx.blobs.read_bytes(v.digest)
    return Response(
        data,
        media_type="application/vnd.apache.parquet",
        headers={
            "Content-Disposition": f'attachment; filename="{name}-{version}.parquet"',
            "Digest": v.digest,
        },
    )
