"""HTTP routes for attestations: signed in-toto statements about known artifacts."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from pydantic import ValidationError

from farpoint.core.digest import is_digest
from farpoint.core.errors import BadRequest, PayloadTooLarge, ValidationFailed
from farpoint.server.attestations import repository as repo
from farpoint.server.attestations import service
from farpoint.server.audit import service as audit
from farpoint.server.auth import Principal, Requires
from farpoint.server.deps import Ctx, DbSession
from farpoint.server.pagination import Limit, decode_cursor, next_cursor
from farpoint.wire.common import Page
from farpoint.wire.trust import MAX_ENVELOPE_BYTES, AttestationCreate, AttestationOut

router = APIRouter(tags=["attestations"])
Anyone = Annotated[Principal, Depends(Requires())]


async def _bounded_body(request: Request) -> AttestationCreate:
    """The request body, read no further than MAX_ENVELOPE_BYTES, as an AttestationCreate."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_ENVELOPE_BYTES:
        raise PayloadTooLarge(f"an attestation is at most {MAX_ENVELOPE_BYTES} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > MAX_ENVELOPE_BYTES:
            raise PayloadTooLarge(f"an attestation is at most {MAX_ENVELOPE_BYTES} bytes")
    try:
        return AttestationCreate.model_validate(json.loads(body))
    except ValueError as exc:
        if isinstance(exc, ValidationError):
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise ValidationFailed(f"not an attestation request: {where}: {first['msg']}") from exc
        raise BadRequest(f'send JSON {{"envelope": <DSSE envelope>}}: {exc}') from exc


@router.post(
    "/attestations",
    status_code=201,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": AttestationCreate.model_json_schema()}},
        }
    },
)
def create_attestation(
    # Authenticate before reading the body, so strangers cannot make the server read 1 MiB.
    p: Anyone,
    body: Annotated[AttestationCreate, Depends(_bounded_body)],
    s: DbSession,
    ctx: Ctx,
) -> AttestationOut:
    out = service.submit(s, p, body.envelope, datetime.fromtimestamp(ctx.clock(), UTC))
    subjects = {f"subject{i}": subject.digest for i, subject in enumerate(out.subjects)}
    audit.record(s, ctx, p.user, "attestation.create", f"attestation/{out.id}", **subjects)
    s.commit()
    return out


@router.get("/attestations")
def list_attestations(
    _p: Anyone,
    s: DbSession,
    subject: str | None = None,
    predicate_type: str | None = None,
    limit: Limit = 100,
    cursor: str | None = None,
) -> Page[AttestationOut]:
    if subject is not None and not is_digest(subject):
        raise ValidationFailed(f"subject {subject!r} is not a sha256:<hex> digest")
    rows = repo.search(s, decode_cursor(cursor), limit, subject, predicate_type)
    return Page(
        items=[service.attestation_out(s, r) for r in rows],
        next_cursor=next_cursor([r.id for r in rows], limit),
    )


@router.get("/attestations/{attestation_id}")
def get_attestation(attestation_id: int, _p: Anyone, s: DbSession) -> AttestationOut:
    return service.get(s, attestation_id)
