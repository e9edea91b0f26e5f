"""Where a dataset version came from and what was made from it."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from farpoint.server.datasets import repository as repo
from farpoint.server.datasets.tables import DatasetVersion
from farpoint.server.evaluations import repository as evaluation_repo
from farpoint.server.models import repository as model_repo
from farpoint.server.releases import repository as release_repo
from farpoint.wire.datasets import LineageOut

__all__ = ["affected_by", "lineage", "ref_of", "source_of"]

# A chain of derived versions longer than this is refused as a loop (parents are immutable,
# so a loop can only come from a corrupted database).
_MAX_DEPTH = 1000


def ref_of(s: Session, v: DatasetVersion) -> str:
    d = repo.dataset_by_id(s, v.dataset_id)
    return f"{d.name if d else '?'}@{v.version}"


def source_of(v: DatasetVersion) -> str:
    if v.transform:
        kind = v.transform.get("kind", "transform")
        if kind == "pseudonymize":
            return f"pseudonymized {', '.join(v.transform.get('columns', []))}"
        if kind == "erasure":
            t = v.transform
            return f"erasure {t.get('erasure_id')}: {t.get('rows_removed')} rows removed"
        return str(kind)
    return f"uploaded {v.source_format} file {v.source_filename!r}"


def affected_by(s: Session, versions: list[DatasetVersion]) -> dict[str, Any]:
    """Runs, model versions, releases and evaluations built on any of these versions."""
    refs = {ref_of(s, v) for v in versions}
    runs = model_repo.runs_using(s, refs)
    mvs = model_repo.versions_of_runs(s, [r.id for r in runs])
    releases = release_repo.releases_of(s, [m.id for m in mvs])
    evaluations = evaluation_repo.evaluations_on(s, [v.id for v in versions])
    names = {}
    for m in mvs:
        model = model_repo.model_by_id(s, m.model_id)
        names[m.id] = f"{model.name if model else '?'}@{m.version}"
    return {
        "runs": [r.id for r in runs],
        "model_versions": [names[m.id] for m in mvs],
        "releases": [r.id for r in releases],
        "evaluations": [e.id for e in evaluations],
    }


def lineage(s: Session, v: DatasetVersion) -> LineageOut:
    ancestors: list[dict[str, Any]] = []
    seen = {v.id}
    parent_id = v.parent_id
    while parent_id is not None and len(ancestors) < _MAX_DEPTH:
        parent = repo.version_by_id(s, parent_id)
        if parent is None or parent.id in seen:
            break
        seen.add(parent.id)
        ancestors.append(
            {
                "ref": ref_of(s, parent),
                "digest": parent.digest,
                "transform": parent.transform,
                "source": source_of(parent),
            }
        )
        parent_id = parent.parent_id
    affected = affected_by(s, [v])
    return LineageOut(
        ref=ref_of(s, v),
        digest=v.digest,
        source=source_of(v),
        ancestors=ancestors,
        descendants=[ref_of(s, c) for c in repo.children(s, v.id)],
        runs=affected["runs"],
        model_versions=affected["model_versions"],
        releases=affected["releases"],
        evaluations=affected["evaluations"],
    )
