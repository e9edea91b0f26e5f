"""The predicate registry: which predicate types the server accepts, and how each is judged.

An entry says who may sign the type, how to find the one artifact its subject names
(checking the digest against the server's record), and how to check the predicate
against the server's records. A later capability adds a type with one `register(...)`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from farpoint.core import intoto
from farpoint.core.errors import Forbidden, NotFound, ValidationFailed
from farpoint.core.intoto import Statement, Subject
from farpoint.server.auth import Principal
from farpoint.server.datasets import repository as dataset_repo
from farpoint.server.datasets import service as datasets
from farpoint.server.evaluations import repository as evaluation_repo
from farpoint.server.models import repository as model_repo
from farpoint.server.models import service as models
from farpoint.server.releases import repository as release_repo
from farpoint.wire.common import Role, parse_ref

__all__ = ["REGISTRY", "PredicateSpec", "lookup", "register"]

FindSubject = Callable[[Session, Statement], Any]
Check = Callable[[Session, Statement, Any, Principal], None]


@dataclass(frozen=True)
class PredicateSpec:
    uri: str
    signer_roles: frozenset[Role] | None
    """Roles of which the signer must hold one; None leaves it to `check`."""
    find_subject: FindSubject
    check: Check


REGISTRY: dict[str, PredicateSpec] = {}


def register(spec: PredicateSpec) -> PredicateSpec:
    REGISTRY[spec.uri] = spec
    return spec


def lookup(uri: str) -> PredicateSpec:
    spec = REGISTRY.get(uri)
    if spec is None:
        raise ValidationFailed(
            f"predicate type {uri!r} is not one this server accepts; known: {sorted(REGISTRY)}",
            reason="unknown-predicate-type",
        )
    return spec


# -- small checks --------------------------------------------------------------------------


def _inconsistent(message: str) -> ValidationFailed:
    return ValidationFailed(message, reason="inconsistent-with-records")


def _only_subject(st: Statement) -> Subject:
    if len(st.subjects) != 1:
        raise ValidationFailed(
            f"a {st.predicate_type} statement names exactly one subject; got {len(st.subjects)}"
        )
    return st.subjects[0]


def _field(obj: Any, key: str, kind: type | tuple[type, ...], where: str = "predicate") -> Any:
    if not isinstance(obj, dict) or key not in obj:
        raise ValidationFailed(f"{where}.{key} is missing")
    value = obj[key]
    if not isinstance(value, kind) or (isinstance(value, bool) and bool not in _kinds(kind)):
        raise ValidationFailed(f"{where}.{key} has the wrong type")
    return value


def _kinds(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


def _versioned_ref(ref: str, what: str) -> str:
    try:
        _, version = parse_ref(ref)
    except ValueError as exc:
        raise ValidationFailed(f"bad {what} reference: {exc}") from exc
    if version is None:
        raise ValidationFailed(f"the {what} reference {ref!r} must name a version, NAME@VERSION")
    return ref


def _same_digest(subject: Subject, record_digest: str, what: str) -> None:
    if subject.digest != record_digest:
        raise _inconsistent(
            f"the subject digest {subject.digest} is not the digest of {what} ({record_digest})"
        )


def _sha256_of(descriptor: Any, where: str) -> str:
    digest = _field(descriptor, "digest", dict, where)
    hexpart: str = _field(digest, "sha256", str, f"{where}.digest")
    return "sha256:" + hexpart


def _model_version_by_subject(s: Session, st: Statement) -> Any:
    subject = _only_subject(st)
    model, mv = models.resolve(s, _versioned_ref(subject.name, "model"))
    _same_digest(subject, mv.digest, f"model version {model.name}@{mv.version}")
    return model, mv


# -- dataset -------------------------------------------------------------------------------


def _dataset_subject(s: Session, st: Statement) -> Any:
    subject = _only_subject(st)
    ref = _versioned_ref(_field(st.predicate, "dataset", str), "dataset")
    if subject.name != ref:
        raise _inconsistent(f"the subject is named {subject.name!r} but the predicate says {ref!r}")
    dataset, v = datasets.resolve(s, ref)
    _same_digest(subject, v.digest, f"dataset version {ref}")
    return dataset, v


def _dataset_check(s: Session, st: Statement, found: Any, _p: Principal) -> None:
    _, v = found
    p = st.predicate
    if _field(p, "row_count", int) != v.row_count:
        raise _inconsistent(f"row_count {p['row_count']} differs from the record ({v.row_count})")
    if _field(p, "columns", list) != v.columns:
        raise _inconsistent("columns differ from the dataset version's recorded schema")
    if _field(p, "roles", dict) != v.roles:
        raise _inconsistent("column roles differ from the dataset version's recorded roles")


# -- training (SLSA provenance v1) ----------------------------------------------------------


def _training_check(s: Session, st: Statement, found: Any, _p: Principal) -> None:
    model, mv = found
    run = model_repo.run_by_id(s, mv.run_id)
    assert run is not None
    build = _field(st.predicate, "buildDefinition", dict)
    where = "predicate.buildDefinition"
    if _field(build, "buildType", str, where) != intoto.TRAINING_BUILD_TYPE:
        raise ValidationFailed(f"{where}.buildType must be {intoto.TRAINING_BUILD_TYPE!r}")
    external = _field(build, "externalParameters", dict, where)
    expected_external = {
        "model": f"{model.name}@{mv.version}",
        "run_id": run.id,
        "parameters": run.params,
    }
    if external != expected_external:
        raise _inconsistent(
            f"externalParameters differ from training run {run.id} of {model.name}@{mv.version}"
        )
    internal = _field(build, "internalParameters", dict, where)
    if internal != {"environment": run.environment}:
        raise _inconsistent(f"internalParameters differ from run {run.id}'s environment")
    deps = _field(build, "resolvedDependencies", list, where)
    claimed: dict[str, str] = {}
    commits: set[str] = set()
    for i, dep in enumerate(deps):
        at = f"{where}.resolvedDependencies[{i}]"
        uri = _field(dep, "uri", str, at)
        digest = _field(dep, "digest", dict, at)
        if uri.startswith("farpoint:dataset/"):
            claimed[uri.removeprefix("farpoint:dataset/")] = _sha256_of(dep, at)
        elif "gitCommit" in digest:
            commits.add(str(digest["gitCommit"]))
    expected: dict[str, str] = {}
    for ref in run.datasets:
        _, v = datasets.resolve(s, ref)
        expected[ref] = v.digest
    if claimed != expected:
        raise _inconsistent(
            f"resolvedDependencies name the datasets {claimed}, but run {run.id} used {expected}"
        )
    commit = (run.code or {}).get("git_commit")
    if commits != ({commit} if commit else set()):
        raise _inconsistent(
            f"the code commit in resolvedDependencies {sorted(commits)} is not run {run.id}'s "
            f"({commit or 'none recorded'})"
        )
    details = _field(st.predicate, "runDetails", dict)
    builder = _field(details, "builder", dict, "predicate.runDetails")
    if not _field(builder, "id", str, "predicate.runDetails.builder"):
        raise ValidationFailed("predicate.runDetails.builder.id must not be empty")


# -- evaluation (in-toto test result) -------------------------------------------------------


def _evaluation_subject(s: Session, st: Statement) -> Any:
    evaluation_id = _field(st.predicate, "evaluation_id", int)
    evaluation = evaluation_repo.evaluation_by_id(s, evaluation_id)
    if evaluation is None:
        raise NotFound(f"evaluation {evaluation_id} does not exist")
    model, mv = _model_version_by_subject(s, st)
    if evaluation.model_version_id != mv.id:
        raise _inconsistent(
            f"evaluation {evaluation_id} is not of {model.name}@{mv.version}, the subject"
        )
    return evaluation


def _evaluation_check(s: Session, st: Statement, evaluation: Any, _p: Principal) -> None:
    p = st.predicate
    expected_result = "PASSED" if evaluation.passed else "FAILED"
    if _field(p, "result", str) != expected_result:
        raise _inconsistent(
            f"result {p['result']!r} contradicts evaluation {evaluation.id}, which "
            f"{'passed' if evaluation.passed else 'failed'}"
        )
    passed = sorted(g["name"] for g in evaluation.gates if g["passed"])
    failed = sorted(g["name"] for g in evaluation.gates if not g["passed"])
    if sorted(_field(p, "passedTests", list)) != passed:
        raise _inconsistent(f"passedTests differ from the gates that passed: {passed}")
    if sorted(_field(p, "failedTests", list)) != failed:
        raise _inconsistent(f"failedTests differ from the gates that failed: {failed}")
    if _field(p, "metrics", dict) != evaluation.metrics:
        raise _inconsistent(f"metrics differ from evaluation {evaluation.id}'s")
    dv = dataset_repo.version_by_id(s, evaluation.dataset_version_id)
    assert dv is not None
    if _sha256_of(_field(p, "dataset", dict), "predicate.dataset") != dv.digest:
        raise _inconsistent(f"the dataset digest differs from evaluation {evaluation.id}'s")
    policy = evaluation_repo.policy_by_id(s, evaluation.policy_id)
    assert policy is not None
    uris = [c.get("uri") for c in _field(p, "configuration", list) if isinstance(c, dict)]
    if f"farpoint:policy/{policy.name}@{policy.version}" not in uris:
        raise _inconsistent(
            f"configuration must cite the policy farpoint:policy/{policy.name}@{policy.version}"
        )


# -- approval -------------------------------------------------------------------------------


def _approval_subject(s: Session, st: Statement) -> Any:
    p = st.predicate
    has_release, has_evaluation = "release_id" in p, "evaluation_id" in p
    if has_release == has_evaluation:
        raise ValidationFailed("an approval names exactly one of release_id or evaluation_id")
    if has_evaluation:
        return _evaluation_subject(s, st)
    subject = _only_subject(st)
    release_id = _field(p, "release_id", int)
    release = release_repo.release_by_id(s, release_id)
    if release is None:
        raise NotFound(f"release {release_id} does not exist")
    _same_digest(subject, release.manifest_digest, f"release {release_id}'s manifest")
    return release


def _approval_check(s: Session, st: Statement, _found: Any, principal: Principal) -> None:
    p = st.predicate
    role = _field(p, "role", str)
    if role not in {r.value for r in Role}:
        raise ValidationFailed(f"role {role!r} is not a Farpoint role")
    if Role(role) not in principal.roles:
        held = sorted(r.value for r in principal.roles)
        raise Forbidden(
            f"you approve as {role!r}, a role you do not hold (you hold {held})",
            reason="role-not-held",
        )
    comment = p.get("comment", "")
    if not isinstance(comment, str) or len(comment) > 2000:
        raise ValidationFailed("predicate.comment must be text of at most 2000 characters")
    try:
        approved_at = datetime.fromisoformat(_field(p, "approved_at", str))
    except ValueError as exc:
        raise ValidationFailed(f"predicate.approved_at is not an ISO 8601 time: {exc}") from exc
    if approved_at.tzinfo is None:
        raise ValidationFailed("predicate.approved_at must carry a time zone")


# -- the registry ---------------------------------------------------------------------------

register(
    PredicateSpec(
        uri=intoto.DATASET_V1,
        signer_roles=frozenset({Role.DATA_SCIENTIST}),
        find_subject=_dataset_subject,
        check=_dataset_check,
    )
)
register(
    PredicateSpec(
        uri=intoto.SLSA_PROVENANCE_V1,
        signer_roles=frozenset({Role.DATA_SCIENTIST, Role.AI_ENGINEER}),
        find_subject=_model_version_by_subject,
        check=_training_check,
    )
)
register(
    PredicateSpec(
        uri=intoto.TEST_RESULT_V01,
        signer_roles=frozenset({Role.DATA_SCIENTIST, Role.MLOPS_ENGINEER}),
        find_subject=_evaluation_subject,
        check=_evaluation_check,
    )
)
register(
    PredicateSpec(
        uri=intoto.APPROVAL_V1,
        signer_roles=None,
        find_subject=_approval_subject,
        check=_approval_check,
    )
)
