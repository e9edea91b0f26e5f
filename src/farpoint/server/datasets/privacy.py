"""Privacy operations on stored rows: pseudonymization into a derived version, retention
(rows expire, their record stays), and erasure of a data subject's rows everywhere.

Every operation that stops referring to a blob returns the blobs to delete: the caller
deletes them only after its transaction committed, so a failure never leaves a version
that claims rows the store no longer has."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import shutil
import tempfile
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from farpoint.core.errors import ValidationFailed
from farpoint.server.blobs.store import BlobStore
from farpoint.server.datasets import repository as repo
from farpoint.server.datasets.lineage import affected_by, ref_of
from farpoint.server.datasets.service import resolve, rows_blob, store_version
from farpoint.server.datasets.tables import Dataset, DatasetErasure, DatasetVersion
from farpoint.server.signing import write_private_once

__all__ = [
    "ErasureResult",
    "delete_unreferenced",
    "erase",
    "pseudonym_secret",
    "pseudonymize",
    "set_retention",
    "sweep_retention",
]

_SECRET_FILE = "pseudonym.secret"


def pseudonym_secret(key_dir: Path) -> bytes:
    """The server's pseudonymization secret, made on first use (0600 under the key dir).
    Each dataset gets its own key derived from it."""
    path = key_dir / _SECRET_FILE
    if not path.exists():
        write_private_once(path, secrets.token_bytes(32))
    return path.read_bytes()


def _key_id(key: bytes) -> str:
    return "sha256:" + hashlib.sha256(key).hexdigest()[:16]


def _schema(path: Path) -> Any:
    import pyarrow.parquet as pq

    return pq.read_schema(path).remove_metadata()


def pseudonymize(
    s: Session,
    blobs: BlobStore,
    *,
    ref: str,
    columns: list[str],
    secret: bytes,
    actor: str,
    now: datetime,
    work_dir: Path,
) -> DatasetVersion:
    """A derived version whose `columns` hold keyed hashes of their values (joins still
    work, names do not show); the columns become `id` columns."""
    import pyarrow as pa

    from farpoint.ml.ingest import ingest_batches, iter_batches
    from farpoint.ml.pseudonymize import derive_key, pseudonymize_batches

    dataset, v = resolve(s, ref)
    source = blobs.path(rows_blob(dataset, v))
    names = [c["name"] for c in v.columns]
    unknown = sorted(set(columns) - set(names))
    if unknown:
        raise ValidationFailed(f"{ref} has no columns {unknown}; its columns are {names}")
    label = [c for c in columns if v.roles.get(c) == "label"]
    if label:
        raise ValidationFailed(f"the label column {label[0]!r} cannot be pseudonymized")
    key = derive_key(secret, dataset.name)
    schema = _schema(source)
    out_schema = pa.schema(
        [pa.field(f.name, pa.string()) if f.name in columns else f for f in schema]
    )
    out_dir = Path(tempfile.mkdtemp(dir=work_dir, prefix="pseudonymize-"))
    try:
        ingested = ingest_batches(
            out_schema,
            pseudonymize_batches(iter_batches(source), columns, key),
            out_dir,
            source_format="derived",
        )
        roles = {**v.roles, **{c: "id" for c in columns}}
        return store_version(
            s,
            blobs,
            dataset,
            ingested,
            roles=roles,
            filename=v.source_filename,
            actor=actor,
            now=now,
            parent=v,
            transform={
                "kind": "pseudonymize",
                "columns": sorted(columns),
                "algorithm": "HMAC-SHA256",
                "key_id": _key_id(key),
            },
            keep_reviews_from=v,
        )
    finally:
        shutil.rmtree(out_dir, ignore_errors=True)


def set_retention(s: Session, dataset: Dataset, days: int | None) -> None:
    """Rows of every version (stored now or later) expire `days` after registration."""
    dataset.retention_days = days
    for v in repo.all_versions(s, dataset.id):
        if v.blob_digest is not None:
            v.expires_at = v.created_at + timedelta(days=days) if days else None
    s.flush()


def _purge(v: DatasetVersion, reason: str, now: datetime) -> str | None:
    blob = v.blob_digest
    v.blob_digest = None
    v.purged_at = now
    v.purge_reason = reason
    return blob


def sweep_retention(s: Session, now: datetime) -> tuple[list[str], list[str]]:
    """Purge the rows of every expired version: `(refs purged, blobs to delete)`."""
    refs, blobs = [], []
    for v in repo.expired(s, now):
        blob = _purge(v, "retention", now)
        refs.append(ref_of(s, v))
        if blob:
            blobs.append(blob)
    s.flush()
    return refs, blobs


def delete_unreferenced(s: Session, store: BlobStore, digests: list[str]) -> int:
    """After commit: delete each blob no version refers to any more."""
    deleted = 0
    for digest in set(digests):
        if repo.blob_users(s, digest) == 0 and store.delete(digest):
            deleted += 1
    return deleted


@dataclass(frozen=True)
class ErasureResult:
    erasure: DatasetErasure
    new_version: DatasetVersion | None
    stale_blobs: list[str]


def _subject_hashes(secret: bytes, dataset: str, identifiers: list[str]) -> list[str]:
    from farpoint.ml.pseudonymize import derive_key

    key = derive_key(secret, dataset, "erasure")
    return sorted({hmac.new(key, i.encode(), hashlib.sha256).hexdigest() for i in identifiers})


def _match_values(v: DatasetVersion, column: str, identifiers: list[str], key: bytes) -> list[str]:
    """What the subjects' identifiers look like in this version: their pseudonyms where the
    version pseudonymized the column, the identifiers themselves otherwise."""
    transform = v.transform or {}
    if transform.get("kind") != "pseudonymize" or column not in transform.get("columns", []):
        return identifiers
    import pyarrow as pa

    from farpoint.ml.pseudonymize import pseudonymize_batches

    batch = pa.record_batch({column: pa.array(identifiers, pa.string())})
    out = next(iter(pseudonymize_batches([batch], [column], key)))
    return [str(x) for x in out.column(0).to_pylist()]


def _filter_version(path: Path, column: str, values: list[str], out_dir: Path) -> tuple[int, Any]:
    """Stream the version without the rows whose `column` is in `values`: (removed, ingested)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from farpoint.ml.ingest import ingest_batches, iter_batches

    removed = 0
    value_set = pa.array(values, pa.string())

    def kept() -> Any:
        nonlocal removed
        for batch in iter_batches(path):
            col = batch.column(batch.schema.get_field_index(column))
            hit = pc.fill_null(pc.is_in(pc.cast(col, pa.string()), value_set=value_set), False)
            n = pc.sum(hit).as_py() or 0
            if n:
                removed += n
                batch = batch.filter(pc.invert(hit))
            yield batch

    ingested = ingest_batches(_schema(path), kept(), out_dir, source_format="derived")
    return removed, ingested


