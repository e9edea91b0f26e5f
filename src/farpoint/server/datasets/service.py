"""Datasets: register immutable versions from uploaded tables, classify their columns."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from farpoint.core.errors import Conflict, NotFound, ValidationFailed
from farpoint.server.blobs.store import BlobStore
from farpoint.server.datasets import repository as repo
from farpoint.server.datasets.tables import Dataset, DatasetVersion
from farpoint.server.identity import repository as identity_repo
from farpoint.server.refs import parse_reference
from farpoint.wire.common import ColumnRole
from farpoint.wire.datasets import DatasetOut, DatasetVersionOut


def version_out(dataset: Dataset, v: DatasetVersion) -> DatasetVersionOut:
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
        created_by=v.created_by,
        created_at=v.created_at,
    )


def dataset_out(s: Session, d: Dataset) -> DatasetOut:
    team = None
    if d.team_id is not None:
        t = identity_repo.list_teams(s)
        team = next((x.name for x in t if x.id == d.team_id), None)
    return DatasetOut(
        name=d.name,
        team=team,
        latest_version=repo.latest_version_number(s, d.id),
        created_at=d.created_at,
    )


def check_roles(roles: dict[str, ColumnRole], columns: list[str]) -> dict[str, str]:
    """Every column gets a role (unnamed ones are features); at most one label."""
    unknown = sorted(set(roles) - set(columns))
    if unknown:
        raise ValidationFailed(
            f"roles name columns the table does not have: {unknown}; its columns are {columns}"
        )
    full = {c: ColumnRole(roles.get(c, ColumnRole.FEATURE)).value for c in columns}
    labels = [c for c, r in full.items() if r == ColumnRole.LABEL]
    if len(labels) > 1:
        raise ValidationFailed(f"at most one column can be the label; got {labels}")
    return full


def register_version(
    s: Session,
    blobs: BlobStore,
    *,
    name: str,
    upload: Path,
    filename: str,
    roles: dict[str, ColumnRole],
    team: str | None,
    actor: str,
) -> DatasetVersionOut:
    """Parse the upload, store it as canonical Parquet, and record a new version."""
    from farpoint.ml.tables import canonical_parquet, read_upload, schema_of

    table = read_upload(upload.read_bytes(), filename)
    columns = schema_of(table)
    full_roles = check_roles(roles, [c["name"] for c in columns])
    data = canonical_parquet(table)

    dataset = repo.dataset_by_name(s, name)
    if dataset is None:
        team_id = None
        if team:
            t = identity_repo.team_by_name(s, team)
            if t is None:
                raise NotFound(f"team {team!r} does not exist")
            team_id = t.id
        dataset = Dataset(name=name, team_id=team_id)
        s.add(dataset)
        s.flush()
    digest = blobs.put_bytes(data)
    v = DatasetVersion(
        dataset_id=dataset.id,
        version=repo.latest_version_number(s, dataset.id) + 1,
        digest=digest,
        size_bytes=len(data),
        row_count=table.num_rows,
        columns=columns,
        roles=full_roles,
        source_filename=filename[:255],
        created_by=actor,
    )
    s.add(v)
    try:
        s.flush()
    except IntegrityError as exc:
        raise Conflict(
            f"another version of {name!r} was registered at the same time; retry"
        ) from exc
    return version_out(dataset, v)


def resolve(s: Session, ref: str) -> tuple[Dataset, DatasetVersion]:
    """`NAME@VERSION` (or `NAME` for the latest) to its rows; NotFound names what is missing."""
    name, number = parse_reference(ref, "dataset")
    dataset = repo.dataset_by_name(s, name)
    if dataset is None:
        raise NotFound(f"dataset {name!r} does not exist")
    number = number or repo.latest_version_number(s, dataset.id)
    v = repo.version(s, dataset.id, number)
    if v is None:
        raise NotFound(f"dataset {name!r} has no version {number}")
    return dataset, v


def set_roles(s: Session, ref: str, roles: dict[str, ColumnRole]) -> DatasetVersionOut:
    dataset, v = resolve(s, ref)
    v.roles = check_roles(roles, [c["name"] for c in v.columns])
    s.flush()
    return version_out(dataset, v)
