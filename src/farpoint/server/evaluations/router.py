"""HTTP routes for policies and evaluations."""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter, Depends

from farpoint.core.errors import NotFound, ValidationFailed
from farpoint.server.audit import service as audit
from farpoint.server.auth import Principal, Requires
from farpoint.server.deps import Ctx, DbSession
from farpoint.server.evaluations import repository as repo
from farpoint.server.evaluations import service
from farpoint.server.pagination import Limit, decode_cursor, next_cursor
from farpoint.wire.common import NAME_PATTERN, Page, Role
from farpoint.wire.evaluations import EvaluationCreate, EvaluationOut, PolicyCreate, PolicyOut

router = APIRouter(tags=["evaluations"])
Anyone = Annotated[Principal, Depends(Requires())]
Mlops = Annotated[Principal, Depends(Requires(Role.MLOPS_ENGINEER))]
Evaluator = Annotated[Principal, Depends(Requires(Role.DATA_SCIENTIST, Role.MLOPS_ENGINEER))]


@router.post("/policies", status_code=201)
def create_policy(body: PolicyCreate, p: Mlops, s: DbSession, ctx: Ctx) -> PolicyOut:
    if not re.match(NAME_PATTERN, body.name):
        raise ValidationFailed(f"policy name {body.name!r} must match {NAME_PATTERN}")
    out = service.create_policy(s, body.name, body.yaml, p.user)
    audit.record(s, ctx, p.user, "policy.create", out.ref, policy=audit.digest_of(out.yaml))
    s.commit()
    return out


@router.get("/policies")
def list_policies(_p: Anyone, s: DbSession) -> Page[PolicyOut]:
    return Page(items=[service.policy_out(x) for x in repo.latest_policies(s)])


@router.get("/policies/{name}")
def get_policy(name: str, _p: Anyone, s: DbSession, version: int | None = None) -> PolicyOut:
    ref = f"{name}@{version}" if version else name
    return service.policy_out(service.resolve_policy(s, ref))


@router.post("/evaluations", status_code=201)
def evaluate(body: EvaluationCreate, p: Evaluator, s: DbSession, ctx: Ctx) -> EvaluationOut:
    out = service.evaluate(s, ctx.blobs, body, p.user)
    audit.record(s, ctx, p.user, "evaluation.create", f"evaluation/{out.id}")
    s.commit()
    return out


@router.get("/evaluations")
def list_evaluations(
    _p: Anyone, s: DbSession, limit: Limit = 100, cursor: str | None = None
) -> Page[EvaluationOut]:
    rows = repo.list_evaluations(s, decode_cursor(cursor), limit)
    return Page(
        items=[service.evaluation_out(s, e) for e in rows],
        next_cursor=next_cursor([e.id for e in rows], limit),
    )


@router.get("/evaluations/{evaluation_id}")
def get_evaluation(evaluation_id: int, _p: Anyone, s: DbSession) -> EvaluationOut:
    e = repo.evaluation_by_id(s, evaluation_id)
    if e is None:
        raise NotFound(f"evaluation {evaluation_id} does not exist")
    return service.evaluation_out(s, e)
