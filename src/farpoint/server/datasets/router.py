"""HTTP routes for datasets and their governance."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, Form, UploadFile
from fastapi.responses import StreamingResponse
from pydantic import ValidationError

from farpoint.core.errors import PayloadTooLarge, ValidationFailed
from farpoint.server.audit import service as audit
from farpoint.server.auth import Principal, Requires
from farpoint.server.context import AppContext
from farpoint.server.datasets import access, classification, contracts, lineage, privacy, service
from farpoint.server.datasets import repository as repo
from farpoint.server.datasets.retention import sweep
from farpoint.server.datasets.tables import DatasetErasure
from farpoint.server.deps import Ctx, DbSession
from farpoint.server.pagination import Limit, decode_cursor, next_cursor
from farpoint.wire.common import ColumnRole, Name, Page, Role
from farpoint.wire.datasets import (
    ClassificationOut,
    ClassificationReview,
    ContractOut,
    ContractUpdate,
    DatasetOut,
    DatasetVersionOut,
    ErasureCreate,
    ErasureOut,
    LineageOut,
    PseudonymizeRequest,
    QualityOut,
    RetentionSweepOut,
    RetentionUpdate,
    RolesUpdate,
    VersionComparison,
)

router = APIRouter(tags=["datasets"])
Anyone = Annotated[Principal, Depends(Requires())]
Scientist = Annotated[Principal, Depends(Requires(Role.DATA_SCIENTIST))]
RowReader = Annotated[Principal, Depends(Requires(Role.DATA_SCIENTIST, Role.AI_ENGINEER))]
Sweeper = Annotated[Principal, Depends(Requires(Role.DATA_SCIENTIST, Role.MLOPS_ENGINEER))]


def _work_dir(ctx: AppContext) -> Path:
    path = ctx.settings.home / "tmp"
    path.mkdir(parents=True, exist_ok=True)
    return path


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


def _json_form(raw: str, what: str, example: str) -> dict[str, str]:
    try:
        value = json.loads(raw or "{}")
    except json.JSONDecodeError as exc:
        raise ValidationFailed(f"{what} must be a JSON object like {example}: {exc}") from exc
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise ValidationFailed(f"{what} must be a JSON object of strings like {example}")
    return value


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
    types: Annotated[str, Form()] = "{}",
) -> DatasetVersionOut:
    parsed = parse_roles(roles)
    column_types = _json_form(types, "types", '{"zip": "string"}')
    existing = repo.dataset_by_name(s, name)
    if existing is not None:
        access.require_writer(s, p, existing)
    elif team:
        access.require_member(s, p, team)
    work = _work_dir(ctx)
    path = spool_upload(file, ctx.settings.max_upload_bytes, work)
    try:
        v = service.register_version(
            s,
            ctx.blobs,
            name=name,
            upload=path,
            filename=file.filename or "upload",
            roles=parsed,
            types=column_types,
            team=team,
            actor=p.user,
            now=ctx.now(),
            work_dir=work,
            max_bytes=ctx.settings.max_upload_bytes,
        )
        out = service.version_out_of(s, v)
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


@router.get("/datasets/{name}")
def get_dataset(name: str, _p: Anyone, s: DbSession) -> DatasetOut:
    return service.dataset_out(s, service.dataset_named(s, name))


@router.get("/datasets/{name}/versions")
def list_versions(
    name: str, _p: Anyone, s: DbSession, limit: Limit = 100, cursor: str | None = None
) -> Page[DatasetVersionOut]:
    dataset, _ = service.resolve(s, name)
    rows = repo.versions(s, dataset.id, decode_cursor(cursor), limit)
    return Page(
        items=[service.version_out_of(s, v) for v in rows],
        next_cursor=next_cursor([v.id for v in rows], limit),
    )


@router.get("/datasets/{name}/versions/{version}")
def get_version(name: str, version: int, _p: Anyone, s: DbSession) -> DatasetVersionOut:
    _, v = service.resolve(s, f"{name}@{version}")
    return service.version_out_of(s, v)


@router.put("/datasets/{name}/versions/{version}/roles")
def set_roles(
    name: str, version: int, body: RolesUpdate, p: Scientist, s: DbSession, ctx: Ctx
) -> DatasetVersionOut:
    dataset, v = service.resolve(s, f"{name}@{version}")
    access.require_writer(s, p, dataset)
    v = classification.set_roles(s, ctx.blobs, v, body.roles, p.user)
    out = service.version_out_of(s, v)
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


@router.get("/datasets/{name}/versions/{version}/classification")
def get_classification(name: str, version: int, _p: Anyone, s: DbSession) -> ClassificationOut:
    dataset, v = service.resolve(s, f"{name}@{version}")
    return classification.classification_out(dataset, v)


@router.post("/datasets/{name}/versions/{version}/classification")
def review_classification(
    name: str, version: int, body: ClassificationReview, p: Scientist, s: DbSession, ctx: Ctx
) -> ClassificationOut:
    dataset, v = service.resolve(s, f"{name}@{version}")
    access.require_writer(s, p, dataset)
    v = classification.review(s, ctx.blobs, v, body.accept, body.reject, p.user)
    out = classification.classification_out(dataset, v)
    audit.record(
        s,
        ctx,
        p.user,
        "dataset.version.classification",
        out.ref,
        dataset=v.digest,
        roles=audit.digest_of(out.roles),
    )
    s.commit()
    return out


@router.get("/datasets/{name}/versions/{version}/quality")
def get_quality(name: str, version: int, _p: Anyone, s: DbSession) -> QualityOut:
    dataset, v = service.resolve(s, f"{name}@{version}")
    return contracts.quality_out(dataset, v)


@router.get("/datasets/{name}/versions/{version}/profile")
def get_profile(name: str, version: int, _p: Anyone, s: DbSession) -> dict[str, object]:
    dataset, v = service.resolve(s, f"{name}@{version}")
    return contracts.profile_of(dataset, v)


@router.get("/datasets/{name}/versions/{version}/lineage")
def get_lineage(name: str, version: int, _p: Anyone, s: DbSession) -> LineageOut:
    _, v = service.resolve(s, f"{name}@{version}")
    return lineage.lineage(s, v)


@router.get("/datasets/{name}/compare")
def compare_versions(
    name: str, old: int, new: int, _p: Anyone, s: DbSession, ctx: Ctx
) -> VersionComparison:
    dataset, a = service.resolve(s, f"{name}@{old}")
    _, b = service.resolve(s, f"{name}@{new}")
    path = ctx.blobs.path(service.rows_blob(dataset, b))
    return VersionComparison.model_validate(contracts.compare(dataset, a, b, path))


@router.get("/datasets/{name}/contract")
def get_contract(name: str, _p: Anyone, s: DbSession, version: int | None = None) -> ContractOut:
    return contracts.contract_of(s, service.dataset_named(s, name), version)


@router.put("/datasets/{name}/contract")
def set_contract(
    name: str, body: ContractUpdate, p: Scientist, s: DbSession, ctx: Ctx
) -> ContractOut:
    dataset = service.dataset_named(s, name)
    access.require_writer(s, p, dataset)
    out = contracts.set_contract(s, dataset, body.yaml, p.user)
    audit.record(
        s, ctx, p.user, "dataset.contract", f"{name}/contract@{out.version}",
        contract=audit.digest_of(body.yaml),
    )  # fmt: skip
    s.commit()
    return out


@router.post("/datasets/{name}/versions/{version}/pseudonymize", status_code=201)
def pseudonymize(
    name: str, version: int, body: PseudonymizeRequest, p: Scientist, s: DbSession, ctx: Ctx
) -> DatasetVersionOut:
    access.require_writer(s, p, service.dataset_named(s, name))
    v = privacy.pseudonymize(
        s,
        ctx.blobs,
        ref=f"{name}@{version}",
        columns=body.columns,
        secret=privacy.pseudonym_secret(ctx.settings.key_dir),
        actor=p.user,
        now=ctx.now(),
        work_dir=_work_dir(ctx),
    )
    out = service.version_out_of(s, v)
    audit.record(s, ctx, p.user, "dataset.version.pseudonymize", out.ref, dataset=out.digest)
    s.commit()
    return out


@router.put("/datasets/{name}/retention")
def set_retention(
    name: str, body: RetentionUpdate, p: Scientist, s: DbSession, ctx: Ctx
) -> DatasetOut:
    dataset = service.dataset_named(s, name)
    access.require_writer(s, p, dataset)
    privacy.set_retention(s, dataset, body.days)
    audit.record(
        s, ctx, p.user, "dataset.retention", name, retention=audit.digest_of({"days": body.days})
    )
    s.commit()
    return service.dataset_out(s, dataset)


@router.post("/retention/sweep")
def sweep_retention(p: Sweeper, s: DbSession, ctx: Ctx) -> RetentionSweepOut:
    """Purge the rows of every version past its expiry now (the server also does it on
    its own timer)."""
    refs = sweep(s, ctx, p.user)
    return RetentionSweepOut(purged=refs)


def _erasure_out(dataset_name: str, e: DatasetErasure) -> ErasureOut:
    return ErasureOut(
        id=e.id,
        dataset=dataset_name,
        column=e.column,
        subjects=len(e.subject_hashes),
        rows_removed=e.rows_removed,
        versions=e.versions,
        new_version=f"{dataset_name}@{e.new_version}" if e.new_version else None,
        affected=e.affected,
        reason=e.reason,
        created_by=e.created_by,
        created_at=e.created_at,
    )


@router.post("/datasets/{name}/erasures", status_code=201)
def erase(name: str, body: ErasureCreate, p: Scientist, s: DbSession, ctx: Ctx) -> ErasureOut:
    dataset = service.dataset_named(s, name)
    access.require_writer(s, p, dataset)
    result = privacy.erase(
        s,
        ctx.blobs,
        dataset=dataset,
        column=body.column,
        identifiers=[str(i) for i in body.identifiers],
        reason=body.reason,
        secret=privacy.pseudonym_secret(ctx.settings.key_dir),
        actor=p.user,
        now=ctx.now(),
        work_dir=_work_dir(ctx),
    )
    out = _erasure_out(name, result.erasure)
    audit.record(
        s, ctx, p.user, "dataset.erasure", f"{name}/erasure/{out.id}",
        subjects=audit.digest_of(result.erasure.subject_hashes),
    )  # fmt: skip
    s.commit()
    privacy.delete_unreferenced(s, ctx.blobs, result.stale_blobs)
    return out


@router.get("/datasets/{name}/erasures")
def list_erasures(name: str, _p: Anyone, s: DbSession) -> Page[ErasureOut]:
    dataset = service.dataset_named(s, name)
    return Page(items=[_erasure_out(name, e) for e in repo.erasures(s, dataset.id)])


@router.get("/datasets/{name}/versions/{version}/data")
def download(name: str, version: int, p: RowReader, s: DbSession, ctx: Ctx) -> StreamingResponse:
    dataset, v = service.resolve(s, f"{name}@{version}")
    access.require_reader(s, p, dataset)
    blob = service.rows_blob(dataset, v)
    audit.record(s, ctx, p.user, "dataset.version.read", f"{name}@{version}", dataset=v.digest)
    s.commit()
    headers = {
        "Content-Disposition": f'attachment; filename="{name}-{version}.parquet"',
        "Content-Length": str(ctx.blobs.size(blob)),
        "X-Farpoint-Erased-Rows": str(v.erased_rows),
        "X-Farpoint-Blob-Digest": blob,
    }
    if v.digest != v.blob_digest:
        # The canonical content digest (docs/data.md). Versions registered before it
        # existed carry their Parquet file's digest instead, and only that is sent.
        headers["X-Farpoint-Dataset-Digest"] = v.digest
    return StreamingResponse(
        ctx.blobs.iter_verified(blob),
        media_type="application/vnd.apache.parquet",
        headers=headers,
    )
