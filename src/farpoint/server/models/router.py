"""HTTP routes for training runs and model versions."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Response, UploadFile
from pydantic import ValidationError

from farpoint.core.errors import NotFound, ValidationFailed
from farpoint.server.audit import service as audit
from farpoint.server.auth import Principal, Requires
from farpoint.server.datasets.router import spool_upload
from farpoint.server.deps import Ctx, DbSession
from farpoint.server.models import repository as repo
from farpoint.server.models import service
from farpoint.server.pagination import Limit, decode_cursor, next_cursor
from farpoint.wire.common import Name, Page, Role
from farpoint.wire.models import ModelOut, ModelVersionMeta, ModelVersionOut, RunCreate, RunOut

router = APIRouter(tags=["models"])
Anyone = Annotated[Principal, Depends(Requires())]
Builder = Annotated[Principal, Depends(Requires(Role.DATA_SCIENTIST, Role.AI_ENGINEER))]
NotBusiness = Annotated[
    Principal,
    Depends(
        Requires(
            Role.DATA_SCIENTIST,
            Role.AI_ENGINEER,
            Role.MLOPS_ENGINEER,
            Role.APP_DEVELOPER,
            Role.IT_OPS,
        )
    ),
]


@router.post("/runs", status_code=201)
def create_run(body: RunCreate, p: Builder, s: DbSession, ctx: Ctx) -> RunOut:
    out = service.create_run(s, body, p.user)
    audit.record(s, ctx, p.user, "run.create", f"run/{out.id}")
    s.commit()
    return out


@router.get("/runs")
def list_runs(
    _p: Anyone, s: DbSession, limit: Limit = 100, cursor: str | None = None
) -> Page[RunOut]:
    rows = repo.list_runs(s, decode_cursor(cursor), limit)
    return Page(
        items=[service.run_out(r) for r in rows],
        next_cursor=next_cursor([r.id for r in rows], limit),
    )


@router.get("/runs/{run_id}")
def get_run(run_id: int, _p: Anyone, s: DbSession) -> RunOut:
    run = repo.run_by_id(s, run_id)
    if run is None:
        raise NotFound(f"training run {run_id} does not exist")
    return service.run_out(run)


@router.post("/models/{name}/versions", status_code=201)
def register_version(
    name: Name,
    file: UploadFile,
    meta: Annotated[str, Form(max_length=4_000_000)],
    p: Builder,
    s: DbSession,
    ctx: Ctx,
) -> ModelVersionOut:
    try:
        parsed = ModelVersionMeta.model_validate_json(meta)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(x) for x in err["loc"])
        raise ValidationFailed(f"model metadata is invalid at {where}: {err['msg']}") from exc
    tmp_dir = ctx.settings.home / "tmp"
    tmp_dir.mkdir(parents=True, exist_ok=True)
    path = spool_upload(file, ctx.settings.max_model_bytes, tmp_dir)
    try:
        out = service.register_version(
            s, ctx.blobs, name=name, onnx_file=path, meta=parsed, actor=p.user
        )
        audit.record(s, ctx, p.user, "model.version.create", out.ref, model=out.digest)
        s.commit()
    finally:
        path.unlink(missing_ok=True)
    return out


@router.get("/models")
def list_models(
    _p: Anyone, s: DbSession, limit: Limit = 100, cursor: str | None = None
) -> Page[ModelOut]:
    rows = repo.list_models(s, decode_cursor(cursor), limit)
    return Page(
        items=[service.model_out(s, m) for m in rows],
        next_cursor=next_cursor([m.id for m in rows], limit),
    )


@router.get("/models/{name}/versions")
def list_versions(
    name: str, _p: Anyone, s: DbSession, limit: Limit = 100, cursor: str | None = None
) -> Page[ModelVersionOut]:
    model = repo.model_by_name(s, name)
    if model is None:
        raise NotFound(f"model {name!r} does not exist")
    rows = repo.versions(s, model.id, decode_cursor(cursor), limit)
    return Page(
        items=[service.version_out(s, model, v) for v in rows],
        next_cursor=next_cursor([v.id for v in rows], limit),
    )


@router.get("/models/{name}/versions/{version}")
def get_version(name: str, version: int, _p: Anyone, s: DbSession) -> ModelVersionOut:
    model, v = service.resolve(s, f"{name}@{version}")
    return service.version_out(s, model, v)


@router.get("/models/{name}/versions/{version}/artifact")
def download(name: str, version: int, _p: NotBusiness, s: DbSession, ctx: Ctx) -> Response:
    _, v = service.resolve(s, f"{name}@{version}")
    return Response(
        ctx.blobs.read_bytes(v.digest),
        media_type="application/octet-stream",
        headers={
            "Content-Disposition": f'attachment; filename="{name}-{version}.onnx"',
            "Digest": v.digest,
        },
    )
