"""Datasets: register immutable versions from uploaded tables, validate them against their
dataset's contract, profile them, propose and review the classification of their columns."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from farpoint.core.errors import Conflict, Gone, NotFound, ValidationFailed
from farpoint.server.blobs.store import BlobStore
from farpoint.server.datasets import repository as repo
from farpoint.server.datasets.access import team_name
from farpoint.server.datasets.analysis import analyze
from farpoint.server.datasets.classification import (
    carry_reviews,
    check_roles,
    pending_review,
    settle,
)
from farpoint.server.datasets.contracts import add_contract
from farpoint.server.datasets.lineage import ref_of
from farpoint.server.datasets.tables import Dataset, DatasetVersion
from farpoint.server.identity import repository as identity_repo
from farpoint.server.refs import parse_reference
from farpoint.wire.common import ColumnRole
from farpoint.wire.datasets import (
    DatasetOut,
    DatasetVersionOut,
    QualitySummary,
)

__all__ = [
    "check_roles",
    "dataset_named",
    "register_version",
    "resolve",
    "version_out",
]


def _quality_summary(v: DatasetVersion) -> QualitySummary | None:
    q = v.quality
    if not q:
        return None
    return QualitySummary(
        passed=bool(q.get("passed")),
        errors=int(q.get("errors", 0)),
        warnings=int(q.get("warnings", 0)),
    )


def version_out(
    dataset: Dataset, v: DatasetVersion, parent_ref: str | None = None
) -> DatasetVersionOut:
    return DatasetVersionOut(
        dataset=dataset.name,
        version=v.version,
        ref=f"{dataset.name}@{v.version}",
        digest=v.digest,
        size_bytes=v.size_bytes,
        row_count=v.row_count,
        columns=v.columns,
        roles=v.roles,
        source_filename=v.source_filename,
        source_format=v.source_format,
        created_by=v.created_by,
        created_at=v.created_at,
        quality=_quality_summary(v),
        contract_version=v.contract_version,
        pending_classification=pending_review(v),
        schema_changes=v.schema_changes,
        parent=parent_ref,
        transform=v.transform,
        rows_available=v.blob_digest is not None,
        expires_at=v.expires_at,
        purged_at=v.purged_at,
        purge_reason=v.purge_reason,
        erased_rows=v.erased_rows,
    )


def version_out_of(s: Session, v: DatasetVersion) -> DatasetVersionOut:
    """`version_out` with the parent's reference looked up."""
    dataset = repo.dataset_by_id(s, v.dataset_id)
    assert dataset is not None
    parent = repo.version_by_id(s, v.parent_id) if v.parent_id is not None else None
    return version_out(dataset, v, ref_of(s, parent) if parent is not None else None)


def dataset_out(s: Session, d: Dataset) -> DatasetOut:
    contract = repo.latest_contract(s, d.id)
    return DatasetOut(
        name=d.name,
        team=team_name(s, d),
        latest_version=repo.latest_version_number(s, d.id),
        created_at=d.created_at,
        retention_days=d.retention_days,
        contract_version=contract.version if contract else None,
    )


def get_or_create_dataset(s: Session, name: str, team: str | None) -> Dataset:
    dataset = repo.dataset_by_name(s, name)
    if dataset is not None:
        if team and team_name(s, dataset) != team:
            raise ValidationFailed(
                f"dataset {name!r} belongs to team {team_name(s, dataset)!r}, not {team!r}; "
                "a dataset's team is set by its first version"
            )
        return dataset
    team_id = None
    if team:
        t = identity_repo.team_by_name(s, team)
        if t is None:
            raise NotFound(f"team {team!r} does not exist")
        team_id = t.id
    dataset = Dataset(name=name, team_id=team_id)
    s.add(dataset)
    s.flush()
    return dataset


