"""Build the chain of a release (or of what a device runs) from the system of record."""

from __future__ import annotations

from sqlalchemy.orm import Session

from farpoint.core import keys
from farpoint.core.errors import NotFound
from farpoint.server.attestations import repository as attestation_repo
from farpoint.server.attestations.service import attestation_out
from farpoint.server.datasets import lineage as dataset_lineage
from farpoint.server.datasets import repository as dataset_repo
from farpoint.server.datasets import service as datasets
from farpoint.server.datasets.tables import DatasetVersion
from farpoint.server.devices import repository as device_repo
from farpoint.server.evaluations import repository as evaluation_repo
from farpoint.server.evaluations import service as evaluations
from farpoint.server.models import repository as model_repo
from farpoint.server.releases import repository as release_repo
from farpoint.wire.trace import Trace, TraceLink
from farpoint.wire.trust import AttestationOut

# A chain never needs more than a page of attestations per artifact.
_ATTESTATIONS_PER_DIGEST = 100


def _attested(s: Session, digest: str) -> list[AttestationOut]:
    rows = attestation_repo.search(s, 0, _ATTESTATIONS_PER_DIGEST, subject=digest)
    return [attestation_out(s, r) for r in rows]


def dataset_link(s: Session, ref: str) -> TraceLink:
    _, v = datasets.resolve(s, ref)
    return _version_link(s, v, depth=0)


def _version_link(s: Session, v: DatasetVersion, depth: int) -> TraceLink:
    """A dataset version and, below it, the version it was derived from, back to the upload."""
    parent = dataset_repo.version_by_id(s, v.parent_id) if v.parent_id is not None else None
    children = [_version_link(s, parent, depth + 1)] if parent is not None and depth < 50 else []
    state = ""
    if v.blob_digest is None:
        state = f"; rows purged ({v.purge_reason})"
    elif v.erased_rows:
        state = f"; {v.erased_rows} rows erased since"
    return TraceLink(
        kind="dataset_version",
        ref=dataset_lineage.ref_of(s, v),
        digest=v.digest,
        summary=f"{v.row_count} rows, {dataset_lineage.source_of(v)}, registered by "
        f"{v.created_by}{state}",
        attestations=_attested(s, v.digest),
        children=children,
    )


def release_link(s: Session, release_id: int) -> TraceLink:
    release = release_repo.release_by_id(s, release_id)
    if release is None:
        raise NotFound(f"release {release_id} does not exist")
    mv = model_repo.version_by_id(s, release.model_version_id)
    evaluation = evaluation_repo.evaluation_by_id(s, release.evaluation_id)
    assert mv is not None and evaluation is not None
    run = model_repo.run_by_id(s, mv.run_id)
    ev = evaluations.evaluation_out(s, evaluation)

    run_children = [dataset_link(s, ref) for ref in (run.datasets if run else [])]
    commit = (run.code or {}).get("git_commit") if run else None
    run_link = TraceLink(
        kind="training_run",
        ref=f"run/{mv.run_id}",
        summary=(
            f"by {run.created_by}, code {commit[:12] if commit else 'not under git'}"
            if run
            else "missing"
        ),
        children=run_children,
    )
    model_link = TraceLink(
        kind="model_version",
        ref=f"{release.model}@{mv.version}",
        digest=mv.digest,
        summary=f"{mv.flavor or mv.framework}, {mv.size_bytes} bytes, by {mv.created_by}",
        attestations=_attested(s, mv.digest),
        children=[run_link],
    )
    evaluation_link = TraceLink(
        kind="evaluation",
        ref=f"evaluation/{ev.id}",
        summary=(
            f"{'passed' if ev.passed else 'FAILED'} {ev.policy} on {ev.dataset}, by {ev.created_by}"
        ),
        children=[dataset_link(s, ev.dataset)],
    )
    return TraceLink(
        kind="release",
        ref=f"release/{release.id}",
        digest=release.manifest_digest,
        summary=f"{release.model}@{mv.version}, created by {release.created_by}",
        signed_by="server",
        key_id=release.key_id,
        envelope=release.envelope,
        attestations=_attested(s, release.manifest_digest),
        children=[evaluation_link, model_link],
    )


def device_link(s: Session, device_id: str) -> TraceLink:
    device = device_repo.device_by_id(s, device_id) or device_repo.device_by_name(s, device_id)
    if device is None:
        raise NotFound(f"device {device_id!r} does not exist (give its id or name)")
    children = []
    states = []
    for state in device_repo.model_states(s, [device.id]):
        states.append(f"{state.model}: {state.phase} (release {state.release_id})")
        if state.release_id is not None and state.phase == "active":
            children.append(release_link(s, state.release_id))
    return TraceLink(
        kind="device",
        ref=f"device/{device.name}",
        summary="; ".join(states) or "runs no model yet",
        signed_by=None,
        key_id=device.key_id,
        children=children,
    )


def trace(root: TraceLink, server_key: keys.PublicKey) -> Trace:
    return Trace(
        root=root,
        server_key_id=keys.key_id(server_key),
        server_public_key_pem=keys.public_key_pem(server_key).decode(),
    )