def erase(
    s: Session,
    blobs: BlobStore,
    *,
    dataset: Dataset,
    column: str,
    identifiers: list[str],
    reason: str,
    secret: bytes,
    actor: str,
    now: datetime,
    work_dir: Path,
) -> ErasureResult:
    """Purge the subjects' rows from every stored version of `dataset` (their records stay,
    marked as erased), register a new version without them, and list what was trained or
    evaluated on data that held them."""
    from farpoint.ml.pseudonymize import derive_key

    versions = list(repo.all_versions(s, dataset.id))
    if not versions:
        raise ValidationFailed(f"dataset {dataset.name!r} has no versions")
    latest = versions[-1]
    if column not in {c["name"] for c in latest.columns}:
        raise ValidationFailed(f"{dataset.name}@{latest.version} has no column {column!r}")
    if latest.roles.get(column) not in ("id", "pii"):
        raise ValidationFailed(
            f"erasure finds subjects by an identifier column (role id or pii); {column!r} is "
            f"{latest.roles.get(column)!r} in {dataset.name}@{latest.version}"
        )
    idents = sorted({str(i) for i in identifiers})
    pseudonym_key = derive_key(secret, dataset.name)
    erasure = DatasetErasure(
        dataset_id=dataset.id,
        column=column,
        subject_hashes=_subject_hashes(secret, dataset.name, idents),
        rows_removed=0,
        versions=[],
        affected={},
        reason=reason,
        created_by=actor,
        created_at=now,
    )
    s.add(erasure)
    s.flush()

    touched: list[DatasetVersion] = []
    records: list[dict[str, Any]] = []
    stale: list[str] = []
    latest_filtered = None
    work = Path(tempfile.mkdtemp(dir=work_dir, prefix="erasure-"))
    try:
        for v in versions:
            if v.blob_digest is None or column not in {c["name"] for c in v.columns}:
                continue
            out_dir = work / str(v.id)
            out_dir.mkdir()
            values = _match_values(v, column, idents, pseudonym_key)
            removed, filtered = _filter_version(blobs.path(v.blob_digest), column, values, out_dir)
            if not removed:
                continue
            with filtered.parquet_path.open("rb") as fh:
                new_blob = blobs.put_stream(fh)
            stale.append(v.blob_digest)
            v.blob_digest = new_blob
            v.erased_rows += removed
            touched.append(v)
            records.append({"ref": ref_of(s, v), "rows_removed": removed})
            if v is latest:
                latest_filtered = filtered
        new_version = None
        if latest_filtered is not None:
            new_version = store_version(
                s,
                blobs,
                dataset,
                latest_filtered,
                roles=latest.roles,
                filename=latest.source_filename,
                actor=actor,
                now=now,
                parent=latest,
                transform={
                    "kind": "erasure",
                    "erasure_id": erasure.id,
                    "column": column,
                    "rows_removed": records[-1]["rows_removed"],
                },
                keep_reviews_from=latest,
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    erasure.rows_removed = sum(r["rows_removed"] for r in records)
    erasure.versions = records
    erasure.new_version = new_version.version if new_version else None
    erasure.affected = affected_by(s, touched)
    s.flush()
    return ErasureResult(erasure=erasure, new_version=new_version, stale_blobs=stale)