def store_version(
    s: Session,
    blobs: BlobStore,
    dataset: Dataset,
    ingested: Any,
    *,
    roles: Mapping[str, ColumnRole | str],
    filename: str,
    actor: str,
    now: datetime,
    parent: DatasetVersion | None = None,
    transform: dict[str, Any] | None = None,
    keep_reviews_from: DatasetVersion | None = None,
) -> DatasetVersion:
    """Record an ingested canonical Parquet file as the next version of `dataset`: analyse it
    against the dataset's contract (inferring the contract on the first version), store the
    file as a blob and the version's metadata. Nothing is stored if any step fails."""
    columns = ingested.columns
    full_roles = check_roles(roles, [c["name"] for c in columns])
    contract = repo.latest_contract(s, dataset.id)
    result = analyze(
        ingested.parquet_path,
        columns=columns,
        roles=full_roles,
        contract=contract.spec if contract else None,
    )
    number = repo.latest_version_number(s, dataset.id) + 1
    if contract is None:
        from farpoint.ml.contract import contract_to_yaml

        assert result.inferred_contract is not None
        spec = result.inferred_contract
        contract = add_contract(
            s,
            dataset,
            spec,
            contract_to_yaml(spec),
            f"inferred from {dataset.name}@{number}",
            actor,
        )
    from farpoint.ml.contract import schema_diff

    previous = repo.version(s, dataset.id, number - 1) if number > 1 else None
    changes = schema_diff(previous.columns, columns) if previous is not None else None
    classification = settle(result.classification, roles, full_roles, actor)
    if keep_reviews_from is not None:
        classification = carry_reviews(classification, keep_reviews_from.classification or {})
    with ingested.parquet_path.open("rb") as fh:
        blob_digest = blobs.put_stream(fh)
    v = DatasetVersion(
        dataset_id=dataset.id,
        version=number,
        digest=ingested.digest,
        size_bytes=ingested.size_bytes,
        row_count=ingested.row_count,
        columns=columns,
        roles=full_roles,
        source_filename=filename[:255],
        source_format=ingested.source_format,
        created_by=actor,
        created_at=now,
        blob_digest=blob_digest,
        profile=result.profile,
        quality=result.quality,
        validation=result.validation,
        contract_version=contract.version,
        classification=classification,
        parent_id=parent.id if parent else None,
        transform=transform,
        expires_at=now + timedelta(days=dataset.retention_days) if dataset.retention_days else None,
        erased_rows=0,
        schema_changes=changes,
    )
    s.add(v)
    try:
        s.flush()
    except IntegrityError as exc:
        raise Conflict(
            f"another version of {dataset.name!r} was registered at the same time; retry"
        ) from exc
    return v


def register_version(
    s: Session,
    blobs: BlobStore,
    *,
    name: str,
    upload: Path,
    filename: str,
    roles: Mapping[str, ColumnRole | str],
    types: Mapping[str, str] | None,
    team: str | None,
    actor: str,
    now: datetime,
    work_dir: Path,
    max_bytes: int,
) -> DatasetVersion:
    """Ingest an uploaded CSV or Parquet file (streamed, bounded memory) and record it."""
    from farpoint.ml.ingest import ingest_file

    dataset = get_or_create_dataset(s, name, team)
    out_dir = Path(tempfile.mkdtemp(dir=work_dir, prefix="ingest-"))
    try:
        ingested = ingest_file(upload, filename, out_dir, types=types, max_bytes=max_bytes)
        return store_version(
            s, blobs, dataset, ingested, roles=roles, filename=filename, actor=actor, now=now
        )
    finally:
        shutil.rmtree(out_dir, ignore_errors=True)


def dataset_named(s: Session, name: str) -> Dataset:
    dataset = repo.dataset_by_name(s, name)
    if dataset is None:
        raise NotFound(f"dataset {name!r} does not exist")
    return dataset


def resolve(s: Session, ref: str) -> tuple[Dataset, DatasetVersion]:
    """`NAME@VERSION` (or `NAME` for the latest) to its rows; NotFound names what is missing."""
    name, number = parse_reference(ref, "dataset")
    dataset = dataset_named(s, name)
    number = number or repo.latest_version_number(s, dataset.id)
    v = repo.version(s, dataset.id, number)
    if v is None:
        raise NotFound(f"dataset {name!r} has no version {number}")
    return dataset, v


def rows_blob(dataset: Dataset, v: DatasetVersion) -> str:
    """The blob holding the version's rows; Gone (410) once they were purged."""
    if v.blob_digest is None:
        when = v.purged_at.date().isoformat() if v.purged_at else "earlier"
        raise Gone(
            f"the rows of {dataset.name}@{v.version} were purged ({v.purge_reason or 'purged'}, "
            f"{when}); its digest, profile and lineage stay on record",
            ref=f"{dataset.name}@{v.version}",
        )
    return v.blob_digest
